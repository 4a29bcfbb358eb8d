#!/usr/bin/env bash
# agtmux's installer: get an agtmux binary of the plugin's version when none was found.
# agtmux.tmux runs it in the background (`tmux run-shell -b`), never inside the config load.
#
#   scripts/install.sh PLUGIN_DIR VERSION
#
# 1. Download agtmux-VERSION-TRIPLE.tar.gz and its .sha256 from @agtmux-release-url (default:
#    the GitHub release vVERSION) with curl or wget, check the SHA-256, and move the binary
#    into PLUGIN_DIR/bin/agtmux (a temporary file, then a rename). A checksum mismatch stops
#    here: the file is never run nor installed.
# 2. Otherwise (no asset for this platform, no network, no curl/wget) build with cargo; its
#    output goes to the install log.
# 3. Tell the user: @agtmux_daemon holds "installing…" meanwhile, then the daemon's own state
#    (this script runs agtmux.tmux again) or "install failed: <reason and the fix>"; a
#    display-message says the same, and so does `agtmux doctor` (@agtmux_install).
# The log (state dir, install.log) ends with "result: ok" or "result: failed".
# Bash 3.2 and BSD tools (macOS) are enough.
set -u

plugin_dir="${1:?plugin dir}"
version="${2:?version}"
# shellcheck source=scripts/helpers.sh
source "$plugin_dir/scripts/helpers.sh"

state="$(state_root)"
mkdir -p "$state" 2>/dev/null && chmod 700 "$state" 2>/dev/null
log="$state/install.log"
bin_dir="$plugin_dir/bin"
mkdir -p "$bin_dir" || {
	tmux set-option -gq @agtmux_daemon "install failed: cannot create $bin_dir (check its permissions, or set @agtmux-bin)"
	exit 0
}

# One installer per plugin dir: a reload while we run starts another, which leaves at once.
lock="$bin_dir/.install.lock"
if ! mkdir "$lock" 2>/dev/null; then
	other="$(cat "$lock/pid" 2>/dev/null)"
	if [ -n "$other" ] && kill -0 "$other" 2>/dev/null; then
		exit 0
	fi
	rm -rf "$lock"
	mkdir "$lock" 2>/dev/null || exit 0
fi
printf '%s\n' "$$" >"$lock/pid"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/agtmux-install.XXXXXX")" || tmp=""
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
	[ -n "$tmp" ] && rm -rf "$tmp"
	rm -rf "$lock"
}
trap cleanup EXIT

: >"$log" 2>/dev/null || log=/dev/null
# Nothing of ours reaches tmux's run-shell (it would show it over the user's pane).
exec >>"$log" 2>&1
say() {
	printf '%s %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >>"$log"
}

# tmux formats expand '#': our own text must show as written.
fmt_escape() {
	printf '%s' "$1" | sed 's/#/##/g'
}

# Show MESSAGE on every attached client for MS milliseconds (a message to no client would be
# lost: the status line and doctor keep saying it).
notify() {
	local c shown=
	while IFS= read -r c; do
		[ -n "$c" ] || continue
		tmux display-message -c "$c" -d "$2" "$1" 2>/dev/null && shown=1
	done <<EOC
$(tmux list-clients -F '#{client_name}' 2>/dev/null)
EOC
	[ -n "$shown" ] || say "(no client attached to show the message)"
}

progress() {
	tmux set-option -gq @agtmux_daemon "$(fmt_escape "installing… $1")"
}

fail() {
	local msg="install failed: $1"
	say "$msg"
	tmux set-option -gq @agtmux_daemon "$(fmt_escape "$msg")" \; \
		set-option -gq @agtmux_attention '#[fg=white,bg=red,bold]agtmux install failed#[default]' \; \
		set-option -gq @agtmux_install "$msg" \; \
		set-option -gq @agtmux_install_log "$log"
	notify "agtmux: $(fmt_escape "$msg") (log: $(fmt_escape "$log"))" 15000
	say "result: failed"
	# 0: tmux would show a failed run-shell -b job over the user's pane; we said it above.
	exit 0
}

say "agtmux $version: installing into $plugin_dir (no binary of this version found)"
while IFS= read -r c; do
	[ -n "$c" ] || continue
	if [ -x "$c" ]; then
		say "  candidate $c: $("$c" --version 2>&1 </dev/null | head -n 1)"
	fi
done <<EOC
$(binary_candidates "$plugin_dir")
EOC
tmux set-option -gq @agtmux_install "installing $version" \; set-option -gq @agtmux_install_log "$log"
[ -n "$tmp" ] || fail "cannot create a temporary directory (check TMPDIR and free space)"

triple=""
os="$(uname -s 2>/dev/null)"
arch="$(uname -m 2>/dev/null)"
case "$os/$arch" in
Linux/x86_64 | Linux/amd64) triple=x86_64-unknown-linux-musl ;;
Linux/aarch64 | Linux/arm64) triple=aarch64-unknown-linux-musl ;;
Darwin/x86_64) triple=x86_64-apple-darwin ;;
Darwin/arm64 | Darwin/aarch64) triple=aarch64-apple-darwin ;;
esac

fetch() { # URL FILE: 0 when FILE holds URL's body; the reason on stderr otherwise
	local rc
	if command -v curl >/dev/null 2>&1; then
		curl -fsSL --connect-timeout 15 --max-time 600 -o "$2" "$1" 2>"$2.err"
		rc=$?
	elif command -v wget >/dev/null 2>&1; then
		wget -q -T 30 -O "$2" "$1" 2>"$2.err"
		rc=$?
	else
		printf 'neither curl nor wget is installed\n' >&2
		return 1
	fi
	tail -n 1 "$2.err" >&2
	[ "$rc" -eq 0 ] || return 1
	[ -s "$2" ]
}

