//! Test helper for the crash test (`tests/crash.rs`): opens a log on SQLite and takes
//! submissions over TCP, so the test can SIGKILL it at any moment. Not for production.
//!
//! Usage: `custody-log-testd <database path> <log signing key (PRIVATE+KEY+…)> <origin>`.
//! Prints `listening <port>` once the log is open. Protocol, one line each way: the client
//! sends the entry in hex; the server answers `ok <index> <hex(checkpoint note)>` or
//! `err <message>`.

use std::time::Duration;

use custody_core::note::NoteSigner;
use custody_log::{Log, LogConfig, Storage};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, path, skey, origin] = args.as_slice() else {
        return Err("usage: custody-log-testd <database path> <signing key> <origin>".into());
    };
    let signer = NoteSigner::from_skey(skey)?;
    let config = LogConfig {
        batch_max_entries: 32,
        batch_max_delay: Duration::from_millis(2),
        ..LogConfig::new(origin)
    };
    let log = Log::open(Storage::open(path).await?, signer, config).await?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    println!("listening {}", listener.local_addr()?.port());
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(serve(log.clone(), stream));
    }
}

async fn serve(log: Log, stream: TcpStream) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    while let Some(line) = lines.next_line().await? {
        let answer = match hex::decode(line.trim()) {
            Err(_) => "err bad hex\n".to_owned(),
            Ok(entry) => match log.submit(entry).await {
                Ok(r) => format!("ok {} {}\n", r.index, hex::encode(r.checkpoint)),
                Err(e) => format!("err {e}\n"),
            },
        };
        write.write_all(answer.as_bytes()).await?;
    }
    Ok(())
}
