//! The process jail for interpreters (`python3`).
//!
//! One fresh child per session, created with a raw `clone()` into new user,
//! pid, mount, ipc, uts and net namespaces. The parent maps the child's root
//! to an unprivileged UID/GID outside (`65534`/nobody when the host runs as
//! root, the host's own UID otherwise) through `/proc/<pid>/{setgroups,
//! uid_map,gid_map}`, then releases the child, which:
//!
//! 1. switches to the mapped root (`setresgid`/`setresuid(0)`; its outside
//!    identity is now the unprivileged UID);
//! 2. builds a minimal filesystem: `/` made private, a small tmpfs as the new
//!    root, `/usr` (plus the `/bin`, `/lib*` links of a merged-usr system and
//!    any extra read-only binds) bound read-only/nosuid/nodev, `/dev/null`,
//!    a small `noexec` tmpfs at `/tmp`, **no `/proc`**; `pivot_root` and a
//!    lazy unmount of the old root; the new root is remounted read-only;
//! 3. `setsid`, `PR_SET_PDEATHSIG(SIGKILL)`, moves its pipes to fds 0–4
//!    (`/dev/null`, stdout, stderr, requests, replies) and closes all others;
//! 4. sets rlimits (`CPU`, `AS`, `FSIZE`, `NOFILE`, `NPROC`, `CORE=0`,
//!    `MEMLOCK=0`, `MSGQUEUE=0`);
//! 5. locks `SECBIT_NOROOT` (root inside gains no capabilities at `execve`),
//!    sets `no_new_privs`, installs the **stage-1** seccomp filter (wide
//!    enough for the interpreter to start, import the allowed modules and
//!    install stage 2; hostile calls such as `ptrace`, `mount`, `unshare`,
//!    `bpf`, `io_uring_*`, `keyctl` kill the process) and `execve`s
//!    `python3 -s -S -B -c RUNNER` with only `PYTHONHASHSEED=0` in the
//!    environment (deterministic hashing; no site, no user site, no `.pyc`).
//!
//! The trusted runner ([`crate::python::RUNNER`]) preloads the allowed
//! modules, compiles the candidate, installs the **stage-2** filter (only
//! `read` from fd 3, `write` to fds 1/2/4, memory management without
//! `PROT_EXEC`, futex, signals to itself, clocks, `getrandom`, exit; process
//! creation, `execve`, `kill`, sockets and the hostile set kill the process;
//! everything else fails with `EPERM`) and only then runs model code.
//!
//! The host drives the child over the pipes with a JSON-lines protocol
//! (requests on the child's fd 3, replies on fd 4), drains stdout/stderr
//! into capped logs, reads the child's CPU time from `/proc/<pid>/stat`, and
//! kills it with `pidfd_send_signal(SIGKILL)` on a CPU/wall timeout, output
//! flood or protocol error. Killing the init of the pid namespace kills every
//! process in it. If user namespaces, `pidfd_open` or seccomp are missing the
//! session fails with [`SandboxError::Unavailable`] naming what is missing.
//!
//! **Root vs non-root hosts.** As root the child runs as `65534` outside. As a
//! non-root user the same sequence works where unprivileged user namespaces
//! are allowed (`kernel.unprivileged_userns_clone=1`, no AppArmor
//! restriction); the child then runs as the host user outside, so
//! `RLIMIT_NPROC` counts all of that user's processes (it still blocks
//! forks), and files the host user can read stay invisible only because of
//! the mount namespace and stage 2.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule, TargetArch,
};

use crate::{Limits, SandboxError, Session, StartError, Usage, Verdict, VerdictKind};

/// The root directory the child builds inside its own mount namespace
/// (a tmpfs is mounted over it; the host's directory is never touched).
const NEW_ROOT: &str = "/tmp";
/// How stale the host's CPU-time sample of the child may get on the fast path.
const CPU_SAMPLE: Duration = Duration::from_millis(50);
/// Longest reply line accepted from the child.
const MAX_REPLY: usize = 64 * 1024;

fn setup_err(what: &str, e: std::io::Error) -> SandboxError {
    SandboxError::Setup(format!("{what}: {e}"))
}

// ---------------------------------------------------------------- seccomp --

/// Syscalls that kill the process in both stages: probing any of them is an
/// escape attempt.
fn hostile_syscalls() -> Vec<i64> {
    let mut v = vec![
        libc::SYS_ptrace,
        libc::SYS_process_vm_readv,
        libc::SYS_process_vm_writev,
        libc::SYS_pidfd_getfd,
        libc::SYS_mount,
        libc::SYS_umount2,
        libc::SYS_pivot_root,
        libc::SYS_unshare,
        libc::SYS_setns,
        libc::SYS_bpf,
        libc::SYS_perf_event_open,
        libc::SYS_userfaultfd,
        libc::SYS_keyctl,
        libc::SYS_add_key,
        libc::SYS_request_key,
        libc::SYS_io_uring_setup,
        libc::SYS_io_uring_enter,
        libc::SYS_io_uring_register,
        libc::SYS_init_module,
        libc::SYS_finit_module,
        libc::SYS_delete_module,
        libc::SYS_kexec_load,
        libc::SYS_kexec_file_load,
        libc::SYS_open_by_handle_at,
        libc::SYS_name_to_handle_at,
        libc::SYS_swapon,
        libc::SYS_swapoff,
        libc::SYS_reboot,
        libc::SYS_acct,
        libc::SYS_setuid,
        libc::SYS_setgid,
        libc::SYS_setreuid,
        libc::SYS_setregid,
        libc::SYS_setresuid,
        libc::SYS_setresgid,
        libc::SYS_setgroups,
        libc::SYS_capset,
        libc::SYS_chroot,
        libc::SYS_move_mount,
        libc::SYS_open_tree,
        libc::SYS_fsopen,
        libc::SYS_fsmount,
        libc::SYS_fsconfig,
        libc::SYS_fspick,
        libc::SYS_mknodat,
    ];
    #[cfg(target_arch = "x86_64")]
    v.extend([libc::SYS_iopl, libc::SYS_ioperm, libc::SYS_mknod]);
    v
}