sha256_of() {
	if command -v sha256sum >/dev/null 2>&1; then
		sha256sum "$1" | awk '{print $1}'
	elif command -v shasum >/dev/null 2>&1; then
		shasum -a 256 "$1" | awk '{print $1}'
	else
		return 1
	fi
}

installed=""
why_no_download=""
if [ -z "$triple" ]; then
	why_no_download="no prebuilt agtmux for $os/$arch"
else
	base="$(get_tmux_option '@agtmux-release-url' "https://github.com/$AGTMUX_REPO/releases/download/v$version")"
	base="${base%/}"
	asset="agtmux-$version-$triple.tar.gz"
	progress "(downloading $asset)"
	say "download $base/$asset"
	if ! err="$(fetch "$base/$asset" "$tmp/$asset" 2>&1)"; then
		why_no_download="could not download $base/$asset (${err:-no data})"
	elif ! err="$(fetch "$base/$asset.sha256" "$tmp/$asset.sha256" 2>&1)"; then
		why_no_download="could not download its checksum $base/$asset.sha256 (${err:-no data}); an unchecked file is never installed"
	else
		want="$(awk 'NR == 1 {print $1}' "$tmp/$asset.sha256" | tr 'A-F' 'a-f')"
		if ! got="$(sha256_of "$tmp/$asset")"; then
			why_no_download="neither sha256sum nor shasum is installed to check the download"
		elif [ "${#want}" -ne 64 ] || [ "$want" != "$got" ]; then
			rm -f "$tmp/$asset"
			fail "checksum mismatch for $asset (expected ${want:-nothing}, got $got): nothing was installed or run. Fix: reload the plugin to retry (tmux source-file ~/.tmux.conf); if it persists, report it at https://github.com/$AGTMUX_REPO/issues, or build it: cd $plugin_dir && cargo build --release"
		else
			say "sha256 ok $got"
			mkdir -p "$tmp/x"
			if ! tar -xzf "$tmp/$asset" -C "$tmp/x" >>"$log" 2>&1; then
				fail "$asset is not a valid tar.gz (checksum matched: the release is broken). Fix: report it at https://github.com/$AGTMUX_REPO/issues, or build it: cd $plugin_dir && cargo build --release"
			fi
			new=""
			for c in "$tmp/x/agtmux" "$tmp/x"/*/agtmux; do
				[ -f "$c" ] && new="$c" && break
			done
			[ -n "$new" ] || fail "$asset holds no agtmux binary. Fix: report it at https://github.com/$AGTMUX_REPO/issues, or build it: cd $plugin_dir && cargo build --release"
			chmod 755 "$new"
			if ! binary_fits "$new" "$version"; then
				fail "$asset holds $("$new" --version 2>&1 | head -n 1), not agtmux $version. Fix: check @agtmux-release-url, or build it: cd $plugin_dir && cargo build --release"
			fi
			part="$bin_dir/.agtmux.$$"
			if cp "$new" "$part" && chmod 755 "$part" && mv -f "$part" "$bin_dir/agtmux"; then
				installed="downloaded $asset"
				say "installed $bin_dir/agtmux"
			else
				rm -f "$part"
				fail "cannot write $bin_dir/agtmux (check the permissions and free space of $bin_dir)"
			fi
		fi
	fi
fi

if [ -z "$installed" ]; then
	say "no download: $why_no_download"
	cargo=""
	if command -v cargo >/dev/null 2>&1; then
		cargo="$(command -v cargo)"
	elif [ -x "$HOME/.cargo/bin/cargo" ]; then
		cargo="$HOME/.cargo/bin/cargo"
	fi
	if [ -z "$cargo" ]; then
		if [ -z "$triple" ]; then
			fail "$why_no_download and cargo is not installed. Fix: install Rust (https://rustup.rs) and reload the plugin (tmux source-file ~/.tmux.conf), or set @agtmux-bin to an agtmux $version binary"
		fi
		fail "$why_no_download, and cargo is not installed to build it. Fix: check the network (or @agtmux-release-url) and reload the plugin (tmux source-file ~/.tmux.conf), install Rust (https://rustup.rs), or put agtmux $version on PATH / set @agtmux-bin"
	fi
	progress "(cargo build --release, log: $log)"
	say "building: cd $plugin_dir && $cargo build --release"
	if ! (cd "$plugin_dir" && "$cargo" build --release) >>"$log" 2>&1; then
		fail "$why_no_download, and cargo build --release failed (its output: $log). Fix: read the log; update Rust (rustup update, agtmux needs 1.85+) and reload the plugin"
	fi
	if ! binary_fits "$plugin_dir/target/release/agtmux" "$version"; then
		fail "cargo build finished but $plugin_dir/target/release/agtmux is not agtmux $version. Fix: cd $plugin_dir && cargo build --release, and read its output"
	fi
	installed="built with cargo"
	say "built $plugin_dir/target/release/agtmux"
fi

tmux set-option -gq @agtmux_install "ok $version ($installed)" \; \
	set-option -gu @agtmux_attention
# Bind the keys and start the daemon with the new binary.
AGTMUX_INSTALLED=1 bash "$plugin_dir/agtmux.tmux" >>"$log" 2>&1
notify "agtmux $version installed ($(fmt_escape "$installed"))" 4000
say "result: ok"
exit 0
