//! Running the build command: PATH lookup, network isolation, umask, exit status.

use std::collections::BTreeMap;
use std::os::fd::AsFd as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::outcome::ExitWith;

/// How one run of the build command is set up.
#[derive(Debug, Clone, Default)]
pub struct RunSpec {
    pub command: Vec<String>,
    pub dir: PathBuf,
    /// Set on top of the inherited environment.
    pub set_env: BTreeMap<String, String>,
    pub remove_env: Vec<String>,
    /// Run in a fresh network namespace (`unshare --net`).
    pub hermetic: bool,
    /// e.g. `0022`: applied by a `sh -c 'umask …; exec "$@"'` wrapper.
    pub umask: Option<String>,
    /// Send the command's stdout to our stderr (`--output json` keeps stdout for the document).
    pub stdout_to_stderr: bool,
}

/// Finds the program on PATH (or checks the path it names), for an error that says "not found"
/// before anything runs.
pub fn resolve_program(program: &str, dir: &Path) -> anyhow::Result<PathBuf> {
    if program.contains('/') {
        let p = dir.join(program);
        if p.is_file() {
            return Ok(p);
        }
        anyhow::bail!(
            "build command {program}: no such file (check the path; it is relative to {})",
            dir.display()
        );
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for d in std::env::split_paths(&path) {
        let candidate = d.join(program);
        if is_executable(&candidate) {
            return Ok(candidate);
        }
    }
    anyhow::bail!(
        "build command {program:?} not found on PATH (install it or give its path); nothing was built or signed"
    )
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Checks, before the build, that a network namespace can be made here. Never falls back to
/// running with the network.
pub fn check_hermetic_available() -> anyhow::Result<()> {
    let unshare = resolve_program("unshare", Path::new("/")).map_err(|_| {
        anyhow::anyhow!("--hermetic needs the `unshare` program (util-linux) to create a network namespace, and it is not on PATH; refusing to build with network")
    })?;
    let out = Command::new(unshare)
        .args(["--net", "--", "true"])
        .stdin(Stdio::null())
        .output();
    match out {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => anyhow::bail!(
            "--hermetic: cannot create a network namespace here ({}); it needs root or CAP_SYS_ADMIN (user namespaces may be disabled); refusing to build with network",
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Err(e) => {
            anyhow::bail!("--hermetic: cannot run unshare: {e}; refusing to build with network")
        }
    }
}

/// The argv actually executed, with the isolation and umask wrappers.
pub fn argv(spec: &RunSpec) -> Vec<String> {
    let mut argv: Vec<String> = Vec::new();
    if spec.hermetic {
        argv.extend(["unshare", "--net", "--"].map(String::from));
    }
    if let Some(mask) = &spec.umask {
        argv.extend([
            "sh".to_string(),
            "-c".to_string(),
            format!("umask {mask} && exec \"$@\""),
            "custody-build".to_string(),
        ]);
    }
    argv.extend(spec.command.iter().cloned());
    argv
}

/// Runs the command to completion. A non-zero exit becomes [`ExitWith`] carrying the command's
/// status (128 + signal when killed), so custody exits with it.
pub fn run(spec: &RunSpec) -> anyhow::Result<()> {
    let Some(program) = spec.command.first() else {
        anyhow::bail!(
            "no build command: give it after `--`, e.g. custody build --artifacts 'dist/*' -- make dist"
        );
    };
    resolve_program(program, &spec.dir)?;
    let argv = argv(spec);
    let Some((exe, args)) = argv.split_first() else {
        anyhow::bail!("no build command");
    };
    let mut cmd = Command::new(exe);
    cmd.args(args).current_dir(&spec.dir).stdin(Stdio::null());
    for name in &spec.remove_env {
        cmd.env_remove(name);
    }
    cmd.envs(&spec.set_env);
    if spec.stdout_to_stderr {
        let fd = std::io::stderr().as_fd().try_clone_to_owned()?;
        cmd.stdout(Stdio::from(fd));
    }
    let status = cmd
        .status()
        .map_err(|e| anyhow::anyhow!("cannot start build command {program:?}: {e}"))?;
    if status.success() {
        return Ok(());
    }
    use std::os::unix::process::ExitStatusExt as _;
    let code = match (status.code(), status.signal()) {
        (Some(c), _) => u8::try_from(c).unwrap_or(1),
        (None, Some(sig)) => u8::try_from(128 + sig).unwrap_or(1),
        _ => 1,
    };
    let code = if code == 0 { 1 } else { code };
    Err(ExitWith {
        code,
        message: format!("build command {program:?} failed ({status}); nothing was signed"),
        reported: false,
    }
    .into())
}

/// First line of `PROGRAM ARGS` output, if the program runs.
pub fn first_line(program: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = if out.stdout.is_empty() {
        out.stderr
    } else {
        out.stdout
    };
    String::from_utf8_lossy(&text)
        .lines()
        .next()
        .map(|l| l.trim().to_string())
}

/// Runs git in `dir`, returning trimmed stdout on success.
pub fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim_end().to_string())
}
