//! Where things live (README "Commands", Files): which tmux server we talk to, and the per-server
//! files
//! derived from its socket path: the lock, the API socket and the wake-up socket in the runtime
//! dir, the database and the hook spool in the state dir.
//!
//! The key is derived from the *canonical* socket path, so `agtmux daemon -L work` and a hook
//! whose `$TMUX` names the same socket through a symlinked `/tmp` agree on one spool (on macOS
//! `/tmp` is a link to `/private/tmp`, and tmux's `#{socket_path}` names the latter).
use crate::core::hash::fnv1a64;
use std::path::{Path, PathBuf};

/// How a command names its tmux server, mirroring tmux's own `-L` / `-S` (the daemon's and
/// every client command's options). Default: the server of `$TMUX`, else tmux's default.
#[derive(clap::Args, Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerArg {
    /// tmux server socket name, as `tmux -L`.
    #[arg(short = 'L', value_name = "NAME")]
    pub name: Option<String>,
    /// tmux server socket path, as `tmux -S`.
    #[arg(short = 'S', value_name = "PATH")]
    pub path: Option<PathBuf>,
}

impl ServerArg {
    /// The named server's socket and agtmux's files for it.
    pub fn paths(&self) -> ServerPaths {
        ServerPaths::new(socket_path(self))
    }
}

