//! Artifact digests: SHA-256 by default, computed streaming so any file size works.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

/// A SHA-256 digest: the name of an artifact.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sha256Digest(pub [u8; 32]);

impl Sha256Digest {
    /// Hashes a byte slice.
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lowercase hex, as in-toto DigestSets write it.
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Takes 32 raw bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        Some(Self(bytes.try_into().ok()?))
    }

    /// Parses 64 hex characters (either case).
    pub fn from_hex(text: &str) -> Result<Self, DigestParseError> {
        let mut out = [0u8; 32];
        if text.len() != 64 {
            return Err(DigestParseError::Length(text.len()));
        }
        hex::decode_to_slice(text, &mut out).map_err(|_| DigestParseError::NotHex)?;
        Ok(Self(out))
    }
}

impl fmt::Display for Sha256Digest {
    /// `sha256:<hex>`, the form users type and see.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Hex on the stack: digests are formatted on hot paths (cache keys, records).
        let mut hex = [0u8; 64];
        hex::encode_to_slice(self.0, &mut hex).map_err(|_| fmt::Error)?;
        f.write_str("sha256:")?;
        f.write_str(std::str::from_utf8(&hex).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Why a `sha256:HEX` string was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DigestParseError {
    #[error("expected the form sha256:<64 hex characters>")]
    MissingAlgorithm,
    #[error("unsupported digest algorithm {0:?} (only sha256 is supported)")]
    UnsupportedAlgorithm(String),
    #[error("a sha256 digest has 64 hex characters, this one has {0}")]
    Length(usize),
    #[error("the digest contains characters that are not hex")]
    NotHex,
}

impl FromStr for Sha256Digest {
    type Err = DigestParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (algorithm, hex) = text
            .split_once(':')
            .ok_or(DigestParseError::MissingAlgorithm)?;
        if !algorithm.eq_ignore_ascii_case("sha256") {
            return Err(DigestParseError::UnsupportedAlgorithm(
                algorithm.to_string(),
            ));
        }
        Self::from_hex(hex)
    }
}

/// Why a file could not be hashed.
#[derive(Debug, thiserror::Error)]
pub enum HashFileError {
    #[error("{path}: no such file (check the path)")]
    NotFound { path: PathBuf },
    #[error("{path}: is a directory, not a file (name one file)")]
    IsDirectory { path: PathBuf },
    #[error("{path}: cannot read: {source}")]
    Io { path: PathBuf, source: io::Error },
}

/// Size of each read; large enough to keep the SHA extensions busy, small enough for the cache.
const CHUNK: usize = 1 << 20;

/// Hashes a file streaming, calling `progress` with the number of bytes hashed so far.
///
/// Returns the digest and the file's length in bytes.
pub fn sha256_file(
    path: &Path,
    mut progress: impl FnMut(u64),
) -> Result<(Sha256Digest, u64), HashFileError> {
    let io_err = |source: io::Error| match source.kind() {
        io::ErrorKind::NotFound => HashFileError::NotFound {
            path: path.to_path_buf(),
        },
        _ => HashFileError::Io {
            path: path.to_path_buf(),
            source,
        },
    };
    let mut file = File::open(path).map_err(io_err)?;
    if file.metadata().map_err(io_err)?.is_dir() {
        return Err(HashFileError::IsDirectory {
            path: path.to_path_buf(),
        });
    }
    sha256_reader(&mut file, &mut progress).map_err(io_err)
}

/// Hashes everything a reader yields.
pub fn sha256_reader(
    reader: &mut impl Read,
    progress: &mut impl FnMut(u64),
) -> io::Result<(Sha256Digest, u64)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        total += n as u64;
        progress(total);
    }
    Ok((Sha256Digest(hasher.finalize().into()), total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answer() {
        // FIPS 180-2 "abc".
        assert_eq!(
            Sha256Digest::of(b"abc").hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn parse_and_display_round_trip() {
        let d = Sha256Digest::of(b"x");
        assert_eq!(d.to_string().parse::<Sha256Digest>().unwrap(), d);
        assert_eq!(
            d.to_string()
                .to_uppercase()
                .parse::<Sha256Digest>()
                .unwrap(),
            d
        );
    }

    #[test]
    fn bad_digests_are_refused_with_reason() {
        assert_eq!(
            "abc".parse::<Sha256Digest>(),
            Err(DigestParseError::MissingAlgorithm)
        );
        assert!(matches!(
            "md5:00".parse::<Sha256Digest>(),
            Err(DigestParseError::UnsupportedAlgorithm(_))
        ));
        assert_eq!(
            "sha256:00".parse::<Sha256Digest>(),
            Err(DigestParseError::Length(2))
        );
        let z = format!("sha256:{}", "z".repeat(64));
        assert_eq!(z.parse::<Sha256Digest>(), Err(DigestParseError::NotHex));
    }

    #[test]
    fn streaming_equals_one_shot() {
        let data: Vec<u8> = (0..(3 * CHUNK + 17)).map(|i| (i % 251) as u8).collect();
        let mut calls = 0;
        let (d, n) = sha256_reader(&mut &data[..], &mut |_| calls += 1).unwrap();
        assert_eq!(d, Sha256Digest::of(&data));
        assert_eq!(n, data.len() as u64);
        assert_eq!(calls, 4);
    }

    #[test]
    fn directory_and_missing_file_are_named() {
        let dir = std::env::temp_dir();
        assert!(matches!(
            sha256_file(&dir, |_| ()),
            Err(HashFileError::IsDirectory { .. })
        ));
        let missing = dir.join("custody-no-such-file-xyz");
        assert!(matches!(
            sha256_file(&missing, |_| ()),
            Err(HashFileError::NotFound { .. })
        ));
    }
}
