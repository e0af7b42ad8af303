//! A C2SP tlog-witness: cosigns a log's checkpoint only after checking the log's signature and
//! a consistency proof from the last checkpoint it cosigned for that log.
//!
//! `POST <prefix>/add-checkpoint`, body `old <size>\n` + up to 63 base64 proof lines + `\n` +
//! the signed checkpoint. Answers (tlog-witness.md): 200 with the cosignature line; 400
//! malformed or old size above the new size; 403 no valid signature from the log's key; 404
//! unknown origin; 409 old size is not the witness's latest (body `<latest>\n`,
//! `text/x.tlog.size`); 422 bad consistency proof. The state is persisted (atomically) before
//! the cosignature is returned, so a witness never cosigns two inconsistent trees.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use custody_core::encoding::{base64_decode_strict, base64_encode};
use custody_core::merkle::{Hash, empty_root, verify_consistency};
use custody_core::note::{Checkpoint, CosignatureSigner, Note, NoteVerifier};
use serde::{Deserialize, Serialize};

use custody_core::fsio::write_atomic;

/// C2SP tlog-witness: at most 63 proof lines.
const MAX_PROOF_LINES: usize = 63;
/// Largest add-checkpoint request body.
const MAX_REQUEST_BYTES: usize = 1 << 20;

/// Why a checkpoint was not cosigned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WitnessError {
    #[error("malformed add-checkpoint request: {0}")]
    Malformed(String),
    #[error("old size {old} is above the checkpoint's size {new}")]
    OldAboveNew { old: u64, new: u64 },
    #[error("the checkpoint has no valid signature from the log's key: {0}")]
    Signature(custody_core::note::NoteError),
    #[error("unknown log origin {0:?}")]
    UnknownOrigin(String),
    #[error("old size {old} is not the latest size this witness cosigned, {latest}")]
    Conflict { old: u64, latest: u64 },
    #[error("the checkpoint is not consistent with the one this witness cosigned: {0}")]
    Inconsistent(String),
    #[error("cannot persist the witness state {path}: {source}")]
    State {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot cosign: {0}")]
    Cosign(custody_core::note::NoteError),
}