/// The tmux socket directory tmux itself uses: `${TMUX_TMPDIR:-/tmp}/tmux-$UID`.
pub(crate) fn tmux_socket_dir() -> PathBuf {
    let base = std::env::var_os("TMUX_TMPDIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    base.join(format!("tmux-{}", uid()))
}

/// The socket of the server named by `-S`, `-L`, else `$TMUX`, else tmux's default.
pub fn socket_path(arg: &ServerArg) -> PathBuf {
    if let Some(p) = &arg.path {
        return p.clone();
    }
    if let Some(n) = &arg.name {
        return tmux_socket_dir().join(n);
    }
    if let Some(p) = tmux_env_socket() {
        return p;
    }
    tmux_socket_dir().join("default")
}

/// The socket named by `$TMUX` (`/tmp/tmux-0/default,1234,0`), when set.
pub(crate) fn tmux_env_socket() -> Option<PathBuf> {
    let v = std::env::var("TMUX").ok()?;
    let first = v.split(',').next()?;
    if first.is_empty() {
        return None;
    }
    Some(PathBuf::from(first))
}

/// Per-server identity on disk: a readable, collision-safe name from the canonical socket path.
pub fn server_key(socket: &Path) -> String {
    let canon = canonical_socket(socket);
    let s = canon.to_string_lossy();
    let base: String = canon
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    format!("{}-{:012x}", base, fnv1a64(s.as_bytes()) & 0xffff_ffff_ffff)
}

/// The socket path with every symlink resolved. A socket that is not there (yet, or any more)
/// still gets its directory resolved, so `/tmp/tmux-501/x` and `/private/tmp/tmux-501/x` give
/// one key either way.
fn canonical_socket(socket: &Path) -> PathBuf {
    if let Ok(c) = std::fs::canonicalize(socket) {
        return c;
    }
    match (socket.parent(), socket.file_name()) {
        (Some(dir), Some(name)) => std::fs::canonicalize(dir)
            .map(|d| d.join(name))
            .unwrap_or_else(|_| socket.to_path_buf()),
        _ => socket.to_path_buf(),
    }
}

/// All per-server paths.
#[derive(Debug, Clone)]
pub struct ServerPaths {
    pub socket: PathBuf,
    pub key: String,
    pub runtime_dir: PathBuf,
    pub state_dir: PathBuf,
}

impl ServerPaths {
    pub fn new(socket: PathBuf) -> Self {
        let key = server_key(&socket);
        let runtime_dir = runtime_dir_for(runtime_root(), &key);
        let state_dir = state_root().join(&key);
        ServerPaths {
            socket,
            key,
            runtime_dir,
            state_dir,
        }
    }
    pub fn lock(&self) -> PathBuf {
        self.runtime_dir.join(format!("{}.lock", self.key))
    }
    pub fn api_socket(&self) -> PathBuf {
        self.runtime_dir.join(format!("{}.sock", self.key))
    }
    pub(crate) fn wake_socket(&self) -> PathBuf {
        self.runtime_dir.join(format!("{}.wake", self.key))
    }
    pub fn db(&self) -> PathBuf {
        self.state_dir.join("agtmux.db")
    }
    pub fn spool(&self) -> PathBuf {
        self.state_dir.join("spool.jsonl")
    }
    pub fn log(&self) -> PathBuf {
        self.state_dir.join("daemon.log")
    }
}

/// `AGTMUX_RUNTIME_DIR`, else `$XDG_RUNTIME_DIR/agtmux`, else `/tmp/agtmux-$UID` unless that
/// is unsafe (see [`runtime_fallback_reason`]), then `<state root>/run` (macOS has no
/// `XDG_RUNTIME_DIR`; its per-user `$TMPDIR` is too long for socket paths, see below).
pub(crate) fn runtime_root() -> PathBuf {
    if let Some(p) = env_path("AGTMUX_RUNTIME_DIR") {
        return p;
    }
    if let Some(p) = env_path("XDG_RUNTIME_DIR") {
        return p.join("agtmux");
    }
    default_runtime_root()
}

/// `/tmp/agtmux-$UID`, or `<state root>/run` when that name is unsafe
/// ([`runtime_fallback_reason`]).
fn default_runtime_root() -> PathBuf {
    let tmp = tmp_runtime_dir();
    if unsafe_dir(&tmp).is_some() {
        return state_root().join("run");
    }
    tmp
}

fn tmp_runtime_dir() -> PathBuf {
    PathBuf::from(format!("/tmp/agtmux-{}", uid()))
}

/// The runtime dir holds this server's sockets (`KEY.sock`, `KEY.wake`), and a Unix socket
/// path is short: 103 bytes on macOS, 107 on Linux. When `root` is too long for them (a deep
/// `AGTMUX_RUNTIME_DIR` or `XDG_RUNTIME_DIR`, e.g. one under macOS's `/var/folders/…/T/`), the
/// runtime dir is the default one (`/tmp/agtmux-$UID`), which fits, and the daemon's log says so
/// ([`runtime_dir_note`]). Every
/// agtmux process derives the same choice from the same environment, so they still meet.
fn runtime_dir_for(root: PathBuf, key: &str) -> PathBuf {
    let need = root.join(format!("{key}.sock")).as_os_str().len();
    let max = crate::sys::sock::max_path_len();
    if need <= max {
        return root;
    }
    default_runtime_root()
}

/// The daemon's log line when [`runtime_dir_for`] moved the sockets (`None`: it did not).
pub(crate) fn runtime_dir_note(sp: &ServerPaths) -> Option<String> {
    let root = runtime_root();
    (sp.runtime_dir != root).then(|| {
        format!(
            "runtime_dir_too_long dir={} max_socket_path_bytes={} using={}",
            root.display(),
            crate::sys::sock::max_path_len(),
            sp.runtime_dir.display()
        )
    })
}

/// Why the runtime dir is not `/tmp/agtmux-$UID` (issue 16: another user can create that
/// name first, mode 0777, and serve a fake daemon there): `None` when it is used. Both the
/// daemon and the CLI take the same decision from the same facts, so they agree on the place.
pub(crate) fn runtime_fallback_reason() -> Option<String> {
    if env_path("AGTMUX_RUNTIME_DIR").is_some() || env_path("XDG_RUNTIME_DIR").is_some() {
        return None;
    }
    let tmp = tmp_runtime_dir();
    unsafe_dir(&tmp).map(|why| {
        format!(
            "{} {why}; using {} instead",
            tmp.display(),
            state_root().join("run").display()
        )
    })
}

/// Why an existing `dir` must not hold our sockets or data: not a real directory (a symlink
/// or a file), owned by another user, or writable by others. `None` if it is missing or safe.
pub(crate) fn unsafe_dir(dir: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let m = match std::fs::symlink_metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => return Some(format!("cannot be checked ({e})")),
    };
    if m.file_type().is_symlink() {
        return Some("is a symlink".into());
    }
    if !m.is_dir() {
        return Some("is not a directory".into());
    }
    if m.uid() != uid() {
        return Some(format!("is owned by uid {}, not {}", m.uid(), uid()));
    }
    // Ours: a loose mode is tightened by `ensure_private_dir`.
    None
}

