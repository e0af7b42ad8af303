//! The content-addressed artifact store: `<dir>/sha256/<hex>`, one file per digest.
//!
//! A file is written to a temporary name in the same directory, fsynced, and renamed into
//! place only after its bytes hashed to the digest it is stored under; the directory is then
//! fsynced. A stored file is never replaced: a second put of the same bytes is a no-op, and
//! bytes that do not hash to the claimed digest are refused before anything is written.
//! Readers re-hash what they read ([`Cas::read`]), so a file corrupted on disk is an error,
//! never served as the artifact.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use custody_core::digest::Sha256Digest;

/// Why a put or read failed.
#[derive(Debug, thiserror::Error)]
pub enum CasError {
    #[error(
        "the uploaded bytes hash to {actual}, not {claimed}: nothing stored (upload the file the digest names)"
    )]
    Mismatch {
        claimed: Sha256Digest,
        actual: Sha256Digest,
    },
    #[error(
        "stored artifact {digest} at {path} no longer hashes to its digest (disk corruption or tampering): restore it from a trusted copy"
    )]
    Corrupt { digest: Sha256Digest, path: PathBuf },
    #[error("artifact store {path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
}

/// The store.
#[derive(Debug, Clone)]
pub struct Cas {
    dir: PathBuf,
}

impl Cas {
    /// Opens (creating) the store under `dir`.
    pub fn open(dir: &Path) -> Result<Self, CasError> {
        let dir = dir.join("sha256");
        std::fs::create_dir_all(&dir).map_err(|error| CasError::Io {
            path: dir.clone(),
            error,
        })?;
        Ok(Self { dir })
    }

    /// Where `digest` is (or would be) stored.
    pub fn path(&self, digest: &Sha256Digest) -> PathBuf {
        self.dir.join(digest.hex())
    }

    /// Whether `digest` is stored.
    pub fn contains(&self, digest: &Sha256Digest) -> bool {
        self.path(digest).is_file()
    }

    /// Stores `bytes` under their digest, which must be `claimed` when given. Returns the
    /// digest and whether it was new.
    pub fn put(
        &self,
        bytes: &[u8],
        claimed: Option<&Sha256Digest>,
    ) -> Result<(Sha256Digest, bool), CasError> {
        let actual = Sha256Digest::of(bytes);
        if let Some(claimed) = claimed
            && *claimed != actual
        {
            return Err(CasError::Mismatch {
                claimed: *claimed,
                actual,
            });
        }
        let path = self.path(&actual);
        if path.is_file() {
            return Ok((actual, false));
        }
        let io = |error| CasError::Io {
            path: path.clone(),
            error,
        };
        let mut tmp = tempfile::Builder::new()
            .prefix(".upload-")
            .tempfile_in(&self.dir)
            .map_err(io)?;
        tmp.write_all(bytes).map_err(io)?;
        tmp.as_file().sync_all().map_err(io)?;
        // `persist_noclobber`: if a concurrent put of the same digest won, keep its file (the
        // bytes are the same: both hashed to the name).
        match tmp.persist_noclobber(&path) {
            Ok(_) => {}
            Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => {
                return Ok((actual, false));
            }
            Err(e) => return Err(io(e.error)),
        }
        #[cfg(unix)]
        std::fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io)?;
        Ok((actual, true))
    }

    /// Reads a stored artifact and checks it still hashes to its digest. `Ok(None)` when not
    /// stored.
    pub fn read(&self, digest: &Sha256Digest) -> Result<Option<Vec<u8>>, CasError> {
        let path = self.path(digest);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(CasError::Io { path, error }),
        };
        if Sha256Digest::of(&bytes) != *digest {
            return Err(CasError::Corrupt {
                digest: *digest,
                path,
            });
        }
        Ok(Some(bytes))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn put_is_content_addressed_and_never_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let cas = Cas::open(dir.path()).unwrap();
        let (d, new) = cas.put(b"release 1", None).unwrap();
        assert!(new);
        assert_eq!(d, Sha256Digest::of(b"release 1"));
        let (d2, new2) = cas.put(b"release 1", Some(&d)).unwrap();
        assert_eq!((d2, new2), (d, false));
        assert_eq!(cas.read(&d).unwrap().unwrap(), b"release 1");

        // A lying upload stores nothing.
        let other = Sha256Digest::of(b"something else");
        let err = cas.put(b"evil", Some(&other)).unwrap_err();
        assert!(matches!(err, CasError::Mismatch { .. }));
        assert!(!cas.contains(&Sha256Digest::of(b"evil")));
        assert!(cas.read(&other).unwrap().is_none());

        // Corruption on disk is detected on read.
        std::fs::write(cas.path(&d), b"release 1 (tampered)").unwrap();
        assert!(matches!(cas.read(&d), Err(CasError::Corrupt { .. })));
        // No temporary files left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path().join("sha256"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1);
    }
}
