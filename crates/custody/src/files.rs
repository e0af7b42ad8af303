//! Reading inputs with errors that name the file, and writing outputs all-or-nothing.

use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use custody_core::digest::{self, HashFileError, Sha256Digest};

/// Files larger than this get a progress bar while hashing (on a terminal only).
const PROGRESS_THRESHOLD: u64 = 64 << 20;

/// Reads a small input file (key, bundle, predicate), naming it in every error.
pub fn read(path: &Path, what: &str) -> anyhow::Result<Vec<u8>> {
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            anyhow::anyhow!("{what} {}: no such file (check the path)", path.display())
        }
        _ => anyhow::anyhow!("{what} {}: cannot read: {e}", path.display()),
    })?;
    if meta.is_dir() {
        anyhow::bail!("{what} {}: is a directory, not a file", path.display());
    }
    std::fs::read(path).with_context(|| format!("{what} {}: cannot read", path.display()))
}

/// Hashes a file streaming, with a progress bar for large files when stderr is a terminal.
pub fn sha256(path: &Path) -> anyhow::Result<(Sha256Digest, u64)> {
    let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let bar = (len >= PROGRESS_THRESHOLD && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new(len);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "hashing {msg} {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar.set_message(path.display().to_string());
        bar
    });
    let result = digest::sha256_file(path, |done| {
        if let Some(bar) = &bar {
            bar.set_position(done);
        }
    });
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    result.map_err(|e: HashFileError| anyhow::anyhow!(e))
}

/// Refuses to overwrite unless asked: a key or bundle silently replaced is lost evidence.
pub fn ensure_absent(path: &Path, force: bool) -> anyhow::Result<()> {
    if !force && path.exists() {
        anyhow::bail!(
            "{} already exists (use --force to replace it)",
            path.display()
        );
    }
    Ok(())
}

/// Writes a file atomically: a temporary file in the same directory, fsynced, then renamed.
/// A crash or error leaves either the old file or the new one, never a partial one.
pub fn write_atomic(path: &Path, bytes: &[u8], private: bool) -> anyhow::Result<()> {
    PendingWrite::new(path, private)?.commit(bytes)
}

/// An atomic write begun before the content exists: the temporary file is created up front,
/// so an unwritable directory is reported before any work (or command) is done. Dropped
/// without [`PendingWrite::commit`], it leaves nothing behind.
pub struct PendingWrite {
    path: PathBuf,
    tmp: tempfile::NamedTempFile,
}

impl PendingWrite {
    pub fn new(path: &Path, private: bool) -> anyhow::Result<Self> {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let tmp = tempfile::Builder::new()
            .prefix(".custody-")
            .tempfile_in(&dir)
            .with_context(|| {
                format!(
                    "cannot write in directory {} (does it exist, and is it writable?)",
                    dir.display()
                )
            })?;
        if private {
            set_owner_only(tmp.as_file())?;
        }
        Ok(Self {
            path: path.to_path_buf(),
            tmp,
        })
    }

    pub fn commit(mut self, bytes: &[u8]) -> anyhow::Result<()> {
        let path = self.path;
        self.tmp
            .write_all(bytes)
            .and_then(|()| self.tmp.as_file().sync_all())
            .with_context(|| format!("cannot write {}", path.display()))?;
        self.tmp
            .persist(&path)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {}", path.display(), e.error))?;
        Ok(())
    }
}

/// Writes several files all-or-nothing: every temporary file is written and fsynced first, and
/// only when all of them succeeded are they renamed into place. An unwritable directory or a
/// full disk leaves none of them behind.
pub fn write_all_atomic(outputs: &[(PathBuf, Vec<u8>)]) -> anyhow::Result<()> {
    let mut staged = Vec::with_capacity(outputs.len());
    for (path, bytes) in outputs {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let mut tmp = tempfile::Builder::new()
            .prefix(".custody-")
            .tempfile_in(&dir)
            .with_context(|| {
                format!(
                    "cannot write {} in directory {} (is it writable?); nothing was written",
                    path.file_name()
                        .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
                    dir.display()
                )
            })?;
        tmp.write_all(bytes)
            .and_then(|()| tmp.as_file().sync_all())
            .with_context(|| format!("cannot write {}; nothing was written", path.display()))?;
        staged.push((tmp, path));
    }
    for (tmp, path) in staged {
        tmp.persist(path)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {}", path.display(), e.error))?;
    }
    Ok(())
}

#[cfg(unix)]
fn set_owner_only(file: &std::fs::File) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    Ok(())
}

#[cfg(not(unix))]
fn set_owner_only(_: &std::fs::File) -> anyhow::Result<()> {
    Ok(())
}