/// `AGTMUX_STATE_DIR`, else `${XDG_STATE_HOME:-~/.local/state}/agtmux`.
pub(crate) fn state_root() -> PathBuf {
    if let Some(p) = env_path("AGTMUX_STATE_DIR") {
        return p;
    }
    if let Some(p) = env_path("XDG_STATE_HOME") {
        return p.join("agtmux");
    }
    let home = env_path("HOME").unwrap_or_else(|| PathBuf::from("/tmp"));
    home.join(".local/state/agtmux")
}

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// Create `dir` (and parents) with mode 0700; tighten the mode if it already exists and is ours.
/// Refused, with the reason, when it is a symlink, not a directory, or another user's
/// (issue 16: a squatted runtime dir), or when its parent lets others rename it away (writable
/// by others without the sticky bit).
pub(crate) fn ensure_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    if let Some(why) = unsafe_dir(dir) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!("{} {why}: refusing to use it", dir.display()),
        ));
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty())
        && let Ok(pm) = std::fs::metadata(parent)
    {
        let mode = pm.permissions().mode();
        if mode & 0o002 != 0 && mode & 0o1000 == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                format!(
                    "{} is writable by anyone and not sticky (uid {}): {} could be replaced; refusing to use it",
                    parent.display(),
                    pm.uid(),
                    dir.display()
                ),
            ));
        }
    }
    let meta = std::fs::symlink_metadata(dir)?;
    if meta.permissions().mode() & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

pub fn uid() -> u32 {
    crate::sys::user::uid()
}

/// Where package managers put programs, after `$PATH`: Homebrew on Apple silicon, Homebrew on
/// Intel (and hand installs), MacPorts, Nix, then the system. A tmux server started by launchd
/// or a GUI terminal may run with a `PATH` that lacks `/opt/homebrew/bin`.
const KNOWN_BIN_DIRS: &[&str] = &[
    "/opt/homebrew/bin",
    "/usr/local/bin",
    "/opt/local/bin",
    "/run/current-system/sw/bin",
    "/usr/bin",
    "/bin",
];

/// The program `name` (a bare name): the first `$PATH` entry that has it as an executable
/// file, else the first of [`KNOWN_BIN_DIRS`]. `None`: nowhere.
pub(crate) fn find_program(name: &str) -> Option<PathBuf> {
    let known: Vec<&Path> = KNOWN_BIN_DIRS.iter().map(Path::new).collect();
    find_program_in(name, std::env::var_os("PATH").as_deref(), &known)
}

fn find_program_in(
    name: &str,
    path_var: Option<&std::ffi::OsStr>,
    known: &[&Path],
) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    if name.is_empty() || name.contains('/') {
        return None;
    }
    let from_path: Vec<PathBuf> = path_var
        .map(|p| std::env::split_paths(p).collect())
        .unwrap_or_default();
    from_path
        .iter()
        .map(PathBuf::as_path)
        .chain(known.iter().copied())
        .filter(|d| d.is_absolute())
        .map(|d| d.join(name))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