impl WitnessError {
    /// The HTTP status tlog-witness prescribes.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Malformed(_) | Self::OldAboveNew { .. } => StatusCode::BAD_REQUEST,
            Self::Signature(_) => StatusCode::FORBIDDEN,
            Self::UnknownOrigin(_) => StatusCode::NOT_FOUND,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::Inconsistent(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::State { .. } | Self::Cosign(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The last checkpoint cosigned for one log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CosignedTree {
    pub size: u64,
    /// Base64 root hash.
    pub root_hash: String,
}

/// The witness's durable state: per origin, the latest tree it cosigned.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WitnessState {
    pub logs: BTreeMap<String, CosignedTree>,
}

/// A witness: its key, the logs it follows, and its state file.
pub struct Witness {
    signer: CosignatureSigner,
    logs: Vec<NoteVerifier>,
    state_path: PathBuf,
    state: Mutex<WitnessState>,
}

struct AddCheckpoint {
    old: u64,
    proof: Vec<Hash>,
    note: Note,
    checkpoint: Checkpoint,
}

impl Witness {
    /// A witness signing with `signer` for the logs whose keys are `logs` (key name = origin),
    /// with its state in `state_path` (created on the first cosignature).
    pub fn open(
        signer: CosignatureSigner,
        logs: Vec<NoteVerifier>,
        state_path: PathBuf,
    ) -> Result<Self, WitnessError> {
        let state = match std::fs::read(&state_path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| WitnessError::State {
                path: state_path.clone(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => WitnessState::default(),
            Err(source) => {
                return Err(WitnessError::State {
                    path: state_path,
                    source,
                });
            }
        };
        Ok(Self {
            signer,
            logs,
            state_path,
            state: Mutex::new(state),
        })
    }

    /// Handles one add-checkpoint request body; returns the cosignature line(s) to answer.
    pub fn add_checkpoint(&self, body: &str, now: u64) -> Result<String, WitnessError> {
        let request = parse_request(body)?;
        let origin = request.checkpoint.origin().to_owned();
        let keys: Vec<NoteVerifier> = self
            .logs
            .iter()
            .filter(|v| v.name() == origin)
            .cloned()
            .collect();
        if keys.is_empty() {
            return Err(WitnessError::UnknownOrigin(origin));
        }
        request
            .note
            .verify(&keys)
            .map_err(WitnessError::Signature)?;
        let new = request.checkpoint.size();
        if request.old > new {
            return Err(WitnessError::OldAboveNew {
                old: request.old,
                new,
            });
        }
        let mut state = self
            .state
            .lock()
            .map_err(|_| WitnessError::Malformed("witness state lock poisoned".to_owned()))?;
        let latest = state.logs.get(&origin).cloned();
        check_consistency(&request, latest.as_ref())?;
        let mut next = state.clone();
        next.logs.insert(
            origin,
            CosignedTree {
                size: new,
                root_hash: base64_encode(request.checkpoint.root_hash()),
            },
        );
        // Persist before answering: a cosignature must never outlive a lost state update.
        let json = serde_json::to_vec_pretty(&next).unwrap_or_default();
        write_atomic(&self.state_path, &json, false).map_err(|source| WitnessError::State {
            path: self.state_path.clone(),
            source,
        })?;
        *state = next;
        let line = self
            .signer
            .cosign(request.note.text(), now)
            .map_err(WitnessError::Cosign)?;
        Ok(line.to_line())
    }
}

fn check_consistency(
    request: &AddCheckpoint,
    latest: Option<&CosignedTree>,
) -> Result<(), WitnessError> {
    let (latest_size, latest_root) = match latest {
        Some(tree) => {
            let root = base64_decode_strict(&tree.root_hash)
                .ok()
                .and_then(|r| <Hash>::try_from(r.as_slice()).ok())
                .ok_or_else(|| WitnessError::Malformed("stored root hash is corrupt".to_owned()))?;
            (tree.size, root)
        }
        None => (0, empty_root()),
    };
    if request.old != latest_size {
        return Err(WitnessError::Conflict {
            old: request.old,
            latest: latest_size,
        });
    }
    let new_size = request.checkpoint.size();
    let new_root = request.checkpoint.root_hash();
    let inconsistent = |why: &str| Err(WitnessError::Inconsistent(why.to_owned()));
    if new_size == 0 && *new_root != empty_root() {
        return inconsistent("a size-0 checkpoint must have the empty tree's root");
    }
    if request.old == 0 {
        return if request.proof.is_empty() {
            Ok(())
        } else {
            inconsistent("a proof from size 0 must be empty")
        };
    }
    if request.old == new_size {
        return if request.proof.is_empty() && *new_root == latest_root {
            Ok(())
        } else {
            inconsistent("same size, different root hash")
        };
    }
    verify_consistency(
        request.old,
        new_size,
        &latest_root,
        new_root,
        &request.proof,
    )
    .map_err(|e| WitnessError::Inconsistent(e.to_string()))
}

fn parse_request(body: &str) -> Result<AddCheckpoint, WitnessError> {
    let malformed = |why: &str| WitnessError::Malformed(why.to_owned());
    let (first, mut rest) = body
        .split_once('\n')
        .ok_or_else(|| malformed("no `old <size>` line"))?;
    let old = first
        .strip_prefix("old ")
        .filter(|n| !n.is_empty() && (n == &"0" || !n.starts_with('0')))
        .and_then(|n| n.parse::<u64>().ok())
        .ok_or_else(|| malformed("the first line must be `old <size>`"))?;
    let mut proof = Vec::new();
    loop {
        let (line, tail) = rest
            .split_once('\n')
            .ok_or_else(|| malformed("no blank line before the checkpoint"))?;
        rest = tail;
        if line.is_empty() {
            break;
        }
        if proof.len() == MAX_PROOF_LINES {
            return Err(malformed("more than 63 proof lines"));
        }
        let hash = base64_decode_strict(line)
            .ok()
            .and_then(|h| <Hash>::try_from(h.as_slice()).ok())
            .ok_or_else(|| malformed("a proof line is not a base64 32-byte hash"))?;
        proof.push(hash);
    }
    let note = Note::parse(rest).map_err(|e| WitnessError::Malformed(e.to_string()))?;
    let checkpoint =
        Checkpoint::parse(note.text()).map_err(|e| WitnessError::Malformed(e.to_string()))?;
    Ok(AddCheckpoint {
        old,
        proof,
        note,
        checkpoint,
    })
}

/// Serves `POST /add-checkpoint` (and `GET /healthz`) until `shutdown` completes, with the
/// listener's timeouts and connection limit.
pub async fn serve(
    listener: tokio::net::TcpListener,
    witness: Arc<Witness>,
    limits: crate::listener::ListenerLimits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/add-checkpoint", post(add_checkpoint))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(witness);
    let stats = Arc::new(crate::listener::ListenerStats::default());
    crate::listener::serve(listener, app, None, limits, stats, shutdown).await
}

async fn add_checkpoint(State(witness): State<Arc<Witness>>, body: Body) -> Response {
    let Ok(bytes) = axum::body::to_bytes(body, MAX_REQUEST_BYTES).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "request too large\n").into_response();
    };
    let Ok(text) = String::from_utf8(bytes.to_vec()) else {
        return (StatusCode::BAD_REQUEST, "request is not UTF-8\n").into_response();
    };
    let now = chrono::Utc::now().timestamp().max(0).unsigned_abs();
    let result = tokio::task::spawn_blocking(move || witness.add_checkpoint(&text, now)).await;
    match result {
        Ok(Ok(lines)) => (StatusCode::OK, lines).into_response(),
        Ok(Err(WitnessError::Conflict { latest, .. })) => (
            StatusCode::CONFLICT,
            [(header::CONTENT_TYPE, "text/x.tlog.size")],
            format!("{latest}\n"),
        )
            .into_response(),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "checkpoint refused");
            (e.status(), format!("{e}\n")).into_response()
        }
        Err(e) => crate::read_api::internal(&e),
    }
}
