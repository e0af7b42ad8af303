//! All-or-nothing file writes: the one implementation every file custody writes goes through
//! (CLI outputs, the log key, the witness state, the deploy agent's state).
//!
//! This is the only storage code in `custody-core`: a file written whole or not at all is a
//! format guarantee (a bundle, a key, a state file is never half there), and every crate that
//! writes files needs exactly this, so it lives here once rather than in each of them.

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, fsynced, then
/// renamed over `path`, then the directory fsynced. A crash leaves the old file or the new one.
/// `private` gives the file mode 0600 before any byte is written; otherwise 0644.
pub fn write_atomic(path: &Path, bytes: &[u8], private: bool) -> std::io::Result<()> {
    PendingWrite::new(path, private)?.commit(bytes)
}

/// An atomic write begun before the content exists: the temporary file is created up front,
/// so an unwritable directory is reported before any work is done. Dropped without
/// [`PendingWrite::commit`], it leaves nothing behind.
pub struct PendingWrite {
    path: PathBuf,
    tmp: tempfile::NamedTempFile,
}

impl PendingWrite {
    /// Creates the temporary file beside `path` (mode 0600 if `private`, else 0644).
    pub fn new(path: &Path, private: bool) -> std::io::Result<Self> {
        let tmp = tempfile::Builder::new()
            .prefix(".custody-")
            .tempfile_in(parent(path))?;
        set_mode(tmp.as_file(), if private { 0o600 } else { 0o644 })?;
        Ok(Self {
            path: path.to_path_buf(),
            tmp,
        })
    }

    /// The directory the file goes into.
    pub fn dir(&self) -> &Path {
        parent(&self.path)
    }

    /// Writes `bytes`, fsyncs, renames over the path and fsyncs the directory.
    pub fn commit(self, bytes: &[u8]) -> std::io::Result<()> {
        let staged = self.stage(bytes)?;
        staged.persist()
    }

    /// Writes and fsyncs `bytes` without renaming yet (see [`write_all_atomic`]).
    fn stage(mut self, bytes: &[u8]) -> std::io::Result<Self> {
        self.tmp.write_all(bytes)?;
        self.tmp.as_file().sync_all()?;
        Ok(self)
    }

    fn persist(self) -> std::io::Result<()> {
        let dir = parent(&self.path).to_path_buf();
        self.tmp.persist(&self.path).map_err(|e| e.error)?;
        sync_dir(&dir)
    }
}

/// Writes several files all-or-nothing: every temporary file is written and fsynced first, and
/// only when all of them succeeded are they renamed into place. On an error, the path it
/// concerns is returned with it; when staging fails, nothing was written.
pub fn write_all_atomic(outputs: &[(PathBuf, Vec<u8>)]) -> Result<(), (PathBuf, std::io::Error)> {
    let mut staged = Vec::with_capacity(outputs.len());
    for (path, bytes) in outputs {
        let pending = PendingWrite::new(path, false)
            .and_then(|p| p.stage(bytes))
            .map_err(|e| (path.clone(), e))?;
        staged.push(pending);
    }
    for pending in staged {
        let path = pending.path.clone();
        pending.persist().map_err(|e| (path, e))?;
    }
    Ok(())
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

#[cfg(unix)]
fn set_mode(file: &std::fs::File, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    file.set_permissions(std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_: &std::fs::File, _: u32) -> std::io::Result<()> {
    Ok(())
}

/// Makes a rename in `dir` durable: fsyncs the directory (a no-op where there is none).
#[cfg(unix)]
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Makes a rename in `dir` durable: fsyncs the directory (a no-op where there is none).
#[cfg(not(unix))]
pub fn sync_dir(_: &Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn writes_whole_files_with_their_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        write_atomic(&path, b"old", true).unwrap();
        write_atomic(&path, b"new", true).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // Only the file: no temporary left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_failed_group_write_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("a");
        let bad = dir.path().join("missing").join("b");
        let err = write_all_atomic(&[(good.clone(), b"a".to_vec()), (bad.clone(), b"b".to_vec())])
            .unwrap_err();
        assert_eq!(err.0, bad);
        assert!(!good.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
