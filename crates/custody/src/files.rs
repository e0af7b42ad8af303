//! Reading inputs with errors that name the file, and writing outputs all-or-nothing.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use custody_core::digest::{self, HashFileError, Sha256Digest};
use custody_core::fsio;

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

/// Writes a file atomically (`custody_core::fsio::write_atomic`): a crash or error leaves
/// either the old file or the new one, never a partial one. Errors name the file.
pub fn write_atomic(path: &Path, bytes: &[u8], private: bool) -> anyhow::Result<()> {
    PendingWrite::new(path, private)?.commit(bytes)
}

/// An atomic write begun before the content exists (`custody_core::fsio::PendingWrite`): an
/// unwritable directory is reported before any work (or command) is done.
pub struct PendingWrite {
    path: PathBuf,
    pending: fsio::PendingWrite,
}

impl PendingWrite {
    pub fn new(path: &Path, private: bool) -> anyhow::Result<Self> {
        let pending = fsio::PendingWrite::new(path, private).with_context(|| {
            format!(
                "cannot write {} (does its directory exist, and is it writable?)",
                path.display()
            )
        })?;
        Ok(Self {
            path: path.to_path_buf(),
            pending,
        })
    }

    pub fn commit(self, bytes: &[u8]) -> anyhow::Result<()> {
        let path = self.path;
        self.pending
            .commit(bytes)
            .with_context(|| format!("cannot write {}", path.display()))
    }
}

/// Writes several files all-or-nothing (`custody_core::fsio::write_all_atomic`): an
/// unwritable directory or a full disk leaves none of them behind.
pub fn write_all_atomic(outputs: &[(PathBuf, Vec<u8>)]) -> anyhow::Result<()> {
    fsio::write_all_atomic(outputs).map_err(|(path, e)| {
        anyhow::anyhow!(
            "cannot write {}: {e} (is its directory writable?); nothing was written",
            path.display()
        )
    })
}
