//! The confinement a sandbox worker runs under, applied by `thyme-studio sandbox-launch` (a
//! single-threaded process) just before it becomes the Python worker with `exec`:
//!
//! 1. its own session and process group (the parent kills the group at the hard timeout);
//! 2. resource limits: CPU seconds, address space, file size, open files;
//! 3. Linux: a new network namespace (no interfaces: no network) where the kernel allows;
//! 4. Linux: Landlock: writes only under the run's `steps/` and `tmp/`, reads only the Python
//!    runtime, system libraries, the run folder and the process's own /proc entry; no TCP;
//!    no signals to processes outside the sandbox;
//! 5. Linux: seccomp: no sockets but Unix ones, no new processes (threads are fine), no
//!    ptrace or other processes' memory, no namespaces or mounts. (`exec` itself stays
//!    allowed: the launcher needs it to become Python, and a worker that replaced itself with
//!    another program would still be confined and lose its protocol, which the parent sees.)
//!
//! Each layer reports whether it is active; a layer that cannot be had is reported as such
//! and the others still apply (never silently open).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// What the launcher is told to enforce.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Policy {
    /// Read and write (the run's `steps/` and `tmp/`).
    pub write: Vec<PathBuf>,
    /// Read only (runtime, the run's `input/`, system libraries).
    pub read: Vec<PathBuf>,
    pub cpu_seconds: u64,
    pub memory_bytes: u64,
    pub file_bytes: u64,
    pub open_files: u64,
}

/// One protection and whether it is on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layer {
    pub name: String,
    pub active: bool,
    pub detail: String,
}

impl Layer {
    fn on(name: &str, detail: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            active: true,
            detail: detail.into(),
        }
    }

    fn off(name: &str, detail: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            active: false,
            detail: detail.into(),
        }
    }
}

/// A one-line summary for the UI badge: "strong: ..." when files and network are both
/// confined, else "basic: ...".
pub fn badge(layers: &[Layer]) -> String {
    let on = |n: &str| layers.iter().any(|l| l.name == n && l.active);
    let files = on("landlock");
    let network = on("network namespace") || on("seccomp") || on("landlock");
    let mut parts = vec![];
    parts.push(if network {
        "no network"
    } else {
        "network open"
    });
    parts.push(if files {
        "files: run folder only"
    } else {
        "files: not confined"
    });
    if on("seccomp") {
        parts.push("no new processes");
    }
    let level = if files && network { "strong" } else { "basic" };
    format!("{level}: {}", parts.join(", "))
}

/// Apply everything; returns the layers. Runs in the launcher, before `exec`.
pub fn apply(policy: &Policy) -> Vec<Layer> {
    let mut layers = Vec::new();
    layers.push(session());
    layers.push(limits(policy));
    #[cfg(target_os = "linux")]
    {
        layers.push(linux::network_namespace());
        layers.push(linux::landlock(policy));
        layers.push(linux::seccomp());
    }
    #[cfg(not(target_os = "linux"))]
    {
        layers.push(Layer::off(
            "landlock",
            "file-system confinement is only implemented on Linux",
        ));
        layers.push(Layer::off(
            "seccomp",
            "system-call filtering is only implemented on Linux",
        ));
    }
    layers
}

fn session() -> Layer {
    // SAFETY: setsid has no memory-safety preconditions; it fails harmlessly when the
    // process already leads a group.
    let r = unsafe { libc::setsid() };
    if r >= 0 {
        Layer::on(
            "session",
            "own session and process group, killed as a group",
        )
    } else {
        Layer::off(
            "session",
            format!("setsid failed: {}", std::io::Error::last_os_error()),
        )
    }
}

