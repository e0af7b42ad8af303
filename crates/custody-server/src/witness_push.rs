//! The log's side of witnessing: push each new checkpoint to every configured witness
//! (C2SP tlog-witness `add-checkpoint`), verify the cosignature that comes back under the
//! witness's key, and store it so `/checkpoint` serves it.

use std::time::Duration;

use custody_core::encoding::base64_encode;
use custody_core::note::{Checkpoint, Note};
use custody_log::Log;
use tokio::sync::watch;

use crate::server::WitnessTarget;

/// What the log knows about one witness.
struct WitnessView {
    target: WitnessTarget,
    /// The size the witness last cosigned, as far as the log knows (409 answers correct it).
    known_size: u64,
    /// The tree size whose cosignature is stored already.
    cosigned: Option<u64>,
}

pub(crate) async fn run(
    log: Log,
    witnesses: Vec<WitnessTarget>,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut views: Vec<WitnessView> = witnesses
        .into_iter()
        .map(|target| WitnessView {
            target,
            known_size: 0,
            cosigned: None,
        })
        .collect();
    loop {
        if let Err(e) = push_round(&log, &mut views).await {
            tracing::warn!(error = %e, "witness round failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.changed() => return,
        }
    }
}

async fn push_round(log: &Log, views: &mut [WitnessView]) -> Result<(), String> {
    let served = log.checkpoint().await.map_err(|e| e.to_string())?;
    let note = Note::parse(&served).map_err(|e| e.to_string())?;
    let checkpoint = Checkpoint::parse(note.text()).map_err(|e| e.to_string())?;
    let size = checkpoint.size();
    // Send only the log's own signature line.
    let mut signed = Note::new(note.text()).map_err(|e| e.to_string())?;
    for line in note
        .signatures()
        .iter()
        .filter(|s| s.name() == log.origin())
    {
        signed
            .push_signature(line.clone())
            .map_err(|e| e.to_string())?;
    }
    let signed = signed.to_note_string();
    for view in views.iter_mut() {
        // Already served with this witness's cosignature (e.g. stored before a restart).
        if matches!(view.target.key.verify(&note), Ok(Some(_))) {
            view.cosigned = Some(size);
            view.known_size = size;
        }
    }
    for view in views.iter_mut().filter(|v| v.cosigned != Some(size)) {
        // Two tries: the second after a 409 told us the witness's real size.
        for _ in 0..2 {
            match push_one(log, view, size, &signed).await {
                Ok(Pushed::Cosigned) => {
                    view.cosigned = Some(size);
                    view.known_size = size;
                    break;
                }
                Ok(Pushed::Conflict(latest)) if latest != view.known_size => {
                    view.known_size = latest;
                }
                Ok(Pushed::Conflict(latest)) => {
                    tracing::warn!(witness = %view.target.url, latest, "witness conflict persists");
                    break;
                }
                Err(e) => {
                    tracing::warn!(witness = %view.target.url, error = %e, "witness refused or unreachable");
                    break;
                }
            }
        }
    }
    Ok(())
}

enum Pushed {
    Cosigned,
    Conflict(u64),
}

async fn push_one(
    log: &Log,
    view: &WitnessView,
    size: u64,
    signed: &str,
) -> Result<Pushed, String> {
    let old = view.known_size;
    if old > size {
        return Err(format!(
            "the witness has cosigned size {old}, larger than this log's {size}: a fork or a rollback"
        ));
    }
    let proof = if old > 0 && old < size {
        log.consistency_proof(old, size)
            .await
            .map_err(|e| e.to_string())?
    } else {
        Vec::new()
    };
    let mut body = format!("old {old}\n");
    for hash in &proof {
        body.push_str(&base64_encode(hash));
        body.push('\n');
    }
    body.push('\n');
    body.push_str(signed);
    let url = format!("{}/add-checkpoint", view.target.url.trim_end_matches('/'));
    let (status, text) = tokio::task::spawn_blocking(move || post(&url, &body))
        .await
        .map_err(|e| e.to_string())??;
    match status {
        200 => {
            store_cosignatures(log, view, size, signed, &text).await?;
            Ok(Pushed::Cosigned)
        }
        409 => text
            .trim()
            .parse()
            .map(Pushed::Conflict)
            .map_err(|_| format!("409 without a size: {text:?}")),
        _ => Err(format!("HTTP {status}: {}", text.trim())),
    }
}

/// Keeps each returned line that verifies under the witness's key.
async fn store_cosignatures(
    log: &Log,
    view: &WitnessView,
    size: u64,
    signed: &str,
    lines: &str,
) -> Result<(), String> {
    let mut stored = 0;
    for line in lines.lines().filter(|l| !l.is_empty()) {
        let candidate = Note::parse(&format!("{signed}{line}\n")).map_err(|e| e.to_string())?;
        match view.target.key.verify(&candidate) {
            Ok(Some(_)) => {
                log.add_cosignature(size, line.to_owned())
                    .await
                    .map_err(|e| e.to_string())?;
                stored += 1;
            }
            Ok(None) => {}
            Err(e) => return Err(format!("a cosignature does not verify: {e}")),
        }
    }
    if stored == 0 {
        return Err("no cosignature from the witness's key in its answer".to_owned());
    }
    tracing::info!(witness = %view.target.url, size, "checkpoint cosigned");
    Ok(())
}

fn post(url: &str, body: &str) -> Result<(u16, String), String> {
    let mut response = custody_client::tiles::agent()
        .post(url)
        .header("Content-Type", "text/plain")
        .send(body)
        .map_err(|e| format!("POST {url}: {e}"))?;
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .with_config()
        .limit(1 << 20)
        .read_to_string()
        .map_err(|e| format!("POST {url}: {e}"))?;
    Ok((status, text))
}
