//! Hashing in parallel: the source tree before the build, the artifacts after it, and the
//! check that an artifact did not change between hashing and signing.

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use custody_build::ArtifactGlobs;
use custody_core::digest::{self, Sha256Digest};
use rayon::prelude::*;

use super::source::walk;
use crate::outcome::Denied;

/// Files up to this size are read whole and hashed from memory; larger ones stream.
const SMALL_FILE: u64 = 1 << 20;

/// SHA-256 of one file: symlinks hash as `symlink:TARGET` (never followed: the tree is the
/// input, not what a link points at).
fn hash_entry(path: &Path) -> anyhow::Result<Sha256Digest> {
    let meta = std::fs::symlink_metadata(path)
        .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", path.display()))?;
    if meta.file_type().is_symlink() {
        let target = std::fs::read_link(path)?;
        return Ok(Sha256Digest::of(
            format!("symlink:{}", target.display()).as_bytes(),
        ));
    }
    if !meta.is_file() {
        // A FIFO or socket in the tree: reading it could block forever; record that it is there.
        return Ok(Sha256Digest::of(b"special-file"));
    }
    if meta.len() <= SMALL_FILE {
        let bytes = std::fs::read(path)
            .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", path.display()))?;
        return Ok(Sha256Digest::of(&bytes));
    }
    let (digest, _) = digest::sha256_file(path, |_| {})?;
    Ok(digest)
}

/// Hashes every listed file under `root` in parallel.
pub fn hash_files(root: &Path, files: &[String]) -> anyhow::Result<Vec<(String, Sha256Digest)>> {
    files
        .par_iter()
        .map(|rel| Ok((rel.clone(), hash_entry(&root.join(rel))?)))
        .collect()
}

/// What identifies a file's contents without reading it: if any of these changed, so may have
/// the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Snapshot {
    fn of(path: &Path) -> std::io::Result<Self> {
        let m = std::fs::metadata(path)?;
        Ok(Self {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        })
    }
}

/// An artifact as hashed: its name (relative path), the file read, digest, size, snapshot.
#[derive(Debug, Clone)]
pub struct Artifact {
    pub name: String,
    pub path: PathBuf,
    pub digest: Sha256Digest,
    pub size: u64,
    snapshot: Snapshot,
}

/// Finds the files the globs match under `root` (walking only each pattern's literal prefix).
/// Every pattern must match; a symlink must resolve inside `root`.
pub fn find_artifacts(
    root: &Path,
    globs: &ArtifactGlobs,
) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let mut candidates = Vec::new();
    let is_literal = |p: &str| !p.contains(['*', '?', '[', '{']);
    // Literal paths are checked directly; only patterns with wildcards walk (their literal prefix).
    for p in globs.patterns().iter().filter(|p| is_literal(p)) {
        let rel = p.strip_prefix("./").unwrap_or(p);
        if root.join(rel).symlink_metadata().is_ok() {
            candidates.push(rel.to_string());
        }
    }
    let wild: Vec<String> = globs
        .patterns()
        .iter()
        .filter(|p| !is_literal(p))
        .cloned()
        .collect();
    let mut roots = if wild.is_empty() {
        Vec::new()
    } else {
        ArtifactGlobs::new(&wild)?.roots()
    };
    roots.sort();
    roots.dedup();
    for r in &roots {
        let dir = if r.is_empty() {
            root.to_path_buf()
        } else {
            root.join(r)
        };
        if !dir.is_dir() {
            continue;
        }
        let mut found = Vec::new();
        walk(root, r, &mut found, &|name| name == ".git")?;
        candidates.extend(found);
    }
    candidates.sort();
    candidates.dedup();
    let matched: Vec<String> = candidates
        .into_iter()
        .filter(|c| globs.is_match(c))
        .collect();
    let unmatched = globs.unmatched(&matched);
    if !unmatched.is_empty() {
        anyhow::bail!(
            "--artifacts {} matched no file in {} after the build (check the pattern: `*` does not cross `/`, `**` does); nothing was signed",
            unmatched
                .iter()
                .map(|p| format!("{p:?}"))
                .collect::<Vec<_>>()
                .join(", "),
            root.display()
        );
    }
    let canonical_root = root
        .canonicalize()
        .map_err(|e| anyhow::anyhow!("{}: {e}", root.display()))?;
    let mut out = Vec::new();
    for name in matched {
        let path = root.join(&name);
        let real = path.canonicalize().map_err(|e| {
            anyhow::anyhow!(
                "artifact {name}: cannot resolve: {e} (a dangling symlink?); nothing was signed"
            )
        })?;
        if !real.starts_with(&canonical_root) {
            return Err(Denied::new(format!(
                "artifact {name} is a symlink to {}, outside the build tree {}; refusing to sign it (copy the file into the tree)",
                real.display(),
                canonical_root.display()
            ))
            .into());
        }
        if real.is_dir() {
            continue;
        }
        out.push((name, real));
    }
    Ok(out)
}

/// Hashes the artifacts in parallel, taking a snapshot before and checking it after each hash.
pub fn hash_artifacts(found: Vec<(String, PathBuf)>) -> anyhow::Result<Vec<Artifact>> {
    found
        .into_par_iter()
        .map(|(name, path)| {
            let before = Snapshot::of(&path)
                .map_err(|e| anyhow::anyhow!("artifact {name}: cannot read: {e}"))?;
            let (digest, size) = digest::sha256_file(&path, |_| {})?;
            let artifact = Artifact {
                name,
                path,
                digest,
                size,
                snapshot: before,
            };
            artifact.check_unchanged()?;
            Ok(artifact)
        })
        .collect()
}

impl Artifact {
    /// Refuses when the file changed since its snapshot (size, mtime, ctime, inode, device):
    /// custody never signs a digest for bytes that may no longer be there.
    pub fn check_unchanged(&self) -> anyhow::Result<()> {
        let now = Snapshot::of(&self.path);
        if now.as_ref().ok() != Some(&self.snapshot) {
            return Err(Denied::new(format!(
                "artifact {} changed while custody was hashing and signing it (size, mtime or inode differ); refusing to sign; nothing was written",
                self.name
            ))
            .into());
        }
        Ok(())
    }
}