/// Stage-2 additions to the hostile set: process creation, exec, signals to
/// other processes, sockets.
fn stage2_hostile() -> Vec<i64> {
    let mut v = hostile_syscalls();
    v.extend([
        libc::SYS_clone,
        libc::SYS_clone3,
        libc::SYS_execve,
        libc::SYS_execveat,
        libc::SYS_kill,
        libc::SYS_tkill,
        libc::SYS_tgkill,
        libc::SYS_pidfd_open,
        libc::SYS_pidfd_send_signal,
        libc::SYS_socket,
        libc::SYS_socketpair,
        libc::SYS_connect,
        libc::SYS_bind,
        libc::SYS_listen,
    ]);
    #[cfg(target_arch = "x86_64")]
    v.extend([libc::SYS_fork, libc::SYS_vfork]);
    v
}

/// Stage 1: what CPython needs to start, import the allowed modules (incl.
/// `ctypes`) and install stage 2. Unlisted calls fail with `EPERM`.
fn stage1_allowed() -> Vec<i64> {
    let mut v = vec![
        libc::SYS_read,
        libc::SYS_write,
        libc::SYS_readv,
        libc::SYS_writev,
        libc::SYS_pread64,
        libc::SYS_close,
        libc::SYS_fstat,
        libc::SYS_newfstatat,
        libc::SYS_statx,
        libc::SYS_lseek,
        libc::SYS_mmap,
        libc::SYS_mprotect,
        libc::SYS_munmap,
        libc::SYS_mremap,
        libc::SYS_madvise,
        libc::SYS_brk,
        libc::SYS_rt_sigaction,
        libc::SYS_rt_sigprocmask,
        libc::SYS_rt_sigreturn,
        libc::SYS_sigaltstack,
        libc::SYS_ioctl,
        libc::SYS_fcntl,
        libc::SYS_dup,
        libc::SYS_dup3,
        libc::SYS_openat,
        libc::SYS_getdents64,
        libc::SYS_getcwd,
        libc::SYS_readlinkat,
        libc::SYS_faccessat,
        libc::SYS_faccessat2,
        libc::SYS_execve,
        libc::SYS_exit,
        libc::SYS_exit_group,
        libc::SYS_uname,
        libc::SYS_sysinfo,
        libc::SYS_getuid,
        libc::SYS_getgid,
        libc::SYS_geteuid,
        libc::SYS_getegid,
        libc::SYS_getpid,
        libc::SYS_gettid,
        libc::SYS_futex,
        libc::SYS_sched_getaffinity,
        libc::SYS_sched_yield,
        libc::SYS_set_tid_address,
        libc::SYS_set_robust_list,
        libc::SYS_rseq,
        libc::SYS_prlimit64,
        libc::SYS_getrandom,
        libc::SYS_clock_gettime,
        libc::SYS_clock_getres,
        libc::SYS_gettimeofday,
        libc::SYS_prctl,
        libc::SYS_seccomp,
    ];
    #[cfg(target_arch = "x86_64")]
    v.extend([
        libc::SYS_arch_prctl,
        libc::SYS_open,
        libc::SYS_stat,
        libc::SYS_lstat,
        libc::SYS_access,
        libc::SYS_readlink,
        libc::SYS_dup2,
        libc::SYS_getdents,
    ]);
    v
}

fn arch() -> Result<TargetArch, SandboxError> {
    TargetArch::try_from(std::env::consts::ARCH)
        .map_err(|_| SandboxError::Unavailable(format!("seccomp filters for {}", std::env::consts::ARCH)))
}

type Rules = BTreeMap<i64, Vec<SeccompRule>>;
type SResult<T> = std::result::Result<T, seccompiler::BackendError>;

fn program(rules: Rules, mismatch: SeccompAction, matched: SeccompAction, arch: TargetArch) -> SResult<BpfProgram> {
    BpfProgram::try_from(SeccompFilter::new(rules, mismatch, matched, arch)?)
}

fn unconditional(calls: &[i64]) -> Rules {
    calls.iter().map(|&c| (c, Vec::new())).collect()
}

/// One rule: `arg <op> value` (64-bit compare).
fn rule(arg: u8, op: SeccompCmpOp, value: u64) -> SResult<SeccompRule> {
    SeccompRule::new(vec![SeccompCondition::new(arg, SeccompCmpArgLen::Qword, op, value)?])
}

/// The compiled filters: stage 1 (installed before `execve`) and stage 2
/// (installed by the runner before model code).
#[derive(Debug)]
pub struct Filters {
    /// Installed in order before `execve`.
    pub stage1: Vec<BpfProgram>,
    /// Installed by the runner.
    pub stage2: Vec<BpfProgram>,
}

