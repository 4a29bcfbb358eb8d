//! The terminal: raw mode for the popup (restored on drop) and the window size.
//!
//! WHY here: termios and `TIOCGWINSZ` are OS APIs, which only the platform layer names.
use std::io;
use std::os::fd::RawFd;

/// The terminal at `fd` in raw mode (output post-processing kept, reads return per byte);
/// the saved attributes come back on drop, also on an early return.
pub(crate) struct RawMode {
    fd: RawFd,
    saved: libc::termios,
}

impl RawMode {
    pub(crate) fn enter(fd: RawFd) -> io::Result<RawMode> {
        // SAFETY: tcgetattr/tcsetattr on a terminal fd with a zeroed, then filled struct.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(fd, &mut t) != 0 {
                return Err(io::Error::last_os_error());
            }
            let saved = t;
            libc::cfmakeraw(&mut t);
            t.c_oflag |= libc::OPOST;
            t.c_cc[libc::VMIN] = 1;
            t.c_cc[libc::VTIME] = 0;
            if libc::tcsetattr(fd, libc::TCSANOW, &t) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(RawMode { fd, saved })
        }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: restoring the attributes read in `enter`.
        unsafe { libc::tcsetattr(self.fd, libc::TCSANOW, &self.saved) };
    }
}

/// Columns and rows of the terminal at `fd`, when it is one and says.
pub(crate) fn size(fd: RawFd) -> Option<(usize, usize)> {
    // SAFETY: TIOCGWINSZ fills a winsize struct we own.
    unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        if libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) == 0 && ws.ws_col > 0 && ws.ws_row > 0 {
            return Some((usize::from(ws.ws_col), usize::from(ws.ws_row)));
        }
    }
    None
}
/// Open a terminal device for one non-blocking write, without making it our controlling
/// terminal (the notifier writes OSC bytes straight to a tmux client's tty).
pub(crate) fn open_for_write(path: &std::path::Path) -> io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK)
        .open(path)
}
