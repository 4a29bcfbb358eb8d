//! The platform layer: the only place that names an OS API (libc calls, `/proc`, inotify,
//! kqueue, libproc, socket credentials, terminal modes, clocks). Everything above it asks in
//! the crate's own terms, so Linux and macOS differ only inside this directory.
//!
//! Supported: Linux (run and tested) and macOS (type-checked for `aarch64-apple-darwin` and
//! `x86_64-apple-darwin` by `scripts/check-macos`). `scripts/check-platform-layer` fails when
//! code outside `src/sys/` names an OS API.
#[cfg(not(any(target_os = "linux", target_os = "macos")))]
compile_error!("agtmux runs on Linux and macOS only (src/sys has no port for this OS)");

pub(crate) mod bounded;
pub mod clock;
pub(crate) mod detach;
pub(crate) mod env;
pub(crate) mod fd;
pub(crate) mod host;
pub mod peercred;
pub mod procs;
pub(crate) mod random;
pub(crate) mod signals;
pub(crate) mod sock;
pub(crate) mod term;
pub(crate) mod user;
pub(crate) mod watch;
