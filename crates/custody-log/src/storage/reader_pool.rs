//! SQLite reads on a fixed set of threads, each with its own connection.
//!
//! Reads used to run in tokio's blocking pool on pooled connections. Under many concurrent
//! reads that pool grows a thread per waiting read (and retires them after 10 s idle), and
//! every read paid a thread hand-off each way; at 10^7 entries the tile reads spent more time
//! in futex wake-ups and context switches than in SQLite. Here a few threads drain one queue:
//! while reads are queued a thread takes the next without sleeping, and no connection is ever
//! opened per read.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::error::StorageError;

type Job = Box<dyn FnOnce(&Connection) + Send>;

/// The threads stop when the pool is dropped (once the queued reads are done).
pub(super) struct ReaderPool {
    jobs: Sender<Job>,
    path: String,
}

impl ReaderPool {
    /// One thread per connection in `connections` (at least one).
    pub(super) fn start(connections: Vec<Connection>, path: String) -> Result<Self, StorageError> {
        let (jobs, rx) = channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for (i, conn) in connections.into_iter().enumerate() {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("custody-log-read-{i}"))
                .spawn(move || work(&conn, &rx))
                .map_err(|source| StorageError::Io {
                    path: path.clone(),
                    source,
                })?;
        }
        Ok(Self { jobs, path })
    }

    /// Runs `f` on the next free reader thread.
    pub(super) async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StorageError> + Send + 'static,
    ) -> Result<T, StorageError> {
        let (reply, answer) = oneshot::channel();
        let target = self.path.clone();
        let job: Job = Box::new(move |conn| {
            // A panic in a read is that read's failure, not the thread's: the caller gets an
            // error saying so, and the thread goes on serving the queue.
            let result = catch_unwind(AssertUnwindSafe(|| f(conn))).unwrap_or_else(|_| {
                Err(StorageError::Config {
                    target,
                    reason: "a read panicked on a SQLite reader thread (a bug: please report it)",
                })
            });
            let _ = reply.send(result);
        });
        let stopped = || StorageError::Config {
            target: self.path.clone(),
            reason: "the SQLite reader threads stopped",
        };
        self.jobs.send(job).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

fn work(conn: &Connection, rx: &Mutex<Receiver<Job>>) {
    loop {
        let job = match rx.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        job(conn);
    }
}