fn build_filters(arch: TargetArch) -> SResult<Filters> {
    let eperm = SeccompAction::Errno(libc::EPERM as u32);
    let kill1 = program(unconditional(&hostile_syscalls()), SeccompAction::Allow, SeccompAction::KillProcess, arch)?;
    let allow1 = program(unconditional(&stage1_allowed()), eperm.clone(), SeccompAction::Allow, arch)?;
    let mut r2: Rules = BTreeMap::new();
    r2.insert(libc::SYS_read, vec![rule(0, SeccompCmpOp::Eq, 3)?]);
    r2.insert(
        libc::SYS_write,
        vec![rule(0, SeccompCmpOp::Eq, 1)?, rule(0, SeccompCmpOp::Eq, 2)?, rule(0, SeccompCmpOp::Eq, 4)?],
    );
    let no_exec = || rule(2, SeccompCmpOp::MaskedEq(libc::PROT_EXEC as u64), 0);
    r2.insert(libc::SYS_mmap, vec![no_exec()?]);
    r2.insert(libc::SYS_mprotect, vec![no_exec()?]);
    for c in [
        libc::SYS_munmap,
        libc::SYS_mremap,
        libc::SYS_madvise,
        libc::SYS_brk,
        libc::SYS_rt_sigaction,
        libc::SYS_rt_sigprocmask,
        libc::SYS_rt_sigreturn,
        libc::SYS_sigaltstack,
        libc::SYS_futex,
        libc::SYS_getrandom,
        libc::SYS_clock_gettime,
        libc::SYS_clock_getres,
        libc::SYS_gettimeofday,
        libc::SYS_sched_yield,
        libc::SYS_getpid,
        libc::SYS_gettid,
        libc::SYS_exit,
        libc::SYS_exit_group,
    ] {
        r2.insert(c, Vec::new());
    }
    let allow2 = program(r2, eperm, SeccompAction::Allow, arch)?;
    let kill2 = program(unconditional(&stage2_hostile()), SeccompAction::Allow, SeccompAction::KillProcess, arch)?;
    // Stage 2 is installed kill-list first: once the allow-list is in place,
    // `seccomp` itself fails with EPERM.
    Ok(Filters { stage1: vec![kill1, allow1], stage2: vec![kill2, allow2] })
}

/// Builds (once) the seccomp programs for this architecture.
pub fn filters() -> Result<&'static Filters, SandboxError> {
    static F: OnceLock<Result<Filters, String>> = OnceLock::new();
    F.get_or_init(|| {
        let arch = arch().map_err(|e| e.to_string())?;
        build_filters(arch).map_err(|e| format!("compiling the seccomp filters: {e}"))
    })
    .as_ref()
    .map_err(|e| SandboxError::Unavailable(e.clone()))
}

fn to_hex(p: &BpfProgram) -> String {
    let mut s = String::with_capacity(p.len() * 16);
    for ins in p {
        for b in ins.code.to_ne_bytes().iter().chain([ins.jt, ins.jf].iter()).chain(ins.k.to_ne_bytes().iter()) {
            s.push_str(&format!("{b:02x}"));
        }
    }
    s
}

// ------------------------------------------------------------- child setup --

/// Everything the child needs, prepared (allocated) by the parent before
/// `clone`, so the child only makes system calls.
struct Plan {
    root: CString,
    root_opts: CString,
    tmpfs: CString,
    dirs: Vec<CString>,
    symlinks: Vec<(CString, CString)>,
    binds: Vec<(CString, CString, libc::c_ulong)>,
    devnull_src: CString,
    devnull_dst: CString,
    tmp_dir: CString,
    tmp_opts: Option<CString>,
    dot: CString,
    slash: CString,
    hostname: &'static [u8],
    exe: CString,
    argv: Vec<CString>,
    env: CString,
    rlimits: Vec<(libc::__rlimit_resource_t, u64)>,
    stage1: Vec<(u16, *const seccompiler::sock_filter)>,
}

fn cstr(s: impl AsRef<[u8]>) -> Result<CString, SandboxError> {
    CString::new(s.as_ref().to_vec()).map_err(|_| SandboxError::Setup("path contains a NUL byte".into()))
}

fn cpath(p: &Path) -> Result<CString, SandboxError> {
    use std::os::unix::ffi::OsStrExt;
    cstr(p.as_os_str().as_bytes())
}

/// Mount flags that a remount inside a user namespace must keep (locked).
fn locked_flags(path: &Path) -> libc::c_ulong {
    let Ok(c) = cpath(path) else { return 0 };
    // SAFETY: valid C string and a zeroed out-struct.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return 0;
    }
    let f = st.f_flag;
    let mut out = 0;
    for (st_flag, ms_flag) in [
        (libc::ST_NOATIME, libc::MS_NOATIME),
        (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
        (libc::ST_RELATIME, libc::MS_RELATIME),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
    ] {
        if f & st_flag != 0 {
            out |= ms_flag;
        }
    }
    out
}

