#!/usr/bin/env bash
# agtmux TPM entry: build the binary if needed, bind the keys, and start one daemon for this
# tmux server. TPM runs this at every config load, without -b, so it must return at once:
# the daemon is started fully detached, and its own flock makes a second start a quiet no-op.
CURRENT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/helpers.sh
source "$CURRENT_DIR/scripts/helpers.sh"

bin="$(get_tmux_option '@agtmux-bin' "$CURRENT_DIR/target/release/agtmux")"

if [ ! -x "$bin" ]; then
	if command -v cargo >/dev/null 2>&1; then
		tmux display-message "agtmux: building (cargo build --release), this takes a minute…"
		(cd "$CURRENT_DIR" && cargo build --release --quiet >/dev/null 2>&1)
	fi
	if [ ! -x "$bin" ]; then
		tmux display-message "agtmux: no binary at $bin (install Rust and run: cargo build --release in $CURRENT_DIR)"
		exit 0
	fi
fi

# Status-line placeholder, as tmux-prefix-highlight does: #{agtmux_status} → the option.
for side in status-right status-left; do
	value="$(tmux show-option -gqv "$side")"
	case "$value" in
	*'#{agtmux_status}'*)
		tmux set-option -gq "$side" "${value//\#\{agtmux_status\}/#{@agtmux_attention\}}"
		;;
	esac
done

popup_key="$(get_tmux_option '@agtmux-popup-key' 'A')"
tree_key="$(get_tmux_option '@agtmux-tree-key' 'S')"
# The agent-only variant: choose-tree filtered (-f) to panes that hold an agent. The filter is
# evaluated per pane; windows and sessions without a matching pane drop out of the tree.
tree_agents_key="$(get_tmux_option '@agtmux-tree-agents-key' 'a')"
q_bin="$(printf '%q' "$bin")"
# Rows of choose-tree: pane rows show the agent icon/provider/state/title, window rows the
# window icon, session rows the attention counts. (The tests read this line.)
tree_format='#{?pane_format,#{?#{@agtmux_icon},#{@agtmux_icon} #{@agtmux_provider} #{@agtmux_state} #{@agtmux_title},#{pane_current_command}},#{?window_format,#{?#{@agtmux_window_icon},#{@agtmux_window_icon} ,}#{window_name},#{?#{@agtmux_session_counts},#{@agtmux_session_counts} ,}#{session_windows} windows}}'
if [ -n "$popup_key" ] && [ "$popup_key" != "none" ]; then
	tmux bind-key "$popup_key" display-popup -E -w 80% -h 70% "$q_bin popup"
fi
if [ -n "$tree_key" ] && [ "$tree_key" != "none" ]; then
	tmux bind-key "$tree_key" choose-tree -Z -F "$tree_format"
fi
if [ -n "$tree_agents_key" ] && [ "$tree_agents_key" != "none" ]; then
	tmux bind-key "$tree_agents_key" choose-tree -Z -f '#{@agtmux_presence}' -F "$tree_format"
fi

# prefix + N (`@agtmux-next-key`): jump to the agent pane that needs you most; again cycles.
# The default key is bound only where nothing holds it yet; a key the user named always is.
next_key="$(tmux show-option -gqv '@agtmux-next-key')"
if [ -z "$next_key" ] && [ -z "$(tmux list-keys -T prefix N 2>/dev/null)" ]; then
	next_key='N'
fi
if [ -n "$next_key" ] && [ "$next_key" != "none" ]; then
	tmux bind-key "$next_key" run-shell -b "$q_bin next -c #{q:client_name} >/dev/null 2>&1 || true"
fi

# One daemon per server: `agtmux daemon` takes a per-socket flock and exits quietly if held.
socket="$(current_socket)"
if [ -n "$socket" ]; then
	setsid "$bin" daemon -S "$socket" </dev/null >/dev/null 2>&1 &
fi
exit 0
