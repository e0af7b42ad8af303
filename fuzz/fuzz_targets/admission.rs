//! Kubernetes AdmissionReview v1 bodies: parse; the response custody writes for the review
//! is JSON carrying the same uid; image digests extract without panicking.
#![no_main]
use custody_server::admission::{image_digest, parse, response};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(review) = parse(data) else {
        return;
    };
    for image in &review.images {
        let _ = image_digest(image);
    }
    let denied = review.images.first().map(String::as_str);
    let warnings = review.images.clone();
    let answer = response(&review.uid, denied, &warnings);
    let value: serde_json::Value = serde_json::from_str(&answer)
        .unwrap_or_else(|e| panic!("admission response is not JSON: {e}\n{answer}"));
    assert_eq!(value["response"]["uid"].as_str(), Some(review.uid.as_str()));
    assert_eq!(
        value["response"]["allowed"].as_bool(),
        Some(denied.is_none())
    );
});