impl Plan {
    fn new(limits: &Limits) -> Result<Self, SandboxError> {
        let py = &limits.python;
        if !py.interpreter.is_absolute() {
            return Err(SandboxError::Setup(format!(
                "interpreter {} is not an absolute path",
                py.interpreter.display()
            )));
        }
        if !py.interpreter.exists() {
            return Err(SandboxError::Unavailable(format!("interpreter {} not found", py.interpreter.display())));
        }
        let root = PathBuf::from(NEW_ROOT);
        let mut dirs = Vec::new();
        let mut symlinks = Vec::new();
        let mut binds = Vec::new();
        let mut bind_dir = |host: &Path, dirs: &mut Vec<CString>| -> Result<(), SandboxError> {
            let rel = host.strip_prefix("/").unwrap_or(host);
            let mut acc = root.clone();
            for comp in rel.components() {
                acc.push(comp);
                let c = cpath(&acc)?;
                if !dirs.contains(&c) {
                    dirs.push(c);
                }
            }
            let flags = libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV;
            binds.push((cpath(host)?, cpath(&acc)?, flags | locked_flags(host)));
            Ok(())
        };
        bind_dir(Path::new("/usr"), &mut dirs)?;
        for top in ["bin", "sbin", "lib", "lib32", "lib64", "libx32"] {
            let host = Path::new("/").join(top);
            match std::fs::symlink_metadata(&host) {
                Ok(m) if m.file_type().is_symlink() => {
                    let target = std::fs::read_link(&host).map_err(|e| setup_err("readlink", e))?;
                    symlinks.push((cpath(&target)?, cpath(&root.join(top))?));
                }
                Ok(m) if m.is_dir() => bind_dir(&host, &mut dirs)?,
                _ => {}
            }
        }
        for extra in &py.extra_ro_binds {
            if !extra.is_absolute() || !extra.exists() {
                return Err(SandboxError::Setup(format!("bind {} must be an existing absolute path", extra.display())));
            }
            bind_dir(extra, &mut dirs)?;
        }
        dirs.push(cpath(&root.join("dev"))?);
        let tmp_dir = cpath(&root.join("tmp"))?;
        dirs.push(tmp_dir.clone());
        let tmp_opts = if limits.tmp_bytes > 0 {
            Some(cstr(format!("size={},nr_inodes=64,mode=1777", limits.tmp_bytes.max(4096)))?)
        } else {
            None
        };
        let runner = crate::python::RUNNER;
        // Not `-I`: it implies `-E`, which would ignore PYTHONHASHSEED. The
        // environment is empty apart from PYTHONHASHSEED=0, so `-s -S -B`
        // give the same isolation (no user site, no site, no .pyc writes).
        let argv = ["python3", "-s", "-S", "-B", "-c", runner].iter().map(cstr).collect::<Result<Vec<_>, _>>()?;
        let mut rlimits: Vec<(libc::__rlimit_resource_t, u64)> = Vec::new();
        #[cfg(feature = "test-hooks")]
        let set_rlimits = !limits.hooks.no_rlimits;
        #[cfg(not(feature = "test-hooks"))]
        let set_rlimits = true;
        if set_rlimits {
            let cpu_s = limits.total_cpu.as_secs() + 1;
            rlimits.extend([
                (libc::RLIMIT_CPU, cpu_s),
                (libc::RLIMIT_AS, limits.memory_bytes),
                (libc::RLIMIT_FSIZE, limits.file_bytes),
                (libc::RLIMIT_NOFILE, limits.open_files.max(8)),
                (libc::RLIMIT_NPROC, limits.processes),
                (libc::RLIMIT_CORE, 0),
                (libc::RLIMIT_MEMLOCK, 0),
                (libc::RLIMIT_MSGQUEUE, 0),
            ]);
        }
        let f = filters()?;
        #[cfg(feature = "test-hooks")]
        let use_seccomp = !limits.hooks.no_seccomp;
        #[cfg(not(feature = "test-hooks"))]
        let use_seccomp = true;
        let stage1 = if use_seccomp { f.stage1.iter().map(|p| (p.len() as u16, p.as_ptr())).collect() } else { vec![] };
        Ok(Plan {
            root: cpath(&root)?,
            root_opts: cstr("size=1m,nr_inodes=256,mode=0755")?,
            tmpfs: cstr("tmpfs")?,
            dirs,
            symlinks,
            binds,
            devnull_src: cstr("/dev/null")?,
            devnull_dst: cpath(&root.join("dev/null"))?,
            tmp_dir,
            tmp_opts,
            dot: cstr(".")?,
            slash: cstr("/")?,
            hostname: b"sandbox",
            exe: cpath(&py.interpreter)?,
            argv,
            env: cstr("PYTHONHASHSEED=0")?,
            rlimits,
            stage1,
        })
    }
}

/// Child-side step codes reported on the error pipe when setup fails.
const STEPS: &[&str] = &[
    "sync",
    "setresgid",
    "setresuid",
    "make / private",
    "mount tmpfs root",
    "mkdir",
    "symlink",
    "bind mount",
    "remount read-only",
    "bind /dev/null",
    "mount /tmp",
    "pivot_root",
    "umount old root",
    "remount / read-only",
    "setsid",
    "pdeathsig",
    "dup2",
    "setrlimit",
    "securebits",
    "no_new_privs",
    "seccomp",
    "execve",
];

