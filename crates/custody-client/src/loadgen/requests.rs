//! Pre-signed write requests: distinct artifacts, ECDSA P-256, signed before the clock starts.

use std::time::{SystemTime, UNIX_EPOCH};

use custody_core::digest::Sha256Digest;
use custody_core::keys::{KeyAlgorithm, KeyError, SignedData, SigningKey};
use custody_core::rekor::request::{CreateEntryRequest, RequestVerifier};

/// `n` `hashedRekordRequestV002` bodies over distinct artifacts, signed on `threads` threads
/// (one P-256 key per thread). A per-run nonce keeps a second run against the same log from
/// submitting duplicates.
pub fn presign(n: usize, threads: usize) -> Result<Vec<Vec<u8>>, KeyError> {
    let nonce = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
        ^ u128::from(std::process::id());
    let threads = threads.clamp(1, n.max(1));
    let chunk = n.div_ceil(threads);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let range = (t * chunk).min(n)..((t + 1) * chunk).min(n);
                scope.spawn(move || {
                    let key = SigningKey::generate(KeyAlgorithm::EcdsaP256Sha256)?;
                    let verifier = RequestVerifier::for_key(&key.public_key())
                        .map_err(|_| KeyError::Crypto { operation: "sign" })?;
                    range
                        .map(|i| {
                            let artifact = format!("custody bench {nonce:x} artifact {i}");
                            hashedrekord(&key, &verifier, artifact.as_bytes())
                        })
                        .collect::<Result<Vec<_>, KeyError>>()
                })
            })
            .collect();
        let mut all = Vec::with_capacity(n);
        for worker in workers {
            let part = worker
                .join()
                .map_err(|_| KeyError::Crypto { operation: "sign" })??;
            all.extend(part);
        }
        Ok(all)
    })
}

/// One request body, as `custody sign --log` sends it (the core builder; signed and
/// serialized before the clock starts).
fn hashedrekord(
    key: &SigningKey,
    verifier: &RequestVerifier,
    artifact: &[u8],
) -> Result<Vec<u8>, KeyError> {
    let digest = Sha256Digest::of(artifact);
    let signature = key.sign(SignedData::Sha256Digest(digest.as_bytes()))?;
    let request =
        CreateEntryRequest::HashedRekord(custody_core::rekor::request::HashedRekordRequest {
            digest: digest.0,
            signature,
            verifier: verifier.clone(),
        });
    Ok(request.to_json())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn presigned_requests_are_distinct_and_admitted() {
        let requests = presign(10, 3).unwrap();
        assert_eq!(requests.len(), 10);
        let bodies: std::collections::HashSet<_> = requests
            .iter()
            .map(|r| custody_core::rekor::request::admit(r).unwrap().body)
            .collect();
        assert_eq!(bodies.len(), 10);
    }
}
