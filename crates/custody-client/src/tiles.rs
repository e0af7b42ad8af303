//! A blocking client of a C2SP tlog-tiles log: checkpoint, tiles, entry bundles.

use std::time::Duration;

use custody_log::layout::{TILE_WIDTH, TileId, TilePath, decode_bundle, tile_width};

/// Largest response read (a full tile is 8 KiB; a bundle at most 256 × 64 KiB).
const MAX_RESPONSE_BYTES: u64 = 17 << 20;

/// A request to the log failed (operational, never a verdict about the log).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    #[error("GET {url}: {source}")]
    Transport {
        url: String,
        #[source]
        source: Box<ureq::Error>,
    },
    #[error("GET {url}: HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("GET {url}: {reason}")]
    Body { url: String, reason: String },
}

/// A log at a URL prefix.
#[derive(Clone)]
pub struct LogClient {
    base: String,
    agent: ureq::Agent,
}

impl std::fmt::Debug for LogClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LogClient({})", self.base)
    }
}

/// An HTTP agent that reports every status as a response, with timeouts.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

impl LogClient {
    /// A client for the log whose tlog-tiles prefix is `base_url`.
    pub fn new(base_url: &str) -> Self {
        Self {
            base: base_url.trim_end_matches('/').to_owned(),
            agent: agent(),
        }
    }

    /// The URL prefix.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn get(&self, path: &str) -> Result<Vec<u8>, ClientError> {
        let url = format!("{}/{path}", self.base);
        let mut response =
            self.agent
                .get(&url)
                .call()
                .map_err(|source| ClientError::Transport {
                    url: url.clone(),
                    source: Box::new(source),
                })?;
        let status = response.status().as_u16();
        if status != 200 {
            return Err(ClientError::Status { url, status });
        }
        response
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE_BYTES)
            .read_to_vec()
            .map_err(|e| ClientError::Body {
                url,
                reason: e.to_string(),
            })
    }

    /// `GET <prefix>/checkpoint`, as text.
    pub fn checkpoint(&self) -> Result<String, ClientError> {
        let bytes = self.get("checkpoint")?;
        String::from_utf8(bytes).map_err(|_| ClientError::Body {
            url: format!("{}/checkpoint", self.base),
            reason: "not UTF-8".to_owned(),
        })
    }

    /// Tile `tile` as it is in a tree of `size`: `32 × width` bytes, checked for length.
    pub fn tile(&self, tile: TileId, size: u64) -> Result<Vec<u8>, ClientError> {
        let width = tile_width(tile, size);
        let path = TilePath::Tile {
            level: tile.level,
            index: tile.index,
            width: partial(width),
        }
        .to_path();
        let bytes = self.get(&path)?;
        if bytes.len() as u64 != 32 * width {
            return Err(ClientError::Body {
                url: format!("{}/{path}", self.base),
                reason: format!("{} bytes, expected {}", bytes.len(), 32 * width),
            });
        }
        Ok(bytes)
    }

    /// Entry bundle `index` as it is in a tree of `size`, split into entries.
    pub fn entry_bundle(&self, index: u64, size: u64) -> Result<Vec<Vec<u8>>, ClientError> {
        let width = tile_width(TileId { level: 0, index }, size);
        let path = TilePath::Entries {
            index,
            width: partial(width),
        }
        .to_path();
        let bytes = self.get(&path)?;
        let bad = |reason: String| ClientError::Body {
            url: format!("{}/{path}", self.base),
            reason,
        };
        let entries = decode_bundle(&bytes).ok_or_else(|| bad("not an entry bundle".into()))?;
        if entries.len() as u64 != width {
            return Err(bad(format!("{} entries, expected {width}", entries.len())));
        }
        Ok(entries.into_iter().map(<[u8]>::to_vec).collect())
    }

    /// The entries `[start, end)` of a tree of `size` (`end <= size`), bundle by bundle;
    /// `each` gets every entry with its index.
    pub fn for_each_entry(
        &self,
        start: u64,
        end: u64,
        size: u64,
        mut each: impl FnMut(u64, &[u8]),
    ) -> Result<(), ClientError> {
        let mut bundle = start / TILE_WIDTH;
        while bundle * TILE_WIDTH < end {
            let entries = self.entry_bundle(bundle, size)?;
            for (index, entry) in (bundle * TILE_WIDTH..).zip(&entries) {
                if index >= start && index < end {
                    each(index, entry);
                }
            }
            bundle += 1;
        }
        Ok(())
    }
}

/// The `.p/<W>` part of a path: `None` for a full tile.
fn partial(width: u64) -> Option<u16> {
    (width < TILE_WIDTH).then(|| u16::try_from(width).unwrap_or(0))
}
