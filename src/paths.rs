//! Where things live (product.md §5): which tmux server we talk to, and the per-server files
//! derived from its socket path: the lock, the API socket and the wake-up socket in the runtime
//! dir, the database and the hook spool in the state dir.
//!
//! The key is derived from the *canonical* socket path, so `agtmux daemon -L work` and a hook
//! whose `$TMUX` names the same socket through a symlinked `/tmp` agree on one spool.
use std::path::{Path, PathBuf};

/// How a command names its tmux server, mirroring tmux's own `-L` / `-S`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerArg {
    pub name: Option<String>,
    pub path: Option<PathBuf>,
}

/// The tmux socket directory tmux itself uses: `${TMUX_TMPDIR:-/tmp}/tmux-$UID`.
pub fn tmux_socket_dir() -> PathBuf {
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
pub fn tmux_env_socket() -> Option<PathBuf> {
    let v = std::env::var("TMUX").ok()?;
    let first = v.split(',').next()?;
    if first.is_empty() {
        return None;
    }
    Some(PathBuf::from(first))
}

/// Per-server identity on disk: a readable, collision-safe name from the canonical socket path.
pub fn server_key(socket: &Path) -> String {
    let canon = std::fs::canonicalize(socket).unwrap_or_else(|_| socket.to_path_buf());
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
        let runtime_dir = runtime_root();
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
    pub fn wake_socket(&self) -> PathBuf {
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
/// is unsafe (see [`runtime_fallback_reason`]), then `<state root>/run`.
pub fn runtime_root() -> PathBuf {
    if let Some(p) = env_path("AGTMUX_RUNTIME_DIR") {
        return p;
    }
    if let Some(p) = env_path("XDG_RUNTIME_DIR") {
        return p.join("agtmux");
    }
    let tmp = tmp_runtime_dir();
    if unsafe_dir(&tmp).is_some() {
        return state_root().join("run");
    }
    tmp
}

fn tmp_runtime_dir() -> PathBuf {
    PathBuf::from(format!("/tmp/agtmux-{}", uid()))
}

/// Why the runtime dir is not `/tmp/agtmux-$UID` (issue 16: another user can create that
/// name first, mode 0777, and serve a fake daemon there): `None` when it is used. Both the
/// daemon and the CLI take the same decision from the same facts, so they agree on the place.
pub fn runtime_fallback_reason() -> Option<String> {
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
pub fn unsafe_dir(dir: &Path) -> Option<String> {
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
pub fn state_root() -> PathBuf {
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
pub fn ensure_private_dir(dir: &Path) -> std::io::Result<()> {
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
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

/// FNV-1a, 64 bit: a tiny stable hash for ids and keys (not for security).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
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
