#!/usr/bin/env bash
# Small helpers shared by agtmux.tmux and the scripts (TPM style).

# get_tmux_option NAME DEFAULT: a user option's value, or DEFAULT when unset/empty.
get_tmux_option() {
	local value
	value="$(tmux show-option -gqv "$1" 2>/dev/null)"
	if [ -n "$value" ]; then
		printf '%s' "$value"
	else
		printf '%s' "$2"
	fi
}

# The socket of the tmux server that runs this script (TPM runs us inside it).
current_socket() {
	tmux display-message -p '#{socket_path}' 2>/dev/null || printf '%s' "${TMUX%%,*}"
}