/// Runs in the cloned child. Only system calls; never returns.
///
/// glibc's `setresuid`/`setresgid` wrappers broadcast to every thread the
/// parent had (and would wait forever for threads that do not exist in the
/// child), so the raw system calls are used.
///
/// # Safety
/// Must be called only in the child right after `clone`, with `plan` and the
/// fds prepared by the parent.
unsafe fn child(plan: &Plan, fds: [RawFd; 5], sync_r: RawFd, err_w: RawFd) -> ! {
    let fail = |step: usize| -> ! {
        let errno = *libc::__errno_location();
        let rec = [step as u32, errno as u32];
        libc::write(err_w, rec.as_ptr() as *const libc::c_void, 8);
        libc::_exit(127);
    };
    let mut b = 0u8;
    if libc::read(sync_r, &mut b as *mut u8 as *mut libc::c_void, 1) != 1 {
        fail(0);
    }
    if libc::syscall(libc::SYS_setresgid, 0, 0, 0) != 0 {
        fail(1);
    }
    if libc::syscall(libc::SYS_setresuid, 0, 0, 0) != 0 {
        fail(2);
    }
    let null = std::ptr::null::<libc::c_char>();
    if libc::mount(null, plan.slash.as_ptr(), null, libc::MS_REC | libc::MS_PRIVATE, std::ptr::null()) != 0 {
        fail(3);
    }
    if libc::mount(
        plan.tmpfs.as_ptr(),
        plan.root.as_ptr(),
        plan.tmpfs.as_ptr(),
        libc::MS_NOSUID | libc::MS_NODEV,
        plan.root_opts.as_ptr() as *const libc::c_void,
    ) != 0
    {
        fail(4);
    }
    for d in &plan.dirs {
        if libc::mkdir(d.as_ptr(), 0o755) != 0 && *libc::__errno_location() != libc::EEXIST {
            fail(5);
        }
    }
    for (target, link) in &plan.symlinks {
        if libc::symlink(target.as_ptr(), link.as_ptr()) != 0 {
            fail(6);
        }
    }
    for (src, dst, flags) in &plan.binds {
        if libc::mount(src.as_ptr(), dst.as_ptr(), null, libc::MS_BIND | libc::MS_REC, std::ptr::null()) != 0 {
            fail(7);
        }
        if libc::mount(null, dst.as_ptr(), null, *flags, std::ptr::null()) != 0 {
            fail(8);
        }
    }
    let fd = libc::open(plan.devnull_dst.as_ptr(), libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC, 0o666);
    if fd < 0 {
        fail(9);
    }
    libc::close(fd);
    if libc::mount(plan.devnull_src.as_ptr(), plan.devnull_dst.as_ptr(), null, libc::MS_BIND, std::ptr::null()) != 0 {
        fail(9);
    }
    if let Some(opts) = &plan.tmp_opts {
        if libc::mount(
            plan.tmpfs.as_ptr(),
            plan.tmp_dir.as_ptr(),
            plan.tmpfs.as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            opts.as_ptr() as *const libc::c_void,
        ) != 0
        {
            fail(10);
        }
    }
    if libc::chdir(plan.root.as_ptr()) != 0
        || libc::syscall(libc::SYS_pivot_root, plan.dot.as_ptr(), plan.dot.as_ptr()) != 0
    {
        fail(11);
    }
    if libc::umount2(plan.dot.as_ptr(), libc::MNT_DETACH) != 0 || libc::chdir(plan.slash.as_ptr()) != 0 {
        fail(12);
    }
    if libc::mount(
        null,
        plan.slash.as_ptr(),
        null,
        libc::MS_REMOUNT | libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV,
        std::ptr::null(),
    ) != 0
    {
        fail(13);
    }
    libc::sethostname(plan.hostname.as_ptr() as *const libc::c_char, plan.hostname.len());
    if libc::setsid() < 0 {
        fail(14);
    }
    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) != 0 {
        fail(15);
    }
    // Move the fds above any target number, then into place.
    let mut high = [0; 5];
    for (k, fd) in fds.iter().enumerate() {
        high[k] = libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, 100);
        if high[k] < 0 {
            fail(16);
        }
    }
    let err_fd = libc::fcntl(err_w, libc::F_DUPFD_CLOEXEC, 5);
    if err_fd != 5 && libc::dup3(err_fd, 5, libc::O_CLOEXEC) < 0 {
        fail(16);
    }
    let err_w = 5;
    for (k, h) in high.iter().enumerate() {
        if libc::dup2(*h, k as RawFd) < 0 {
            libc::write(err_w, [16u32, *libc::__errno_location() as u32].as_ptr() as *const libc::c_void, 8);
            libc::_exit(127);
        }
    }
    libc::syscall(libc::SYS_close_range, 6u32, u32::MAX, 0u32);
    let fail = |step: usize| -> ! {
        let errno = *libc::__errno_location();
        let rec = [step as u32, errno as u32];
        libc::write(err_w, rec.as_ptr() as *const libc::c_void, 8);
        libc::_exit(127);
    };
    for (res, val) in &plan.rlimits {
        let r = libc::rlimit { rlim_cur: *val, rlim_max: *val };
        if libc::setrlimit(*res, &r) != 0 {
            fail(17);
        }
    }
    // SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_KEEP_CAPS_LOCKED: root in
    // the namespace gains no capabilities at execve.
    if libc::prctl(libc::PR_SET_SECUREBITS, 0x1 | 0x2 | 0x20, 0, 0, 0) != 0 {
        fail(18);
    }
    if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
        fail(19);
    }
    for (len, ptr) in &plan.stage1 {
        let prog = libc::sock_fprog { len: *len, filter: *ptr as *mut libc::sock_filter };
        if libc::syscall(libc::SYS_seccomp, 1 /* SECCOMP_SET_MODE_FILTER */, 0, &prog as *const libc::sock_fprog) != 0 {
            fail(20);
        }
    }
    let mut argv: [*const libc::c_char; 8] = [std::ptr::null(); 8];
    for (k, a) in plan.argv.iter().enumerate().take(7) {
        argv[k] = a.as_ptr();
    }
    let envp: [*const libc::c_char; 2] = [plan.env.as_ptr(), std::ptr::null()];
    libc::execve(plan.exe.as_ptr(), argv.as_ptr(), envp.as_ptr());
    fail(21)
}

fn pipe() -> Result<(OwnedFd, OwnedFd), SandboxError> {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid 2-element array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(setup_err("pipe2", std::io::Error::last_os_error()));
    }
    // SAFETY: pipe2 returned two fresh fds that we now own.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn write_file(path: &str, data: &str) -> std::io::Result<()> {
    std::fs::OpenOptions::new().write(true).open(path)?.write_all(data.as_bytes())
}

/// CPU time (user + system) of `pid` from `/proc/<pid>/stat`.
fn cpu_time(pid: i32) -> Option<Duration> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Some(Duration::from_nanos(ticks * 1_000_000_000 / hz))
}

/// Checks once whether this host can create the jail's namespaces.
pub fn probe() -> Result<(), SandboxError> {
    static P: OnceLock<Result<(), String>> = OnceLock::new();
    P.get_or_init(|| {
        if !Path::new("/proc/self/ns/user").exists() {
            return Err("user namespaces (no /proc/self/ns/user)".into());
        }
        if !Path::new("/proc/sys/kernel/seccomp").exists() && !has_seccomp_status() {
            return Err("seccomp filters (kernel without CONFIG_SECCOMP_FILTER)".into());
        }
        Ok(())
    })
    .clone()
    .map_err(SandboxError::Unavailable)
}

fn has_seccomp_status() -> bool {
    std::fs::read_to_string("/proc/self/status").map(|s| s.contains("Seccomp:")).unwrap_or(false)
}

// ------------------------------------------------------------------ session --

/// A jailed Python strategy process.
pub struct PythonSession {
    pid: i32,
    pidfd: OwnedFd,
    req: Option<File>,
    rep: File,
    out: File,
    err: File,
    reply_buf: Vec<u8>,
    log: Vec<u8>,
    log_total: u64,
    limits: Limits,
    started: Instant,
    cpu: Duration,
    cpu_at: Instant,
    calls: u64,
    reaped: bool,
    dead: Option<Verdict>,
}

impl std::fmt::Debug for PythonSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PythonSession").field("pid", &self.pid).field("calls", &self.calls).finish()
    }
}

enum Reply {
    Ready,
    Action(String),
}

