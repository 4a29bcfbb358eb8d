#!/usr/bin/env bash
# Record raw tmux control-mode transcripts (the exact stdout bytes of `tmux -C attach`) into
# fixtures/tmux/. Each scenario runs its own private server (`tmux -L agtmux-rec-$$-NAME -f
# /dev/null`) and kills it by name, so the user's default server is never touched.
#
# The control client is fed commands on stdin with short sleeps in between; the sleeps only
# order the scenario, the transcripts are whatever tmux really wrote. Timestamps, pane pids and
# the `N` counter therefore differ between recordings; tests assert structure, not those values.
#
# Usage: scripts/record-tmux-transcripts.sh [OUT_DIR]   (default: fixtures/tmux)
#        TMUX_BIN=~/.cache/agtmux/tmux-3.5a/tmux scripts/record-tmux-transcripts.sh fixtures/tmux/3.5a
# TMUX_BIN picks the tmux to record (default: `tmux` on PATH). The hand-built synthetic file is
# written only into the default directory; a version directory gets recordings only, plus
# `newer-notifications.bin` (subscriptions, config errors, messages, paste buffers),
# `config-error.bin` and a `VERSION` file with what `tmux -V` said.
set -euo pipefail

DEFAULT_OUT="$(cd "$(dirname "$0")/.." && pwd)/fixtures/tmux"
OUT=${1:-$DEFAULT_OUT}
TMUX_BIN=${TMUX_BIN:-tmux}
mkdir -p "$OUT"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# A plain, host-independent shell in every pane: dash with a fixed prompt.
export SHELL=/bin/sh PS1='$ ' ENV=/dev/null
unset TMUX TMUX_PANE

tm() { "$TMUX_BIN" -L "$SOCK" -f /dev/null "$@"; }

start_server() { # NAME [new-session args...]
  SOCK="agtmux-rec-$$-$1"; shift
  tm new-session -d -s main -x 80 -y 24 "$@"
}

# kill-server from the control client can leave the socket file behind; remove ours once the
# server is gone.
stop_server() {
  tm kill-server 2>/dev/null || true
  if ! tm has-session 2>/dev/null; then
    rm -f "${TMUX_TMPDIR:-/tmp}/tmux-$(id -u)/$SOCK"
  fi
}

# attach-replies: initial F=0 attach block, ordinary replies, %error, `a ; b` on one line.
rec_attach_replies() {
  start_server attach
  {
    sleep 0.5
    echo "display -p 'S #{session_name} #{pane_id}'"; sleep 0.2
    echo "list-panes -a -F 'P #{session_id} #{window_id} #{pane_id} #{pane_current_command}'"; sleep 0.2
    echo "no-such-command"; sleep 0.2
    echo "display -p a ; display -p b"; sleep 0.2
    echo "display -p ok ; select-window -t @99"; sleep 0.2
    echo "list-windows -F 'W #{window_id} #{window_name}'"; sleep 0.2
    echo "kill-server"; sleep 0.3
  } | tm -C attach -f no-output -t main >"$OUT/attach-replies.bin"
  stop_server
}

# notifications: window/session/pane/layout/buffer/client notifications and %exit on kill-server.
rec_notifications() {
  start_server notify
  {
    sleep 0.5
    echo "new-window -n second"; sleep 0.3
    echo "split-window -h"; sleep 0.3
    echo "select-pane -t :.0"; sleep 0.2
    echo "rename-window renamed"; sleep 0.2
    echo "new-session -d -s other"; sleep 0.2
    echo "new-window -d -t other"; sleep 0.2
    echo "rename-session -t other other2"; sleep 0.2
    echo "copy-mode"; sleep 0.2
    echo "set-buffer -b buf hello"; sleep 0.2
    # A second control client comes and goes: %client-session-changed / %client-detached.
    sleep 0.4 | tm -C attach -t other2 >/dev/null; sleep 0.3
    echo "switch-client -t other2"; sleep 0.3
    echo "kill-window -t main:1"; sleep 0.3
    echo "kill-server"; sleep 0.3
  } | tm -C attach -f no-output -t main >"$OUT/notifications.bin"
  stop_server
}

# output-escapes: %output with octal escapes (< 0x20 and backslash) and raw high bytes,
# including UTF-8 (✻ ⠂ ❯) and an invalid 0xff byte, plus one long line tmux may split.
rec_output_escapes() {
  cat >"$WORK/out.sh" <<'PANE'
sleep 0.6
printf '\342\234\273 \342\240\202 \342\235\257 \377 back\\slash\ttab \033[1mbold\033[0m\r\n'
printf '%%end 1 2 1 inside output\r\n'
i=0; while [ $i -lt 300 ]; do printf 'x%03d_' $i; i=$((i+1)); done; printf '\r\n'
sleep 30
PANE
  start_server output "sh $WORK/out.sh"
  {
    sleep 1.5
    echo "kill-server"; sleep 0.3
  } | tm -C attach -t main >"$OUT/output-escapes.bin"
  stop_server
}

