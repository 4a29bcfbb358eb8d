//! macOS: processes from libproc (`proc_pidinfo` for the parent, the terminal's foreground
//! group and the cwd; `proc_listchildpids` for children) and the `KERN_PROCARGS2` sysctl for
//! argv. A process that is gone, or that belongs to another user, gives nothing.
use super::Stat;
use std::path::PathBuf;

/// Bytes asked for an argv: enough for any agent's command line (the environment that follows
/// it is cut off and never parsed).
const ARGS_BUF: usize = 64 * 1024;
/// Children listed at most per process (the walk is bounded further up).
const MAX_CHILDREN: usize = 256;

/// A libc struct `proc_pidinfo` fills in.
///
/// # Safety
/// Implement only for plain C data (integers and byte arrays) for which all-zero bytes are a
/// valid value.
unsafe trait PidInfo: Sized {}
// SAFETY: plain C structs of integers and byte arrays.
unsafe impl PidInfo for libc::proc_bsdinfo {}
// SAFETY: plain C structs of integers and byte arrays.
unsafe impl PidInfo for libc::proc_vnodepathinfo {}

/// `proc_pidinfo(pid, flavor)` into a `T`; `None` unless it filled all of it.
fn pidinfo<T: PidInfo>(pid: i32, flavor: libc::c_int) -> Option<T> {
    if pid <= 0 {
        return None;
    }
    let size = std::mem::size_of::<T>() as libc::c_int;
    // SAFETY: `T: PidInfo` is plain data valid when zeroed; proc_pidinfo writes at most `size`
    // bytes into it.
    let mut info: T = unsafe { std::mem::zeroed() };
    // SAFETY: `info` is valid for `size` bytes.
    let n = unsafe { libc::proc_pidinfo(pid, flavor, 0, (&mut info as *mut T).cast(), size) };
    (n == size).then_some(info)
}

fn bsdinfo(pid: i32) -> Option<libc::proc_bsdinfo> {
    pidinfo(pid, libc::PROC_PIDTBSDINFO)
}

pub(super) fn stat(pid: i32) -> Option<Stat> {
    let i = bsdinfo(pid)?;
    Some(Stat {
        ppid: i32::try_from(i.pbi_ppid).unwrap_or(0),
        tpgid: i32::try_from(i.e_tpgid).unwrap_or(0),
        start: Some(
            i.pbi_start_tvsec
                .saturating_mul(1_000_000)
                .saturating_add(i.pbi_start_tvusec),
        ),
    })
}

pub(super) fn argv(pid: i32) -> Vec<String> {
    if pid <= 0 {
        return Vec::new();
    }
    let mut buf = vec![0u8; ARGS_BUF];
    let mut len: libc::size_t = buf.len();
    let mut mib = [libc::CTL_KERN, libc::KERN_PROCARGS2, pid];
    // SAFETY: `mib` names a read-only sysctl; the kernel writes at most `len` bytes into `buf`
    // and stores the written length back into `len`.
    let r = unsafe {
        libc::sysctl(
            mib.as_mut_ptr(),
            mib.len() as libc::c_uint,
            buf.as_mut_ptr().cast(),
            &mut len,
            std::ptr::null_mut(),
            0,
        )
    };
    if r != 0 {
        log::debug!(
            "proc_argv_unreadable pid={pid} err={}",
            std::io::Error::last_os_error()
        );
        return Vec::new();
    }
    match super::parse::parse_procargs2(&buf[..len.min(buf.len())]) {
        Some(a) => a,
        None => {
            log::debug!("proc_argv_unparsable pid={pid} bytes={len}");
            Vec::new()
        }
    }
}

pub(super) fn children(pid: i32) -> Vec<i32> {
    if pid <= 0 {
        return Vec::new();
    }
    let mut pids = vec![0 as libc::pid_t; MAX_CHILDREN];
    let bytes = (pids.len() * std::mem::size_of::<libc::pid_t>()) as libc::c_int;
    // SAFETY: `pids` is valid for `bytes` bytes; the call fills a prefix of it.
    let r = unsafe { libc::proc_listchildpids(pid, pids.as_mut_ptr().cast(), bytes) };
    if r <= 0 {
        return Vec::new();
    }
    // The buffer was zeroed and no child has pid 0: the filled prefix is what is non-zero
    // (whether the call counts its result in pids or in bytes).
    pids.into_iter().filter(|p| *p > 0).collect()
}

pub(super) fn cwd(pid: i32) -> Option<PathBuf> {
    let info: libc::proc_vnodepathinfo = pidinfo(pid, libc::PROC_PIDVNODEPATHINFO)?;
    // `vip_path` is a MAXPATHLEN byte array (declared as 32 × 32 in the libc crate).
    let bytes: Vec<u8> = info
        .pvi_cdir
        .vip_path
        .iter()
        .flatten()
        .map(|c| *c as u8)
        .take_while(|c| *c != 0)
        .collect();
    if bytes.is_empty() {
        return None;
    }
    use std::os::unix::ffi::OsStringExt;
    Some(PathBuf::from(std::ffi::OsString::from_vec(bytes)))
}
