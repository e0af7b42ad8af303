//! Where a verified release becomes active.
//!
//! * `dir:PATH` ([`DirTarget`]): `PATH/releases/<hex>/<name>` is staged in a temporary
//!   directory (file fsynced, directory fsynced) and renamed into place; then the symlink
//!   `PATH/current` (→ `releases/<hex>`) is switched by creating `current.tmp-…` and renaming
//!   it over `current`, and `PATH` is fsynced. A rename is atomic, so `current` names the old
//!   release or the new one, never neither; a failure at any step before the rename leaves the
//!   previous release active. The last [`KEEP_RELEASES`] releases stay in `releases/`.
//! * `exec:COMMAND` ([`ExecTarget`]): the artifact is staged as `<state>/artifacts/<hex>` and
//!   `sh -c COMMAND` runs with `CUSTODY_ENVIRONMENT`, `CUSTODY_DIGEST`, `CUSTODY_ARTIFACT` (the
//!   staged file), `CUSTODY_SEQ` and `CUSTODY_KIND`; a non-zero exit is a failed activation.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use custody_core::digest::Sha256Digest;

use super::VerifiedRelease;
use super::state::sync_dir;

/// Releases kept in a `dir:` target's `releases/` (and staged artifacts of an `exec:` target).
pub const KEEP_RELEASES: usize = 5;

/// What an activation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activated {
    /// Where the artifact is: `PATH/current/<name>`, or the staged file the command was given.
    pub location: PathBuf,
    /// Things worth logging that did not fail the activation (a release that could not be
    /// pruned).
    pub notes: Vec<String>,
}

/// A deploy target.
pub trait Target: Send {
    /// `dir:PATH` or `exec:COMMAND`, for messages and reports.
    fn describe(&self) -> String;

    /// The digest the target has active, when it can tell (a `dir:` target reads `current`).
    fn active(&self) -> Option<Sha256Digest> {
        None
    }

    /// Whether `digest`, recorded as deployed, is no longer active and should be activated
    /// again. Targets that cannot tell say no.
    fn needs_repair(&self, digest: &Sha256Digest) -> bool {
        let _ = digest;
        false
    }

    /// Activates `release`, whose verified bytes are the file `artifact`. `recent` lists the
    /// releases deployed before, newest first (what pruning keeps). On error the previous
    /// release must still be the active one.
    fn activate(
        &mut self,
        release: &VerifiedRelease,
        artifact: &Path,
        recent: &[Sha256Digest],
    ) -> Result<Activated, String>;
}

/// A `--target` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetSpec {
    Dir(PathBuf),
    Exec(String),
}

impl std::str::FromStr for TargetSpec {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let usage = || {
            format!(
                "target {text:?}: expected dir:PATH (e.g. dir:/srv/app) or exec:COMMAND (e.g. 'exec:systemctl restart app')"
            )
        };
        match text.split_once(':') {
            Some(("dir", path)) if !path.trim().is_empty() => Ok(TargetSpec::Dir(path.into())),
            Some(("exec", command)) if !command.trim().is_empty() => {
                Ok(TargetSpec::Exec(command.to_owned()))
            }
            _ => Err(usage()),
        }
    }
}

impl std::fmt::Display for TargetSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TargetSpec::Dir(path) => write!(f, "dir:{}", path.display()),
            TargetSpec::Exec(command) => write!(f, "exec:{command}"),
        }
    }
}

impl TargetSpec {
    /// Opens the target; an `exec:` target stages artifacts under `state_dir/artifacts`.
    pub fn open(&self, state_dir: &Path) -> Result<Box<dyn Target>, String> {
        Ok(match self {
            TargetSpec::Dir(path) => Box::new(DirTarget::open(path)?),
            TargetSpec::Exec(command) => {
                Box::new(ExecTarget::new(command, &state_dir.join("artifacts")))
            }
        })
    }
}

/// The file name an artifact is written as: the statement subject's name when it is one plain
/// file name, else `artifact`.
pub(super) fn file_name(release: &VerifiedRelease) -> String {
    let name = release.subject_name.as_str();
    let plain = !name.is_empty()
        && name.len() <= 255
        && name != "."
        && name != ".."
        && !name.starts_with('.')
        && !name.contains(['/', '\\', '\0']);
    if plain {
        name.to_owned()
    } else {
        "artifact".to_owned()
    }
}

