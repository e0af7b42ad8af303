//! Signature checks off the async executor, on a fixed pool of threads (one per core).
//!
//! `spawn_blocking` per request made tokio grow its blocking pool to hundreds of threads under
//! load (one per waiting request), and every request paid a thread wake-up. Here a few threads
//! drain one bounded queue: under load they never sleep, and a full queue is push back (503),
//! like the log's own queue.

use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use tokio::sync::oneshot;

use custody_core::rekor::request::{Admitted, RequestError, admit};

type Job = (Bytes, oneshot::Sender<Result<Admitted, RequestError>>);

/// Why a request could not be checked (not a verdict about the request).
#[derive(Debug, thiserror::Error)]
pub(crate) enum PoolError {
    #[error("too many write requests are waiting for their signature check")]
    Full,
    #[error("the signature-check threads stopped")]
    Stopped,
}

/// The pool's handle; the threads stop when the last handle is dropped.
pub(crate) struct AdmitPool {
    jobs: SyncSender<Job>,
}

impl AdmitPool {
    /// `threads` threads (at least 1) and a queue of `queue` requests.
    pub(crate) fn start(threads: usize, queue: usize) -> std::io::Result<Self> {
        let (jobs, rx) = sync_channel::<Job>(queue);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("custody-admit-{i}"))
                .spawn(move || work(&rx))?;
        }
        Ok(Self { jobs })
    }

    /// Parses and verifies `body` on a pool thread.
    pub(crate) async fn admit(
        &self,
        body: Bytes,
    ) -> Result<Result<Admitted, RequestError>, PoolError> {
        let (reply, answer) = oneshot::channel();
        self.jobs.try_send((body, reply)).map_err(|e| match e {
            TrySendError::Full(_) => PoolError::Full,
            TrySendError::Disconnected(_) => PoolError::Stopped,
        })?;
        answer.await.map_err(|_| PoolError::Stopped)
    }
}

fn work(rx: &Mutex<Receiver<Job>>) {
    loop {
        let job = match rx.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok((body, reply)) = job else {
            return;
        };
        let _ = reply.send(admit(&body));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn checks_on_the_pool_and_pushes_back_when_full() {
        let pool = AdmitPool::start(1, 4).unwrap();
        let good = custody_client::loadgen::presign(1, 1).unwrap().remove(0);
        assert!(pool.admit(Bytes::from(good)).await.unwrap().is_ok());
        assert!(
            pool.admit(Bytes::from_static(b"{}"))
                .await
                .unwrap()
                .is_err()
        );
        // A zero-capacity queue with its only thread busy is always full.
        let (jobs, _waiting) = sync_channel::<Job>(0);
        let busy = AdmitPool { jobs };
        assert!(matches!(
            busy.admit(Bytes::new()).await,
            Err(PoolError::Full)
        ));
    }
}