#[cfg(test)]
impl ServerPaths {
    /// Tests: every path of one server in a fresh dir `agtmux-<tag>-<pid>` under the temp dir
    /// (emptied first).
    pub(crate) fn in_temp_dir(tag: &str) -> ServerPaths {
        let d = std::env::temp_dir().join(format!("agtmux-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("create temp dir");
        ServerPaths {
            socket: d.join("sock"),
            key: "k".into(),
            runtime_dir: d.clone(),
            state_dir: d,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_dirs_are_named_and_ours_are_fine() {
        let d = std::env::temp_dir().join(format!("agtmux-paths-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        assert_eq!(unsafe_dir(&d), None, "missing is fine: we create it");
        ensure_private_dir(&d).unwrap();
        assert_eq!(unsafe_dir(&d), None);
        let link = d.with_extension("link");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&d, &link).unwrap();
        assert_eq!(unsafe_dir(&link).as_deref(), Some("is a symlink"));
        assert!(ensure_private_dir(&link).is_err());
        let _ = std::fs::remove_file(&link);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn key_is_stable_and_distinct() {
        let a = server_key(Path::new("/nonexistent/tmux-0/work"));
        let b = server_key(Path::new("/nonexistent/tmux-0/play"));
        assert_eq!(a, server_key(Path::new("/nonexistent/tmux-0/work")));
        assert_ne!(a, b);
        assert!(a.starts_with("work-"));
    }

    #[test]
    fn a_symlinked_dir_gives_one_key_whether_the_socket_exists_or_not() {
        // As macOS's /tmp → /private/tmp.
        let base = std::env::temp_dir().join(format!("agtmux-paths-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let real = base.join("private-tmp");
        std::fs::create_dir_all(&real).unwrap();
        let link = base.join("tmp");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert_eq!(
            server_key(&link.join("default")),
            server_key(&real.join("default"))
        );
        std::fs::write(real.join("default"), "").unwrap();
        assert_eq!(
            server_key(&link.join("default")),
            server_key(&real.join("default"))
        );
        assert_ne!(
            server_key(&link.join("default")),
            server_key(&real.join("other"))
        );
        let _ = std::fs::remove_dir_all(&base);
    }

    #[test]
    fn a_runtime_dir_too_long_for_socket_paths_falls_back_to_a_short_one() {
        let key = server_key(Path::new("/nonexistent/tmux-501/default"));
        let short = PathBuf::from("/run/user/501/agtmux");
        assert_eq!(runtime_dir_for(short.clone(), &key), short);
        // A macOS $TMPDIR-style root: the socket path would pass the OS limit.
        let long = PathBuf::from(format!(
            "/var/folders/x8/{}/T/agtmux-runtime-dir-of-a-very-patient-user",
            "q".repeat(40)
        ));
        let dir = runtime_dir_for(long, &key);
        assert_eq!(dir, default_runtime_root());
        let sock = dir.join(format!("{key}.sock"));
        assert!(sock.as_os_str().len() <= crate::sys::sock::max_path_len());
        // The same environment gives the same choice (the hook and the daemon meet).
        assert_eq!(
            ServerPaths::new("/x/default".into()).runtime_dir,
            ServerPaths::new("/x/default".into()).runtime_dir
        );
    }

    #[test]
    fn programs_are_found_on_path_first_then_in_package_manager_dirs() {
        use std::os::unix::fs::PermissionsExt;
        let base = std::env::temp_dir().join(format!("agtmux-find-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let (on_path, brew, empty) = (base.join("bin"), base.join("homebrew"), base.join("e"));
        for d in [&on_path, &brew, &empty] {
            std::fs::create_dir_all(d).unwrap();
        }
        let put = |d: &Path, mode: u32| {
            let p = d.join("tmux");
            std::fs::write(&p, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
            p
        };
        let brew_tmux = put(&brew, 0o755);
        let known = [brew.as_path()];
        // A PATH without it (launchd's): the Homebrew dir.
        let path = std::env::join_paths([&empty]).unwrap();
        assert_eq!(
            find_program_in("tmux", Some(&path), &known),
            Some(brew_tmux.clone())
        );
        assert_eq!(find_program_in("tmux", None, &known), Some(brew_tmux));
        // Not executable: skipped. On PATH and executable: PATH wins.
        put(&on_path, 0o644);
        let path = std::env::join_paths([&on_path]).unwrap();
        assert_eq!(
            find_program_in("tmux", Some(&path), &known),
            Some(brew.join("tmux"))
        );
        let path_tmux = put(&on_path, 0o755);
        assert_eq!(
            find_program_in("tmux", Some(&path), &known),
            Some(path_tmux)
        );
        assert_eq!(
            find_program_in("tmux", Some(&path), &[]),
            Some(on_path.join("tmux"))
        );
        assert_eq!(find_program_in("nope", Some(&path), &known), None);
        assert_eq!(find_program_in("../tmux", Some(&path), &known), None);
        let _ = std::fs::remove_dir_all(&base);
    }

    #[test]
    fn explicit_path_wins() {
        let arg = ServerArg {
            name: Some("x".into()),
            path: Some("/s".into()),
        };
        assert_eq!(socket_path(&arg), PathBuf::from("/s"));
        let arg = ServerArg {
            name: Some("x".into()),
            path: None,
        };
        assert!(socket_path(&arg).ends_with("x"));
    }
}