# capture-begin-end: a pane prints lines that look like protocol lines; capture-pane -p returns
# them inside a reply block, where they are data.
rec_capture_begin_end() {
  cat >"$WORK/cap.sh" <<'PANE'
printf '%%begin 1 2 1\n%%end 1 2 1\n%%error 1 2 1\n%%output %%0 fake output line\n%%pause %%0\n%%exit\nplain text\n'
sleep 30
PANE
  start_server capture "sh $WORK/cap.sh"
  {
    sleep 0.8
    echo "capture-pane -p -t %0"; sleep 0.2
    echo "capture-pane -p -t %0 -S 0 -E 1 ; display -p after"; sleep 0.2
    echo "kill-server"; sleep 0.3
  } | tm -C attach -f no-output -t main >"$OUT/capture-begin-end.bin"
  stop_server
}

# pause-continue: with pause-after set, `refresh-client -A %0:pause|continue` makes tmux 3.3a
# write %pause/%continue INSIDE the reply block; output becomes %extended-output.
rec_pause_continue() {
  start_server pause "sh -c 'while :; do echo tick; sleep 0.1; done'"
  {
    sleep 0.5
    echo "refresh-client -f pause-after=1"; sleep 0.4
    echo "refresh-client -A '%0:pause'"; sleep 0.4
    echo "refresh-client -A '%0:continue'"; sleep 0.3
    echo "kill-server"; sleep 0.3
  } | tm -C attach -t main >"$OUT/pause-continue.bin"
  stop_server
}

# detach: the client detaches itself; %exit carries no reason or a reason depending on cause.
rec_detach() {
  start_server detach
  {
    sleep 0.5
    echo "detach-client"; sleep 0.3
  } | tm -C attach -f no-output -t main >"$OUT/detach.bin"
  stop_server
}

# synthetic-edge-cases: NOT recorded. Hand-built bytes for cases tmux 3.3a does not produce on
# demand: %output/%extended-output inside a block, protocol-looking data lines with other
# numbers, CRLF endings, stray %end, malformed %begin and notifications, non-UTF-8 lines, and
# EOF in the middle of a block (the file ends without the closing %end and without a newline).
write_synthetic() {
  # $'...' is bash ANSI-C quoting: \n, \r, \377 become bytes and \\ a single backslash.
  printf '%s' \
    $'%begin 100 5 0\n%end 100 5 0\n' \
    $'%begin 101 7 1\nrow one\n%output %3 hi\\015\\012\n%begin 101 8 1\n%end 101 7 0\n%end 9 9 9\n' \
    $'%extended-output %3 12 : x\\134y\n%window-add @4\n%end 101 7 1\r\n' \
    $'%end 5 5 1\n%begin 1 x 1\n%window-add oops\n%paste-buffer-changed buf0\n' \
    $'not a protocol line \377\n%window-renamed @4 name with spaces \342\234\273\r\n' \
    $'%begin 102 9 1\n%error 102 9 1 trailing\npartial data no newline' \
    >"$OUT/synthetic-edge-cases.bin"
}

# newer-notifications: what tmux 3.2+ and 3.4+ add. Subscriptions of all three kinds
# (session, all panes, all windows; tmux checks them once a second), then a new window so they
# change; `source-file` of a config with an error (%config-error on 3.4+, reply lines before);
# `display-message` without -p (%message on 3.4+); a paste buffer set and deleted
# (%paste-buffer-changed/-deleted on 3.4+); unsubscribing; kill-server (%exit).
rec_newer_notifications() {
  printf 'set -g status on\nno-such-command-here\n' >"$WORK/bad.conf"
  start_server newer
  {
    sleep 0.5
    echo "refresh-client -B 'agtmux-panes::#{S:#{W:#{P:#{pane_id}=#{pane_pid}=#{pane_current_command}|}}}'"
    echo "refresh-client -B 'cmd:%*:#{pane_current_command}'"
    echo "refresh-client -B 'name:@*:#{window_name}'"
    sleep 1.3
    echo "new-window -d -n second 'exec sleep 100'"; sleep 1.3
    echo "source-file $WORK/bad.conf"; sleep 0.2
    echo "display-message 'hello from display-message'"; sleep 0.2
    echo "set-buffer -b agtbuf hello"; sleep 0.2
    echo "delete-buffer -b agtbuf"; sleep 0.2
    echo "refresh-client -B cmd"; sleep 0.2
    echo "kill-server"; sleep 0.3
  } | tm -C attach -f no-output -t main >"$OUT/newer-notifications.bin"
  stop_server
}

# config-error: the control client starts the server itself with a config holding an error,
# so it is the server's first client: tmux 3.4+ reports the error as %config-error (older ones
# show it in a pane). `source-file` errors in newer-notifications.bin are a different path:
# bare text lines after the command's block up to 3.5a, %config-error from 3.6 on.
rec_config_error() {
  printf 'set -g status on\nno-such-command-at-start\n' >"$WORK/start.conf"
  SOCK="agtmux-rec-$$-config"
  {
    sleep 0.8
    echo "display -p 'after #{session_name}'"; sleep 0.2
    echo "kill-server"; sleep 0.3
  } | "$TMUX_BIN" -L "$SOCK" -f "$WORK/start.conf" -C new-session -s main -x 80 -y 24 \
    >"$OUT/config-error.bin"
  stop_server
}

if [ "$OUT" = "$DEFAULT_OUT" ]; then
  write_synthetic
  [ "${SYNTHETIC_ONLY:-0}" = 1 ] && exit 0
else
  "$TMUX_BIN" -V >"$OUT/VERSION"
  rec_newer_notifications
  rec_config_error
fi
rec_attach_replies
rec_notifications
rec_output_escapes
rec_capture_begin_end
rec_pause_continue
rec_detach
echo "recorded into $OUT"
