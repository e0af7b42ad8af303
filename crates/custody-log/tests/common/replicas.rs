//! Two `Log` instances on one store (as two `custody serve` processes would have), submitting
//! concurrently: every index exactly once, every acknowledged entry where its receipt says.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use super::{check_against_reference, check_receipt, entries, open, signer};

pub async fn replicas(url_a: &str, url_b: &str, per_writer: usize) {
    let signer = signer();
    // Separate Storage handles (separate pools / connections), as separate processes have.
    let a = open(url_a, &signer, 50).await;
    let b = open(url_b, &signer, 50).await;
    let from_a = entries("replica-a", per_writer);
    let from_b = entries("replica-b", per_writer);
    // Some entries go to both replicas at once: each must get one index, never two.
    let shared = entries("both", 40);
    let (ra, rb, sa, sb) = tokio::join!(
        super::submit_all(&a, &from_a),
        super::submit_all(&b, &from_b),
        super::submit_all(&a, &shared),
        super::submit_all(&b, &shared),
    );
    let verifier = a.verifier();
    let mut by_index: HashMap<u64, Vec<u8>> = HashMap::new();
    for (receipts, logged) in [
        (&ra, &from_a),
        (&rb, &from_b),
        (&sa, &shared),
        (&sb, &shared),
    ] {
        for (receipt, entry) in receipts.iter().zip(logged.iter()) {
            check_receipt(receipt, entry, &verifier);
            if let Some(previous) = by_index.insert(receipt.index, entry.clone()) {
                assert_eq!(
                    &previous, entry,
                    "index {} given to two entries",
                    receipt.index
                );
            }
        }
    }
    for (x, y) in sa.iter().zip(&sb) {
        assert_eq!(x.index, y.index, "one entry, two indices");
    }
    let total = 2 * per_writer + shared.len();
    assert_eq!(by_index.len(), total);
    let mut indices: Vec<u64> = by_index.keys().copied().collect();
    indices.sort_unstable();
    assert_eq!(
        indices,
        (0..total as u64).collect::<Vec<_>>(),
        "indices skip or repeat"
    );
    let (ma, mb) = (a.metrics(), b.metrics());
    assert_eq!(ma.entries + mb.entries, total as u64, "{ma:?} {mb:?}");
    assert!(
        ma.retries + mb.retries > 0,
        "the replicas never raced: the test proves nothing"
    );
    for log in [&a, &b] {
        let reference = check_against_reference(log).await;
        assert_eq!(reference.size(), total as u64);
        for (index, entry) in &by_index {
            assert_eq!(&log.entry(*index).await.unwrap().unwrap(), entry);
        }
    }
}
