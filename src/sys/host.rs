//! The machine's host name (pane titles that only repeat it are noise, `core::title`).
use std::ffi::CStr;

/// `gethostname(2)`; empty when it cannot be read.
pub(crate) fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `len` bytes into our buffer.
    let r = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len() - 1) };
    if r != 0 {
        log::warn!(
            "hostname_unreadable err={}",
            std::io::Error::last_os_error()
        );
        return String::new();
    }
    // The last byte stays 0, so there is always a terminator.
    CStr::from_bytes_until_nul(&buf)
        .map(|c| c.to_string_lossy().trim().to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn hostname_is_what_the_kernel_says() {
        let h = super::hostname();
        assert!(!h.is_empty());
        if let Ok(k) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
            assert_eq!(h, k.trim());
        }
    }
}