fn io_context(what: &str, path: &Path) -> impl Fn(std::io::Error) -> String {
    let text = format!("{what} {}", path.display());
    move |e| format!("{text}: {e}")
}

/// Copies `from` to `to` (a new file), mode 0644, and fsyncs it.
fn copy_synced(from: &Path, to: &Path) -> Result<(), String> {
    let err = io_context("writing", to);
    let mut src = std::fs::File::open(from).map_err(io_context("reading", from))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o644);
    let mut dst = options.open(to).map_err(&err)?;
    std::io::copy(&mut src, &mut dst).map_err(&err)?;
    dst.sync_all().map_err(&err)
}

/// Whether `path` is a file whose bytes hash to `digest`.
fn holds(path: &Path, digest: &Sha256Digest) -> bool {
    path.is_file()
        && custody_core::digest::sha256_file(path, |_| {}).is_ok_and(|(d, _)| d == *digest)
}

fn is_hex_name(name: &str) -> bool {
    name.len() == 64
        && name
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A unique suffix for temporary names.
fn unique() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{}-{nanos:09}", std::process::id())
}

/// Keeps the `keep` newest of the 64-hex entries in `dir`: `first` in that order, then the
/// others newest (modification time) first; removes the rest. Returns notes on failures.
fn prune(
    dir: &Path,
    keep: usize,
    first: &[String],
    remove: impl Fn(&Path) -> std::io::Result<()>,
) -> Vec<String> {
    let mut notes = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => return vec![format!("pruning {}: {e}", dir.display())],
    };
    let mut others: Vec<(std::time::SystemTime, String)> = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_hex_name(&name) {
            if !first.contains(&name) {
                let mtime = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .unwrap_or(std::time::UNIX_EPOCH);
                others.push((mtime, name));
            }
        } else if name.starts_with(".stage-") || name.starts_with(".old-") {
            // Left over by an activation that was interrupted.
            if let Err(e) = remove(&entry.path()) {
                notes.push(format!("removing {}: {e}", entry.path().display()));
            }
        }
    }
    others.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let ordered = first
        .iter()
        .filter(|n| dir.join(n).exists())
        .cloned()
        .chain(others.into_iter().map(|(_, name)| name));
    let doomed: Vec<String> = ordered.skip(keep).collect();
    for name in doomed {
        let path = dir.join(&name);
        if let Err(e) = remove(&path) {
            notes.push(format!("removing old release {}: {e}", path.display()));
        }
    }
    notes
}

/// The order of keeping: the new release, the one active before, then the history.
fn keep_order(
    new: &Sha256Digest,
    previous: Option<Sha256Digest>,
    recent: &[Sha256Digest],
) -> Vec<String> {
    let mut order: Vec<String> = Vec::new();
    for d in std::iter::once(*new)
        .chain(previous)
        .chain(recent.iter().copied())
    {
        let hex = d.hex();
        if !order.contains(&hex) {
            order.push(hex);
        }
    }
    order
}

/// A step of a `dir:` activation at which tests inject a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DirStep {
    /// `releases/<hex>` is in place; `current` is untouched.
    Staged,
    /// `current.tmp-…` points to the new release; `current` is untouched.
    LinkCreated,
}

/// `dir:PATH`: releases in `PATH/releases/<hex>/`, the active one named by `PATH/current`.
#[derive(Debug, Clone)]
pub struct DirTarget {
    root: PathBuf,
    keep: usize,
}

impl DirTarget {
    /// Opens (creating) `root` and `root/releases`.
    pub fn open(root: &Path) -> Result<Self, String> {
        std::fs::create_dir_all(root.join("releases"))
            .map_err(io_context("deploy directory", root))?;
        Ok(Self {
            root: root.to_path_buf(),
            keep: KEEP_RELEASES,
        })
    }