impl PythonSession {
    /// Spawns the jail, sends the program and waits until it is loaded.
    pub fn start(source: &str, entry: &str, limits: &Limits) -> Result<Self, StartError> {
        probe()?;
        let plan = Plan::new(limits)?;
        let (req_r, req_w) = pipe()?;
        let (rep_r, rep_w) = pipe()?;
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        let (sync_r, sync_w) = pipe()?;
        let (fail_r, fail_w) = pipe()?;
        let devnull = File::open("/dev/null").map_err(|e| setup_err("/dev/null", e))?;
        let fds = [devnull.as_raw_fd(), out_w.as_raw_fd(), err_w.as_raw_fd(), req_r.as_raw_fd(), rep_w.as_raw_fd()];
        let flags = libc::CLONE_NEWUSER
            | libc::CLONE_NEWPID
            | libc::CLONE_NEWNS
            | libc::CLONE_NEWIPC
            | libc::CLONE_NEWUTS
            | libc::CLONE_NEWNET
            | libc::SIGCHLD;
        // SAFETY: a fork-like clone (no new stack); the child only runs
        // `child`, which makes system calls on memory prepared above and
        // never returns.
        let pid = unsafe {
            libc::syscall(libc::SYS_clone, flags as libc::c_ulong, 0usize, 0usize, 0usize, 0usize) as libc::pid_t
        };
        if pid < 0 {
            let e = std::io::Error::last_os_error();
            return Err(SandboxError::Unavailable(format!(
                "clone with user/pid/mount/ipc/uts/net namespaces failed ({e}); unprivileged user namespaces may be disabled"
            ))
            .into());
        }
        if pid == 0 {
            // SAFETY: we are the child of the clone above.
            unsafe { child(&plan, fds, sync_r.as_raw_fd(), fail_w.as_raw_fd()) }
        }
        drop((req_r, rep_w, out_w, err_w, sync_r, fail_w, devnull));
        // SAFETY: pid is our child (not yet reaped, so it cannot be recycled).
        let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as RawFd;
        let kill_reap = |pid: i32| {
            // SAFETY: pid is our unreaped child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, std::ptr::null_mut(), 0);
            }
        };
        if pidfd < 0 {
            kill_reap(pid);
            return Err(SandboxError::Unavailable("pidfd_open (Linux ≥ 5.3)".into()).into());
        }
        // SAFETY: pidfd_open returned a fresh fd.
        let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
        // SAFETY: geteuid/getegid have no preconditions.
        let (euid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
        let (ouid, ogid) = if euid == 0 { (65534, 65534) } else { (euid, egid) };
        let maps = write_file(&format!("/proc/{pid}/setgroups"), "deny")
            .and_then(|_| write_file(&format!("/proc/{pid}/uid_map"), &format!("0 {ouid} 1\n")))
            .and_then(|_| write_file(&format!("/proc/{pid}/gid_map"), &format!("0 {ogid} 1\n")));
        if let Err(e) = maps {
            kill_reap(pid);
            return Err(SandboxError::Unavailable(format!("writing the user namespace uid/gid map: {e}")).into());
        }
        let mut sync_w = File::from(sync_w);
        let _ = sync_w.write_all(b"x");
        drop(sync_w);
        let mut rec = Vec::new();
        let _ = File::from(fail_r).read_to_end(&mut rec);
        if rec.len() >= 8 {
            let step = u32::from_ne_bytes([rec[0], rec[1], rec[2], rec[3]]) as usize;
            let errno = i32::from_ne_bytes([rec[4], rec[5], rec[6], rec[7]]);
            kill_reap(pid);
            let what = STEPS.get(step).copied().unwrap_or("setup");
            return Err(SandboxError::Unavailable(format!(
                "jail setup step `{what}` failed: {}",
                std::io::Error::from_raw_os_error(errno)
            ))
            .into());
        }
        let mut s = PythonSession {
            pid,
            pidfd,
            req: Some(File::from(req_w)),
            rep: File::from(rep_r),
            out: File::from(out_r),
            err: File::from(err_r),
            reply_buf: Vec::new(),
            log: Vec::new(),
            log_total: 0,
            limits: limits.clone(),
            started: Instant::now(),
            cpu: Duration::ZERO,
            cpu_at: Instant::now(),
            calls: 0,
            reaped: false,
            dead: None,
        };
        for f in [&s.rep, &s.out, &s.err] {
            // SAFETY: valid fd owned by `s`.
            unsafe {
                let fl = libc::fcntl(f.as_raw_fd(), libc::F_GETFL);
                libc::fcntl(f.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK);
            }
        }
        #[cfg(feature = "test-hooks")]
        let stage2 = !limits.hooks.no_seccomp && !limits.hooks.no_stage2;
        #[cfg(not(feature = "test-hooks"))]
        let stage2 = true;
        let f = filters()?;
        let hello = serde_json::json!({
            "source": source,
            "entry": entry,
            "modules": limits.python.allowed_modules,
            "filters": if stage2 { f.stage2.iter().map(to_hex).collect::<Vec<_>>() } else { Vec::new() },
            "nr": libc::SYS_seccomp,
            "seed": limits.seed,
            "action_bytes": limits.action_bytes,
        });
        // Loading (interpreter start, preloads, the program's definitions) is
        // bounded by the session's CPU budget; the wall backstop leaves room
        // for a loaded machine so that CPU, not load, decides the verdict.
        let wall = limits.call_wall + limits.total_cpu * 3;
        match s.exchange(&hello.to_string(), wall, true) {
            Ok(Reply::Ready) => Ok(s),
            Ok(Reply::Action(_)) => {
                Err(s.fail(Verdict::new(VerdictKind::ProtocolError, "answered before loading")).into())
            }
            Err(v) => Err(v.into()),
        }
    }

    fn sample_cpu(&mut self) {
        if let Some(c) = cpu_time(self.pid) {
            self.cpu = c;
        }
        self.cpu_at = Instant::now();
    }

