//! Release rules that need only an environment's history: what a promotion of a digest would
//! be, and whether a deployment report names a release on record. The server applies them
//! (under its serial lock, with the history it just read); they are here so they can be
//! tested without one.

use crate::model::Release;

/// What promoting a digest into an environment would do, given its history (oldest first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromotionOutcome<'a> {
    /// The digest was never released there: a new release (if policy allows).
    New,
    /// It is the current release: nothing to do (the answer is the current release).
    AlreadyCurrent(&'a Release),
    /// It was released there before and is not current: going back to it is a rollback,
    /// never a promotion (`custody rollback <env> --to <digest>`).
    Older {
        earlier: &'a Release,
        current: &'a Release,
    },
}

/// Classifies a promotion of `digest` (`sha256:<hex>`) into an environment whose current
/// release is `current`, given `released`: that environment's releases of `digest` (any
/// order; other digests and environments are ignored). Two indexed reads, not the history.
pub fn promotion_outcome<'a>(
    current: Option<&'a Release>,
    released: &'a [Release],
    digest: &str,
) -> PromotionOutcome<'a> {
    let Some(current) = current else {
        return PromotionOutcome::New;
    };
    if current.digest == digest {
        return PromotionOutcome::AlreadyCurrent(current);
    }
    match released
        .iter()
        .filter(|r| r.digest == digest && r.environment == current.environment)
        .max_by_key(|r| r.seq)
    {
        Some(earlier) => PromotionOutcome::Older { earlier, current },
        None => PromotionOutcome::New,
    }
}

/// The release a deployment report of (`environment`, `seq`, `digest`) names, or why it
/// names none (one line: environment, seq, digest and what is on record instead).
pub fn deployment_on_record<'a>(
    history: &'a [Release],
    environment: &str,
    seq: u64,
    digest: &str,
) -> Result<&'a Release, String> {
    match history.iter().find(|r| r.seq == seq) {
        Some(r) if r.digest == digest => Ok(r),
        Some(r) => Err(format!(
            "environment {environment}, seq {seq}, digest {digest} is no release on record (release {seq} of {environment} is {})",
            r.digest
        )),
        None => Err(format!(
            "environment {environment}, seq {seq}, digest {digest} is no release on record ({environment} has {} release(s))",
            history.len()
        )),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::model::ReleaseKind;

    fn digest(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    fn release(seq: u64, d: char) -> Release {
        Release {
            environment: "prod".into(),
            seq,
            digest: digest(d),
            kind: ReleaseKind::Promotion,
            from_environment: Some("staging".into()),
            requested_by: "rm".into(),
            at: Utc::now(),
            policy_digest: digest('p'),
            reason: None,
            request_id: None,
            bundle: "{}".into(),
            log_index: None,
            vsa: None,
        }
    }

    #[test]
    fn attack_promotion_of_older_digest_is_refused_use_rollback() {
        // Release 1, then release 2: promoting release 1 again is going back.
        let outcome = |history: &[Release], d: char| {
            let history = history.to_vec();
            let current = history.last().cloned();
            let mine: Vec<Release> = history
                .iter()
                .filter(|r| r.digest == digest(d))
                .cloned()
                .collect();
            match promotion_outcome(current.as_ref(), &mine, &digest(d)) {
                PromotionOutcome::New => (None, None),
                PromotionOutcome::AlreadyCurrent(c) => (None, Some(c.seq)),
                PromotionOutcome::Older { earlier, current } => {
                    (Some(earlier.seq), Some(current.seq))
                }
            }
        };
        let history = [release(1, 'a'), release(2, 'b')];
        assert_eq!(outcome(&history, 'a'), (Some(1), Some(2)));
        match promotion_outcome(history.last(), &history[..1], &digest('a')) {
            PromotionOutcome::Older { earlier, current } => {
                assert_eq!((earlier.seq, current.seq), (1, 2));
            }
            other => panic!("expected an older release, got {other:?}"),
        }
        // Any earlier release counts, not only the one before the current.
        let history = [release(1, 'a'), release(2, 'b'), release(3, 'c')];
        assert_eq!(outcome(&history, 'a'), (Some(1), Some(3)));
        assert_eq!(outcome(&history, 'b'), (Some(2), Some(3)));
        // The latest earlier release of a digest released twice is named.
        let history = [
            release(1, 'a'),
            release(2, 'b'),
            release(3, 'a'),
            release(4, 'c'),
        ];
        assert_eq!(outcome(&history, 'a'), (Some(3), Some(4)));
        assert_eq!(outcome(&history, 'c'), (None, Some(4)));
        assert_eq!(outcome(&history, 'd'), (None, None));
        assert_eq!(outcome(&[], 'a'), (None, None));
        // A release of the digest in another environment is no earlier release here.
        let mut elsewhere = release(1, 'a');
        elsewhere.environment = "staging".into();
        assert_eq!(
            promotion_outcome(history.last(), &[elsewhere], &digest('a')),
            PromotionOutcome::New
        );
    }

    #[test]
    fn attack_deployment_report_of_unreleased_digest_names_env_seq_and_digest() {
        let history = [release(1, 'a'), release(2, 'b')];
        assert_eq!(
            deployment_on_record(&history, "prod", 2, &digest('b'))
                .unwrap()
                .seq,
            2
        );
        // A real digest with another seq, a seq that does not exist, a digest never released.
        let err = deployment_on_record(&history, "prod", 1, &digest('b')).unwrap_err();
        assert!(
            err.contains("environment prod, seq 1, digest sha256:bbbb")
                && err.contains("release 1 of prod is sha256:aaaa"),
            "{err}"
        );
        let err = deployment_on_record(&history, "prod", 9, &digest('b')).unwrap_err();
        assert!(
            err.contains("seq 9") && err.contains("2 release(s)"),
            "{err}"
        );
        assert!(deployment_on_record(&history, "prod", 2, &digest('z')).is_err());
        assert!(deployment_on_record(&[], "prod", 0, &digest('a')).is_err());
    }
}
