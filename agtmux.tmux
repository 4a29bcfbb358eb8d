#!/usr/bin/env bash
# agtmux TPM entry: find a binary of the plugin's version, bind the keys, and start one daemon
# for this tmux server. TPM runs this at every config load, without -b, so it must return at
# once: a missing binary is installed in the background (scripts/install.sh through
# `run-shell -b`, which runs this script again when done), and the daemon is started fully
# detached; its own flock makes a second start a quiet no-op, and a daemon of another version
# is taken over by the new one (an update).
CURRENT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/helpers.sh
source "$CURRENT_DIR/scripts/helpers.sh"

# Status-line placeholder, as tmux-prefix-highlight does: #{agtmux_status} → the option.
# Replaced with quoted prefix/suffix removal, which bash 3.2 (macOS) treats as literal text,
# rather than ${var//pattern/string}, whose escaping rules differ between bash versions.
placeholder='#{agtmux_status}'
replacement='#{@agtmux_attention}'
for side in status-right status-left; do
	value="$(tmux show-option -gqv "$side")"
	case "$value" in
	*"$placeholder"*)
		new=""
		while :; do
			case "$value" in
			*"$placeholder"*)
				new="$new${value%%"$placeholder"*}$replacement"
				value="${value#*"$placeholder"}"
				;;
			*)
				new="$new$value"
				break
				;;
			esac
		done
		tmux set-option -gq "$side" "$new"
		;;
	esac
done

version="$(plugin_version "$CURRENT_DIR")"
if [ -z "$version" ]; then
	tmux display-message "agtmux: cannot read the version from $CURRENT_DIR/Cargo.toml (reinstall the plugin)"
	exit 0
fi
# @agtmux-bin, <plugin>/bin/agtmux, <plugin>/target/release/agtmux, agtmux on PATH: the first
# whose `--version` is this plugin's version.
if ! bin="$(find_binary "$CURRENT_DIR" "$version")"; then
	# The installer ran already (it runs this script again when done): it said what failed.
	[ -n "${AGTMUX_INSTALLED:-}" ] && exit 0
	tmux set-option -gq @agtmux_daemon 'installing…' \; \
		set-option -gq @agtmux_attention '#[fg=black,bg=yellow]agtmux installing…#[default]'
	installer="$(sh_quote "$CURRENT_DIR/scripts/install.sh") $(sh_quote "$CURRENT_DIR") $(sh_quote "$version")"
	tmux run-shell -b "${installer//\#/##}"
	exit 0
fi
# A binary fits: an earlier install failure (the user built or installed one since) is over.
case "$(tmux show-option -gqv @agtmux_install)" in
'' | ok*) ;;
*) tmux set-option -gqu @agtmux_install ;;
esac

# Keys, as tmux-sensible does: every key is an option (README "Options"). A key the user named
# is always bound; a default key only where nothing holds it yet (or agtmux's own binding from
# an earlier load, so a reload or an update refreshes it); `none` binds nothing.
# bind_key OPTION DEFAULT COMMAND…
bind_key() {
	local option="$1" default="$2" key existing
	shift 2
	key="$(tmux show-option -gqv "$option")"
	if [ -z "$key" ]; then
		key="$default"
		[ -z "$key" ] && return 0
		existing="$(prefix_binding "$key")"
		case "$existing" in
		'' | *agtmux*) ;;
		*) return 0 ;; # the user's (or tmux's) binding stays
		esac
	fi
	[ "$key" = "none" ] && return 0
	tmux bind-key "$key" "$@"
}

q_bin="$(printf '%q' "$bin")"
# Rows of choose-tree: pane rows show the agent icon/provider/state/title, window rows the
# window icon (a single-pane window has no pane row: its agent's icon/provider/state), session
# rows the attention counts. (The tests read this line.)
tree_format='#{?pane_format,#{?#{@agtmux_icon},#{@agtmux_icon} #{@agtmux_provider} #{@agtmux_state} #{?#{@agtmux_detail},#{@agtmux_detail} · ,}#{@agtmux_title},#{pane_current_command}},#{?window_format,#{?#{&&:#{==:#{window_panes},1},#{@agtmux_icon}},#{@agtmux_icon} #{@agtmux_provider} #{@agtmux_state} #{window_name},#{?#{@agtmux_window_icon},#{@agtmux_window_icon} ,}#{window_name}},#{?#{@agtmux_session_counts},#{@agtmux_session_counts} ,}#{session_windows} windows}}'
bind_key '@agtmux-popup-key' 'A' display-popup -E -w 80% -h 70% "$q_bin popup"
# The daemon's own session (`_agtmux`, where its control client sits) is left out.
bind_key '@agtmux-tree-key' 'S' choose-tree -Z -f '#{!=:#{session_name},_agtmux}' -F "$tree_format"
# The agent-only variant: choose-tree filtered (-f) to panes that hold an agent. No default
# key: `a` is what C-a prefix users press for send-prefix. Name one to have it.
bind_key '@agtmux-tree-agents-key' '' choose-tree -Z -f '#{@agtmux_presence}' -F "$tree_format"
# Earlier versions bound `a` to it by default: take that binding back (only ours).
if [ -z "$(tmux show-option -gqv '@agtmux-tree-agents-key')" ]; then
	case "$(prefix_binding a)" in
	*'@agtmux_presence'*) tmux unbind-key a ;;
	esac
fi
# prefix + N: jump to the agent pane that needs you most; again cycles.
bind_key '@agtmux-next-key' 'N' run-shell -b "$q_bin next -c #{q:client_name} >/dev/null 2>&1 || true"

# Window icons in the window list, unless the user placed #{@agtmux_window_icon} already or
# set @agtmux-window-icon off. Prepended once: a reload finds it and leaves the format alone.
if [ "$(get_tmux_option '@agtmux-window-icon' 'on')" != "off" ]; then
	for fmt in window-status-format window-status-current-format; do
		value="$(tmux show-option -gqv "$fmt")"
		case "$value" in
		*'@agtmux_window_icon'*) ;;
		*) tmux set-option -gq "$fmt" "#{?#{@agtmux_window_icon},#{@agtmux_window_icon} ,}$value" ;;
		esac
	done
fi

# A running daemon re-reads the @agtmux-* options when this changes (it subscribes to it), so
# `set -g @agtmux-theme light` + `source-file` applies without restarting the daemon.
tmux set-option -gq @agtmux_reload "$(date +%s).$$"

# One daemon per server: `--detach` starts its keeper in a new session (no setsid binary
# needed, macOS has none) and returns at once; a second start is a quiet no-op (flocks). The
# keeper restarts a crashed daemon and shows "agtmux down" in #{@agtmux_attention} meanwhile.
socket="$(current_socket)"
if [ -n "$socket" ]; then
	"$bin" daemon -S "$socket" --detach </dev/null >/dev/null 2>&1
	# The daemon's control client leaves when the daemon dies, even with its keeper (kill -9
	# of both): tmux fires client-detached, and --revive (rate-limited, a no-op while a daemon
	# runs) starts a new keeper. One process per detach, never per redraw. A fixed index keeps
	# a reload from adding the hook twice and leaves the user's own hooks alone.
	case "$bin$socket" in
	*"'"*) ;; # cannot be quoted for tmux below: go without the hook
	*)
		q_socket="$(printf '%q' "$socket")"
		revive="${q_bin//\#/##} daemon -S ${q_socket//\#/##} --revive"
		tmux set-hook -g 'client-detached[8426]' "run-shell -b '$revive'"
		;;
	esac
fi
exit 0
