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

# The project's GitHub repository (owner/name), as in the README's TPM line.
# shellcheck disable=SC2034 # used by scripts/install.sh
AGTMUX_REPO='OWNER/agtmux'

# plugin_version DIR: the version in DIR/Cargo.toml (read without cargo).
plugin_version() {
	sed -n 's/^version[[:space:]]*=[[:space:]]*"\([^"]*\)".*/\1/p' "$1/Cargo.toml" 2>/dev/null | head -n 1
}

# binary_fits PATH VERSION: PATH is an executable whose `--version` prints `agtmux VERSION`.
binary_fits() {
	[ -n "$1" ] && [ -f "$1" ] && [ -x "$1" ] && [ "$("$1" --version 2>/dev/null </dev/null)" = "agtmux $2" ]
}

# binary_candidates DIR: where a binary is looked for, in order (one a line; empty lines skipped).
binary_candidates() {
	get_tmux_option '@agtmux-bin' ''
	printf '\n%s\n%s\n' "$1/bin/agtmux" "$1/target/release/agtmux"
	command -v agtmux 2>/dev/null
	printf '\n'
}

# find_binary DIR VERSION: print the first candidate that fits; fail when none does.
find_binary() {
	local c
	while IFS= read -r c; do
		[ -n "$c" ] || continue
		if binary_fits "$c" "$2"; then
			printf '%s' "$c"
			return 0
		fi
	done <<EOC
$(binary_candidates "$1")
EOC
	return 1
}

# sh_quote WORD: WORD quoted for /bin/sh (single quotes).
sh_quote() {
	printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"
}

# The user's state dir for agtmux (as the binary computes it).
state_root() {
	if [ -n "${AGTMUX_STATE_DIR:-}" ]; then
		printf '%s' "$AGTMUX_STATE_DIR"
	else
		printf '%s/agtmux' "${XDG_STATE_HOME:-$HOME/.local/state}"
	fi
}

# prefix_binding KEY: the prefix table's binding of KEY (its list-keys line), or nothing. The
# whole table is listed and filtered here: given a key, tmux 3.7 shows a single match as a
# status message instead of printing it.
prefix_binding() {
	tmux list-keys -T prefix 2>/dev/null | awk -v k="$1" '{
		for (i = 1; i + 2 <= NF; i++) if ($i == "-T") { if ($(i + 2) == k) print; next }
	}'
}