    /// Keeps `keep` releases (at least 1) instead of [`KEEP_RELEASES`].
    pub fn with_keep(mut self, keep: usize) -> Self {
        self.keep = keep.max(1);
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `PATH/current`.
    pub fn current_link(&self) -> PathBuf {
        self.root.join("current")
    }

    fn releases(&self) -> PathBuf {
        self.root.join("releases")
    }

    /// Puts the verified artifact at `releases/<hex>/<name>`, unless a copy that still
    /// verifies is there.
    fn stage(&self, digest: &Sha256Digest, name: &str, artifact: &Path) -> Result<(), String> {
        let releases = self.releases();
        std::fs::create_dir_all(&releases).map_err(io_context("creating", &releases))?;
        let hex = digest.hex();
        let final_dir = releases.join(&hex);
        if holds(&final_dir.join(name), digest) {
            return Ok(());
        }
        let mut stage = tempfile::Builder::new()
            .prefix(".stage-")
            .tempdir_in(&releases)
            .map_err(io_context("staging in", &releases))?;
        copy_synced(artifact, &stage.path().join(name))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(stage.path(), std::fs::Permissions::from_mode(0o755))
                .map_err(io_context("staging", stage.path()))?;
        }
        sync_dir(stage.path()).map_err(io_context("syncing", stage.path()))?;
        // A directory of that name without a good copy (interrupted earlier, or tampered
        // with) is moved aside, then removed.
        let aside = releases.join(format!(".old-{hex}-{}", unique()));
        let moved_aside = match std::fs::symlink_metadata(&final_dir) {
            Ok(_) => {
                std::fs::rename(&final_dir, &aside)
                    .map_err(io_context("moving aside", &final_dir))?;
                true
            }
            Err(_) => false,
        };
        std::fs::rename(stage.path(), &final_dir)
            .map_err(io_context("renaming into", &final_dir))?;
        stage.disable_cleanup(true);
        sync_dir(&releases).map_err(io_context("syncing", &releases))?;
        if moved_aside {
            let _ = std::fs::remove_dir_all(&aside);
        }
        Ok(())
    }

    /// Points `current` at `releases/<hex>`: a new symlink renamed over the old one.
    fn switch(
        &self,
        hex: &str,
        fault: &dyn Fn(DirStep) -> std::io::Result<()>,
    ) -> Result<(), String> {
        let link = self.current_link();
        if let Ok(meta) = std::fs::symlink_metadata(&link)
            && !meta.file_type().is_symlink()
        {
            return Err(format!(
                "{} exists and is not a symlink: custody switches releases by replacing the symlink `current`; move it away",
                link.display()
            ));
        }
        let tmp = self.root.join(format!("current.tmp-{}", unique()));
        let _ = std::fs::remove_file(&tmp);
        symlink(Path::new("releases").join(hex).as_path(), &tmp)
            .map_err(io_context("creating the symlink", &tmp))?;
        let renamed = fault(DirStep::LinkCreated)
            .map_err(io_context("switching", &link))
            .and_then(|()| std::fs::rename(&tmp, &link).map_err(io_context("switching", &link)));
        if let Err(e) = renamed {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        sync_dir(&self.root).map_err(|e| {
            format!(
                "switched {} to release {hex}, but syncing {} failed: {e}",
                link.display(),
                self.root.display()
            )
        })
    }

    /// [`Target::activate`] with a fault injected at each [`DirStep`] (tests).
    pub(crate) fn activate_with(
        &mut self,
        release: &VerifiedRelease,
        artifact: &Path,
        recent: &[Sha256Digest],
        fault: &dyn Fn(DirStep) -> std::io::Result<()>,
    ) -> Result<Activated, String> {
        let previous = self.active();
        let name = file_name(release);
        let hex = release.digest.hex();
        self.stage(&release.digest, &name, artifact)?;
        fault(DirStep::Staged).map_err(|e| format!("after staging release {hex}: {e}"))?;
        self.switch(&hex, fault)?;
        let order = keep_order(&release.digest, previous, recent);
        let mut notes = prune(&self.releases(), self.keep, &order, |p| {
            std::fs::remove_dir_all(p)
        });
        notes.extend(self.remove_stale_links());
        Ok(Activated {
            location: self.current_link().join(name),
            notes,
        })
    }

    /// Removes `current.tmp-*` left by an interrupted switch.
    fn remove_stale_links(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("current.tmp-"))
            .filter_map(|e| {
                std::fs::remove_file(e.path())
                    .err()
                    .map(|err| format!("removing {}: {err}", e.path().display()))
            })
            .collect()
    }
}