fn limits(policy: &Policy) -> Layer {
    let set = |resource, value: u64| {
        let lim = libc::rlimit {
            rlim_cur: value as libc::rlim_t,
            rlim_max: value as libc::rlim_t,
        };
        // SAFETY: setrlimit reads the struct we pass; no other preconditions.
        unsafe { libc::setrlimit(resource, &lim) == 0 }
    };
    let results = [
        ("cpu", set(libc::RLIMIT_CPU, policy.cpu_seconds)),
        ("memory", set(libc::RLIMIT_AS, policy.memory_bytes)),
        ("file size", set(libc::RLIMIT_FSIZE, policy.file_bytes)),
        ("open files", set(libc::RLIMIT_NOFILE, policy.open_files)),
        ("core dumps", set(libc::RLIMIT_CORE, 0)),
    ];
    let failed: Vec<&str> = results
        .iter()
        .filter(|(_, ok)| !ok)
        .map(|(n, _)| *n)
        .collect();
    let detail = format!(
        "{} CPU s, {} MiB memory, {} MiB per file, {} open files",
        policy.cpu_seconds,
        policy.memory_bytes >> 20,
        policy.file_bytes >> 20,
        policy.open_files
    );
    if failed.is_empty() {
        Layer::on("limits", detail)
    } else {
        Layer::off(
            "limits",
            format!("{detail}; not set: {}", failed.join(", ")),
        )
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::collections::BTreeMap;

    use landlock::{
        ABI, Access, AccessFs, AccessNet, CompatLevel, Compatible, Ruleset, RulesetAttr,
        RulesetCreatedAttr, RulesetStatus, Scope, path_beneath_rules,
    };
    use seccompiler::{
        SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule,
    };

    use super::{Layer, Policy};

    pub fn network_namespace() -> Layer {
        // SAFETY: unshare only changes this (single-threaded) process's namespaces.
        let root = unsafe { libc::unshare(libc::CLONE_NEWNET) } == 0;
        if root {
            return Layer::on("network namespace", "a new, empty network namespace");
        }
        // SAFETY: as above; an unprivileged user namespace first where the kernel allows.
        let user = unsafe { libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNET) } == 0;
        if user {
            Layer::on(
                "network namespace",
                "a new user and network namespace (no interfaces)",
            )
        } else {
            Layer::off(
                "network namespace",
                format!(
                    "unavailable ({}); sockets are refused by seccomp instead",
                    std::io::Error::last_os_error()
                ),
            )
        }
    }

    pub fn landlock(policy: &Policy) -> Layer {
        let abi = ABI::V6;
        let status = (|| -> Result<RulesetStatus, landlock::RulesetError> {
            let ruleset = Ruleset::default()
                .set_compatibility(CompatLevel::BestEffort)
                .handle_access(AccessFs::from_all(abi))?
                .handle_access(AccessNet::BindTcp | AccessNet::ConnectTcp)?
                .scope(Scope::Signal | Scope::AbstractUnixSocket)?
                .create()?
                .add_rules(path_beneath_rules(&policy.read, AccessFs::from_read(abi)))?
                .add_rules(path_beneath_rules(&policy.write, AccessFs::from_all(abi)))?;
            Ok(ruleset.restrict_self()?.ruleset)
        })();
        match status {
            Ok(RulesetStatus::FullyEnforced) => Layer::on(
                "landlock",
                "writes: the run's steps and tmp folders; reads: the runtime, system libraries and the run folder; no TCP; no signals outside",
            ),
            Ok(RulesetStatus::PartiallyEnforced) => Layer::on(
                "landlock",
                "partly enforced (an older kernel): file rules on, some network or signal rules off",
            ),
            Ok(RulesetStatus::NotEnforced) => {
                Layer::off("landlock", "the kernel does not enforce Landlock")
            }
            Err(e) => Layer::off("landlock", format!("not applied: {e}")),
        }
    }

    pub fn seccomp() -> Layer {
        match build_and_apply() {
            Ok(()) => Layer::on(
                "seccomp",
                "no sockets except Unix ones, no fork/exec of new processes, no ptrace, no namespaces",
            ),
            Err(e) => Layer::off("seccomp", format!("not applied: {e}")),
        }
    }

    fn cond(arg: u8, op: SeccompCmpOp, value: u64) -> Result<SeccompCondition, String> {
        SeccompCondition::new(arg, SeccompCmpArgLen::Dword, op, value).map_err(|e| e.to_string())
    }

    fn rule(conditions: Vec<SeccompCondition>) -> Result<SeccompRule, String> {
        SeccompRule::new(conditions).map_err(|e| e.to_string())
    }

    fn build_and_apply() -> Result<(), String> {
        let arch = std::env::consts::ARCH
            .try_into()
            .map_err(|e| format!("{e:?}"))?;
        // SAFETY: getpid has no preconditions.
        let me = unsafe { libc::getpid() } as u32;
        let mut denied: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
        // Sockets: only AF_UNIX.
        denied.insert(
            libc::SYS_socket,
            vec![rule(vec![cond(
                0,
                SeccompCmpOp::Ne,
                libc::AF_UNIX as u64,
            )?])?],
        );
        // New processes: clone without CLONE_THREAD (threads stay allowed).
        denied.insert(
            libc::SYS_clone,
            vec![rule(vec![cond(
                0,
                SeccompCmpOp::MaskedEq(libc::CLONE_THREAD as u64),
                0,
            )?])?],
        );
        // Signals only to itself (0 = own group, -pid = own group after setsid).
        denied.insert(
            libc::SYS_kill,
            vec![rule(vec![
                cond(0, SeccompCmpOp::Ne, u64::from(me))?,
                cond(0, SeccompCmpOp::Ne, 0)?,
                cond(
                    0,
                    SeccompCmpOp::Ne,
                    u64::from((me as i32).wrapping_neg() as u32),
                )?,
            ])?],
        );
        denied.insert(
            libc::SYS_tgkill,
            vec![rule(vec![cond(0, SeccompCmpOp::Ne, u64::from(me))?])?],
        );
        for call in [
            libc::SYS_ptrace,
            libc::SYS_process_vm_readv,
            libc::SYS_process_vm_writev,
            libc::SYS_unshare,
            libc::SYS_setns,
            libc::SYS_mount,
            libc::SYS_umount2,
            libc::SYS_pivot_root,
            libc::SYS_chroot,
            libc::SYS_bpf,
            libc::SYS_perf_event_open,
            libc::SYS_keyctl,
            libc::SYS_add_key,
            libc::SYS_request_key,
            libc::SYS_tkill,
            #[cfg(target_arch = "x86_64")]
            libc::SYS_fork,
            #[cfg(target_arch = "x86_64")]
            libc::SYS_vfork,
        ] {
            denied.insert(call, vec![]);
        }
        let eperm: seccompiler::BpfProgram = SeccompFilter::new(
            denied,
            SeccompAction::Allow,
            SeccompAction::Errno(libc::EPERM as u32),
            arch,
        )
        .map_err(|x| x.to_string())?
        .try_into()
        .map_err(|x: seccompiler::BackendError| x.to_string())?;
        // clone3 cannot be filtered by its flags (they are behind a pointer): refuse it with
        // ENOSYS, which makes the C library fall back to clone, filtered above.
        let mut clone3 = BTreeMap::new();
        clone3.insert(libc::SYS_clone3, vec![]);
        let enosys: seccompiler::BpfProgram = SeccompFilter::new(
            clone3,
            SeccompAction::Allow,
            SeccompAction::Errno(libc::ENOSYS as u32),
            arch,
        )
        .map_err(|x| x.to_string())?
        .try_into()
        .map_err(|x: seccompiler::BackendError| x.to_string())?;
        seccompiler::apply_filter(&enosys).map_err(|x| x.to_string())?;
        seccompiler::apply_filter(&eperm).map_err(|x| x.to_string())?;
        Ok(())
    }
}
