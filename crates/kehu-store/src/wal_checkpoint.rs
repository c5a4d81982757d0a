//! Copies SQLite's write-ahead log into the database file on a thread of
//! its own (a passive checkpoint), so that no commit pays for the copy and
//! its fsync. With the copy inside the commit that passed the threshold,
//! every few small writes one request carried it (BENCHMARKS.md, sessions
//! 23 and 32). The pool's connections keep a large threshold of their own
//! as a safety net: if this thread falls behind, a commit still copies.
//!
//! Invariant: one thread per file-backed [`crate::Db`], stopped and joined
//! when the last clone of that `Db` is dropped.

use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// How soon after a commit its pages are copied while writes keep coming.
/// Small copies often: each copy ends in an fsync, and while a large one
/// is written out, requests wait behind its writes (measured on
/// one VM, the order request's p99: 9 ms every 5 ms, 23 ms every 10 ms,
/// 60 ms every 20 ms, 140 ms every second; BENCHMARKS.md, session 33).
const BUSY_INTERVAL: Duration = Duration::from_millis(5);
/// The longest wait between checks once writes have stopped (the interval
/// doubles from [`BUSY_INTERVAL`] while a check finds nothing new).
const IDLE_INTERVAL: Duration = Duration::from_millis(640);

pub struct WalCheckpointer {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for WalCheckpointer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WalCheckpointer")
    }
}

/// What one passive checkpoint reports: frames in the log, frames copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LogState {
    frames: i64,
    copied: i64,
}

impl WalCheckpointer {
    /// Starts the thread on its own connection to `path` (a database the
    /// pool has already opened in WAL mode).
    pub(crate) fn start(path: &Path) -> Result<Self, String> {
        let conn = rusqlite::Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| e.to_string())?;
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let signal = stop.clone();
        let thread = std::thread::Builder::new()
            .name("kehu-wal-checkpoint".into())
            .spawn(move || run(&conn, &signal))
            .map_err(|e| format!("cannot start a thread: {e}"))?;
        Ok(WalCheckpointer {
            stop,
            thread: Some(thread),
        })
    }
}

fn run(conn: &rusqlite::Connection, stop: &(Mutex<bool>, Condvar)) {
    let (flag, wake) = stop;
    let mut interval = BUSY_INTERVAL;
    let mut last: Option<LogState> = None;
    // A failure is logged when it first appears, not every tick; commits
    // still copy past the safety net meanwhile.
    let mut failing: Option<String> = None;
    loop {
        {
            let stopped = flag.lock().unwrap_or_else(|e| e.into_inner());
            let (stopped, _) = wake
                .wait_timeout_while(stopped, interval, |s| !*s)
                .unwrap_or_else(|e| e.into_inner());
            if *stopped {
                return;
            }
        }
        // PASSIVE: copies what no reader still needs and never waits for
        // a lock, so it holds up no reader and no writer.
        let state = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
            Ok(LogState {
                frames: r.get(1)?,
                copied: r.get(2)?,
            })
        });
        match state {
            Ok(s) => {
                let idle = last == Some(s) && s.copied >= s.frames;
                interval = if idle {
                    (interval * 2).min(IDLE_INTERVAL)
                } else {
                    BUSY_INTERVAL
                };
                last = Some(s);
                failing = None;
            }
            Err(e) => {
                let e = e.to_string();
                if failing.as_ref() != Some(&e) {
                    tracing::warn!(error = %e, "copying SQLite's write-ahead log into the database file failed; commits copy it past 10,000 pages meanwhile");
                }
                failing = Some(e);
                interval = IDLE_INTERVAL;
            }
        }
    }
}

impl Drop for WalCheckpointer {
    fn drop(&mut self) {
        let (flag, wake) = &*self.stop;
        *flag.lock().unwrap_or_else(|e| e.into_inner()) = true;
        wake.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_the_log_and_stops_when_dropped() {
        let dir = crate::testing::TempDir::new("kehu-wal-unit");
        let file = dir.0.join("t.db");
        let writer = rusqlite::Connection::open(&file).expect("open");
        writer
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0;
                 CREATE TABLE blobs (b BLOB NOT NULL);
                 INSERT INTO blobs (b) VALUES (randomblob(400000));",
            )
            .expect("write");
        let before = std::fs::metadata(&file).expect("file").len();
        assert!(before < 400_000, "nothing copied yet ({before} bytes)");
        let checkpointer = WalCheckpointer::start(&file).expect("start");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::fs::metadata(&file).expect("file").len() < 400_000 {
            assert!(
                std::time::Instant::now() < deadline,
                "log not copied in 5 s"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        // Idle by now: the interval has grown; dropping must still wake
        // and join the thread at once.
        std::thread::sleep(IDLE_INTERVAL);
        let (done, stopped) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            drop(checkpointer);
            let _ = done.send(());
        });
        stopped
            .recv_timeout(Duration::from_secs(2))
            .expect("the thread stops when dropped");
    }
}
