//! File side of `agtmux setup` (README "Commands"): read and parse the user's settings file,
//! back it up, and replace it atomically.
//!
//! WHY: a half-written `settings.json` breaks the user's agent, so the new content goes to a
//! temp file in the same directory and is `rename`d over the old one (atomic on POSIX), with the
//! old file's permissions. A settings file that is a symlink (dotfiles managers) is written
//! through to its target so the link survives.
use super::SetupError;
use crate::core::time::utc_stamp;
use serde_json::Value;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The current file: its text and permission bits, or `None` when it does not exist.
pub struct Existing {
    pub text: String,
    pub mode: u32,
}

/// Follows a symlinked settings file to the file it points at (so rename keeps the link).
pub(crate) fn resolve_target(path: &Path) -> Result<PathBuf, SetupError> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            fs::canonicalize(path).map_err(|e| SetupError::Read {
                path: path.to_path_buf(),
                source: io::Error::new(
                    e.kind(),
                    format!("it is a symlink whose target cannot be resolved: {e}"),
                ),
            })
        }
        _ => Ok(path.to_path_buf()),
    }
}

pub(crate) fn read_existing(path: &Path) -> Result<Option<Existing>, SetupError> {
    let read_err = |source| SetupError::Read {
        path: path.to_path_buf(),
        source,
    };
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(read_err(e)),
    };
    if !meta.is_file() {
        return Err(read_err(io::Error::other("not a regular file")));
    }
    let bytes = fs::read(path).map_err(read_err)?;
    let text = String::from_utf8(bytes)
        .map_err(|_| read_err(io::Error::new(io::ErrorKind::InvalidData, "not UTF-8 text")))?;
    Ok(Some(Existing {
        text,
        mode: meta.permissions().mode() & 0o7777,
    }))
}

/// Parses the file text. Empty (or whitespace-only) counts as `{}`; a UTF-8 BOM is ignored.
pub fn parse(text: &str, path: &Path) -> Result<Value, SetupError> {
    let body = text.strip_prefix('\u{feff}').unwrap_or(text);
    if body.trim().is_empty() {
        return Ok(Value::Object(serde_json::Map::new()));
    }
    serde_json::from_str(body).map_err(|e| SetupError::Parse {
        path: path.to_path_buf(),
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })
}

/// 2-space pretty JSON with a trailing newline.
pub(crate) fn render(doc: &Value, path: &Path) -> Result<String, SetupError> {
    let mut s = serde_json::to_string_pretty(doc).map_err(|e| SetupError::Write {
        path: path.to_path_buf(),
        source: io::Error::other(e),
    })?;
    s.push('\n');
    Ok(s)
}

/// Copies `path` to `<path>.agtmux-bak-<stamp>` (with `-N` if that name is taken).
pub fn backup(path: &Path, epoch_secs: u64) -> Result<PathBuf, SetupError> {
    let base = format!("{}.agtmux-bak-{}", path.display(), utc_stamp(epoch_secs));
    let mut candidate = PathBuf::from(&base);
    let mut n = 1u32;
    while fs::symlink_metadata(&candidate).is_ok() {
        candidate = PathBuf::from(format!("{base}-{n}"));
        n += 1;
    }
    fs::copy(path, &candidate).map_err(|source| SetupError::Backup {
        path: candidate.clone(),
        source,
    })?;
    Ok(candidate)
}

/// Writes `contents` to `path` atomically with permission bits `mode`, creating the parent
/// directory when needed.
pub(crate) fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<(), SetupError> {
    let werr = |source| SetupError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&dir).map_err(werr)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "settings.json".to_string());
    let tmp = dir.join(format!(".{name}.agtmux-tmp-{}", std::process::id()));
    let result = (|| -> io::Result<()> {
        // A temp left by a crashed run of this same pid is ours to replace.
        let _ = fs::remove_file(&tmp);
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(contents)?;
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        // Make the rename durable; failure here does not undo the write, so ignore it.
        if let Ok(d) = fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(werr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_empty_and_bom() {
        let p = Path::new("x.json");
        assert_eq!(parse("  \n", p).unwrap(), serde_json::json!({}));
        assert_eq!(
            parse("\u{feff}{\"a\":1}", p).unwrap(),
            serde_json::json!({"a":1})
        );
        assert!(matches!(
            parse("{\"a\":1,}", p),
            Err(SetupError::Parse { line: 1, .. })
        ));
    }
}