#[cfg(unix)]
fn symlink(target: &Path, link: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

#[cfg(not(unix))]
fn symlink(_target: &Path, _link: &Path) -> std::io::Result<()> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "dir: targets need symlinks (a Unix system)",
    ))
}

impl Target for DirTarget {
    fn describe(&self) -> String {
        format!("dir:{}", self.root.display())
    }

    fn active(&self) -> Option<Sha256Digest> {
        let link = std::fs::read_link(self.current_link()).ok()?;
        let mut parts = link.components();
        let first = parts.next()?.as_os_str().to_str()?;
        let hex = parts.next()?.as_os_str().to_str()?;
        if first != "releases" || parts.next().is_some() || !is_hex_name(hex) {
            return None;
        }
        if !self.releases().join(hex).is_dir() {
            return None;
        }
        Sha256Digest::from_hex(hex).ok()
    }

    fn needs_repair(&self, digest: &Sha256Digest) -> bool {
        self.active() != Some(*digest)
    }

    fn activate(
        &mut self,
        release: &VerifiedRelease,
        artifact: &Path,
        recent: &[Sha256Digest],
    ) -> Result<Activated, String> {
        self.activate_with(release, artifact, recent, &|_| Ok(()))
    }
}

/// `exec:COMMAND`: stages the artifact and runs `sh -c COMMAND`.
#[derive(Debug, Clone)]
pub struct ExecTarget {
    command: String,
    stage_dir: PathBuf,
    keep: usize,
}

impl ExecTarget {
    /// Runs `command`; artifacts are staged in `stage_dir`.
    pub fn new(command: &str, stage_dir: &Path) -> Self {
        Self {
            command: command.to_owned(),
            stage_dir: stage_dir.to_path_buf(),
            keep: KEEP_RELEASES,
        }
    }

    fn stage(&self, digest: &Sha256Digest, artifact: &Path) -> Result<PathBuf, String> {
        let dir = &self.stage_dir;
        std::fs::create_dir_all(dir).map_err(io_context("creating", dir))?;
        let staged = dir.join(digest.hex());
        if holds(&staged, digest) {
            return Ok(staged);
        }
        let tmp = dir.join(format!(".stage-{}", unique()));
        copy_synced(artifact, &tmp)?;
        if let Err(e) = std::fs::rename(&tmp, &staged) {
            let _ = std::fs::remove_file(&tmp);
            return Err(io_context("renaming into", &staged)(e));
        }
        sync_dir(dir).map_err(io_context("syncing", dir))?;
        Ok(staged)
    }
}

impl Target for ExecTarget {
    fn describe(&self) -> String {
        format!("exec:{}", self.command)
    }

    fn activate(
        &mut self,
        release: &VerifiedRelease,
        artifact: &Path,
        recent: &[Sha256Digest],
    ) -> Result<Activated, String> {
        let staged = self.stage(&release.digest, artifact)?;
        // The command's output goes to stderr: stdout is custody's (one JSON document with
        // --output json).
        let status = Command::new("sh")
            .arg("-c")
            .arg(&self.command)
            .env("CUSTODY_ENVIRONMENT", &release.environment)
            .env("CUSTODY_DIGEST", release.digest.to_string())
            .env("CUSTODY_ARTIFACT", &staged)
            .env("CUSTODY_SEQ", release.seq.to_string())
            .env("CUSTODY_KIND", release.kind.as_str())
            .stdin(Stdio::null())
            .stdout(Stdio::from(std::io::stderr()))
            .status()
            .map_err(|e| format!("running sh -c {:?}: {e}", self.command))?;
        if !status.success() {
            return Err(format!("sh -c {:?} failed ({status})", self.command));
        }
        let order = keep_order(&release.digest, None, recent);
        let notes = prune(&self.stage_dir, self.keep, &order, |p| {
            std::fs::remove_file(p)
        });
        Ok(Activated {
            location: staged,
            notes,
        })
    }
}