    /// The host pid of the jail's init process (for tests and monitoring).
    pub fn pid(&self) -> i32 {
        self.pid
    }

    fn kill(&mut self) {
        if self.reaped {
            return;
        }
        // SAFETY: pidfd refers to our child; SIGKILL of the pid-namespace
        // init kills every process in the namespace.
        unsafe {
            libc::syscall(libc::SYS_pidfd_send_signal, self.pidfd.as_raw_fd(), libc::SIGKILL, 0usize, 0u32);
        }
        self.reap(true);
    }

    /// Reaps the child; returns its wait status.
    fn reap(&mut self, block: bool) -> Option<i32> {
        if self.reaped {
            return None;
        }
        let mut status = 0;
        // SAFETY: pid is our child.
        let r = unsafe { libc::waitpid(self.pid, &mut status, if block { 0 } else { libc::WNOHANG }) };
        if r == self.pid {
            self.reaped = true;
            Some(status)
        } else {
            None
        }
    }

    fn fail(&mut self, v: Verdict) -> Verdict {
        self.drain_logs();
        self.kill();
        self.req = None;
        self.dead = Some(v.clone());
        v
    }

    fn drain_logs(&mut self) -> bool {
        let mut buf = [0u8; 8192];
        for k in 0..2 {
            loop {
                let f = if k == 0 { &mut self.out } else { &mut self.err };
                match f.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        self.log_total += n as u64;
                        let room = self.limits.output_bytes.saturating_sub(self.log.len());
                        self.log.extend_from_slice(&buf[..n.min(room)]);
                        if self.log_total > self.limits.output_bytes as u64 {
                            return false;
                        }
                    }
                    Err(_) => break,
                }
            }
        }
        true
    }

    /// Judges a child that closed its reply channel or exited. Waits at most
    /// 500 ms for it to exit (a child that closed fd 4 but keeps running is
    /// killed: protocol error).
    fn exit_verdict(&mut self) -> Verdict {
        let mut pfd = libc::pollfd { fd: self.pidfd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd.
        let exited = unsafe { libc::poll(&mut pfd, 1, 500) } > 0;
        if !exited {
            return self.fail(Verdict::new(VerdictKind::ProtocolError, "closed the reply channel"));
        }
        // A zombie's stat still holds its final CPU times.
        let cpu = cpu_time(self.pid).unwrap_or(self.cpu);
        self.cpu = cpu;
        let status = self.reap(true);
        let v = match status {
            Some(st) if libc::WIFSIGNALED(st) => {
                let sig = libc::WTERMSIG(st);
                match sig {
                    libc::SIGSYS => {
                        Verdict::new(VerdictKind::SyscallViolation, "killed by seccomp (forbidden system call)")
                    }
                    libc::SIGXCPU => Verdict::new(VerdictKind::TimeoutCpu, "CPU time limit (RLIMIT_CPU)"),
                    libc::SIGKILL if cpu >= self.limits.total_cpu => {
                        Verdict::new(VerdictKind::TimeoutCpu, "CPU time limit (RLIMIT_CPU)")
                    }
                    libc::SIGXFSZ => Verdict::new(VerdictKind::MemoryLimit, "file size limit (RLIMIT_FSIZE)"),
                    _ => Verdict::new(VerdictKind::RuntimeError, format!("killed by signal {sig}")),
                }
            }
            Some(st) if libc::WIFEXITED(st) => Verdict::new(
                VerdictKind::RuntimeError,
                format!("exited with status {} without answering", libc::WEXITSTATUS(st)),
            ),
            _ => Verdict::new(VerdictKind::RuntimeError, "exited without answering"),
        };
        self.fail(v)
    }

    /// Sends `line` and waits for one reply line under the limits.
    fn exchange(&mut self, line: &str, wall: Duration, loading: bool) -> Result<Reply, Verdict> {
        if let Some(v) = &self.dead {
            return Err(v.clone());
        }
        let t0 = Instant::now();
        // CPU time is read from /proc only on the slow path: when the last
        // sample is older than 50 ms, and on every poll slice of a call that
        // has not answered yet. A fast call costs three system calls.
        if self.cpu_at.elapsed() > CPU_SAMPLE {
            self.sample_cpu();
        }
        let cpu0 = self.cpu;
        let mut first = true;
        let Some(req) = self.req.as_mut() else {
            return Err(self.fail(Verdict::new(VerdictKind::ProtocolError, "request pipe closed")));
        };
        let mut msg = line.as_bytes().to_vec();
        msg.push(b'\n');
        if req.write_all(&msg).is_err() {
            return Err(self.exit_verdict());
        }
        let deadline = (t0 + wall).min(self.started + self.limits.total_wall);
        #[cfg(feature = "test-hooks")]
        let account_cpu = !self.limits.hooks.no_cpu_accounting;
        #[cfg(not(feature = "test-hooks"))]
        let account_cpu = true;
        loop {
            if let Some(pos) = self.reply_buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.reply_buf.drain(..=pos).collect();
                if self.cpu_at.elapsed() > CPU_SAMPLE {
                    self.sample_cpu();
                }
                if account_cpu && self.cpu > self.limits.total_cpu {
                    return Err(self.fail(Verdict::new(
                        VerdictKind::TimeoutCpu,
                        format!("used more than {} ms of CPU in the episode", self.limits.total_cpu.as_millis()),
                    )));
                }
                return self.parse_reply(&line[..line.len() - 1], loading);
            }
            let now = Instant::now();
            if !first {
                self.sample_cpu();
            }
            first = false;
            let cpu = self.cpu;
            if account_cpu {
                let call_cpu = cpu.saturating_sub(cpu0);
                if cpu > self.limits.total_cpu || (!loading && call_cpu > self.limits.call_cpu) {
                    let what = if cpu > self.limits.total_cpu { "episode" } else { "call" };
                    let budget = if cpu > self.limits.total_cpu { self.limits.total_cpu } else { self.limits.call_cpu };
                    return Err(self.fail(Verdict::new(
                        VerdictKind::TimeoutCpu,
                        format!("used more than {} ms of CPU in the {what}", budget.as_millis()),
                    )));
                }
            }
            if now >= deadline {
                let v = Verdict::new(
                    VerdictKind::TimeoutWall,
                    format!("no answer within {} ms", deadline.saturating_duration_since(t0).as_millis()),
                );
                return Err(self.fail(v));
            }
            let wait = deadline.saturating_duration_since(now).min(Duration::from_millis(20));
            let mut pfds = [
                libc::pollfd { fd: self.rep.as_raw_fd(), events: libc::POLLIN, revents: 0 },
                libc::pollfd { fd: self.out.as_raw_fd(), events: libc::POLLIN, revents: 0 },
                libc::pollfd { fd: self.err.as_raw_fd(), events: libc::POLLIN, revents: 0 },
                libc::pollfd { fd: self.pidfd.as_raw_fd(), events: libc::POLLIN, revents: 0 },
            ];
            // SAFETY: pfds is a valid array of pollfd.
            let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, wait.as_millis() as i32 + 1) };
            if n <= 0 {
                continue;
            }
            if (pfds[1].revents != 0 || pfds[2].revents != 0) && !self.drain_logs() {
                return Err(self.fail(Verdict::new(
                    VerdictKind::OutputLimit,
                    format!("printed more than {} bytes", self.limits.output_bytes),
                )));
            }
            if pfds[0].revents != 0 {
                let mut buf = [0u8; 8192];
                match self.rep.read(&mut buf) {
                    Ok(0) => return Err(self.exit_verdict()),
                    Ok(n) => {
                        self.reply_buf.extend_from_slice(&buf[..n]);
                        if self.reply_buf.len() > MAX_REPLY && !self.reply_buf.contains(&b'\n') {
                            return Err(self.fail(Verdict::new(VerdictKind::ProtocolError, "reply frame too long")));
                        }
                    }
                    Err(_) => {}
                }
                continue;
            }
            if pfds[3].revents != 0 {
                // Exited: take a final reply if one is complete, else judge the exit.
                let mut buf = [0u8; 8192];
                while let Ok(n) = self.rep.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    self.reply_buf.extend_from_slice(&buf[..n.min(MAX_REPLY)]);
                }
                self.drain_logs();
                if !self.reply_buf.contains(&b'\n') {
                    return Err(self.exit_verdict());
                }
            }
        }
    }

    fn parse_reply(&mut self, line: &[u8], loading: bool) -> Result<Reply, Verdict> {
        let bad = |m: &str| Verdict::new(VerdictKind::ProtocolError, m.to_string());
        let v: serde_json::Value = match serde_json::from_slice(line) {
            Ok(v) => v,
            Err(_) => return Err(self.fail(bad("reply is not JSON"))),
        };
        let Some(obj) = v.as_object().filter(|o| o.len() <= 2) else {
            return Err(self.fail(bad("reply is not a small JSON object")));
        };
        if loading {
            if obj.len() == 1 && obj.get("ok") == Some(&serde_json::Value::Bool(true)) {
                return Ok(Reply::Ready);
            }
        } else if let (1, Some(serde_json::Value::String(a))) = (obj.len(), obj.get("a")) {
            return match crate::check_action_text(a.clone(), &self.limits) {
                Ok(a) => {
                    self.calls += 1;
                    Ok(Reply::Action(a))
                }
                Err(v) => Err(self.fail(v)),
            };
        }
        if let (Some(serde_json::Value::String(e)), Some(serde_json::Value::String(m))) = (obj.get("e"), obj.get("m")) {
            let kind = match e.as_str() {
                "compile" if loading => VerdictKind::CompileError,
                "runtime" => VerdictKind::RuntimeError,
                "memory" => {
                    // Python's MemoryError usually carries no message: name the limit.
                    let limit = format!("used more than the {} MiB memory limit", self.limits.memory_bytes >> 20);
                    let why =
                        if m.trim_end_matches(':').trim() == "MemoryError" { limit } else { format!("{m} ({limit})") };
                    return Err(self.fail(Verdict::new(VerdictKind::MemoryLimit, why)));
                }
                "long" if !loading => {
                    let v = Verdict::new(
                        VerdictKind::InvalidAction,
                        format!("action is {m} bytes; the limit is {}", self.limits.action_bytes),
                    );
                    return Err(self.fail(v));
                }
                "type" if !loading => {
                    let v = Verdict::new(
                        VerdictKind::InvalidAction,
                        format!("strategy returned {m}; expected a string, an integer or a list of integers"),
                    );
                    return Err(self.fail(v));
                }
                "setup" => {
                    let v = Verdict::new(VerdictKind::SyscallViolation, format!("jail stage 2 failed: {m}"));
                    return Err(self.fail(v));
                }
                _ => return Err(self.fail(bad("unknown reply"))),
            };
            return Err(self.fail(Verdict::new(kind, m.clone())));
        }
        Err(self.fail(bad("unexpected reply")))
    }
}

impl Session for PythonSession {
    fn call(&mut self, args: &[serde_json::Value]) -> Result<String, Verdict> {
        let line = serde_json::Value::Array(args.to_vec()).to_string();
        let wall = self.limits.call_wall;
        match self.exchange(&line, wall, false)? {
            Reply::Action(a) => Ok(a),
            Reply::Ready => Err(self.fail(Verdict::new(VerdictKind::ProtocolError, "unexpected ready frame"))),
        }
    }

    fn usage(&self) -> Usage {
        Usage { calls: self.calls, cpu: self.cpu, ops: 0, output_bytes: self.log_total }
    }

    fn output(&self) -> String {
        String::from_utf8_lossy(&self.log).into_owned()
    }
}

impl Drop for PythonSession {
    fn drop(&mut self) {
        self.kill();
    }
}
