//! Group commit: one thread makes every connection's pending writes durable with one `fdatasync`
//! per file per round, then tells the connections how far it got.
//!
//! Writers write (a `write` into the page cache) and then, under the syncer's lock, mark the file
//! dirty; a connection then takes a *ticket*, the number of the round that will cover everything it
//! wrote so far. A round takes the dirty files and the round number under the lock, syncs them
//! outside it, and publishes the number on a watch channel. So a write marked before a round took
//! its list is in that round, and one marked after gets the next ticket: no confirm goes out for
//! data no sync covered. While a round's syncs run, the next round's writes pile up, so one sync
//! covers as many messages as arrive in its 0.3 ms.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use tokio::sync::watch;

use super::storage::{Storage, StorageFile};
use crate::sync::lock;

/// A file the syncer may have to sync, with its "already on the list" flag.
#[derive(Debug)]
pub struct SyncFile {
    /// The file.
    pub file: Arc<dyn StorageFile>,
    listed: AtomicBool,
}

impl SyncFile {
    /// Wraps an open file.
    pub fn new(file: Arc<dyn StorageFile>) -> Arc<SyncFile> {
        Arc::new(SyncFile { file, listed: AtomicBool::new(false) })
    }
}

#[derive(Debug, Default)]
struct Pending {
    /// The round that will cover what is marked from now on.
    round: u64,
    files: Vec<Arc<SyncFile>>,
    dirs: Vec<PathBuf>,
    wanted: bool,
    stop: bool,
    /// A sync failed: nothing is confirmed any more (the data may not be on disk).
    failed: bool,
}

#[derive(Debug)]
struct Shared {
    pending: Mutex<Pending>,
    wake: Condvar,
    synced: watch::Sender<u64>,
}

/// The group-commit thread's handle; stops the thread when dropped.
#[derive(Debug)]
pub struct Syncer {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Syncer {
    /// Starts the thread.
    pub fn start(storage: Arc<dyn Storage>) -> Syncer {
        let (synced, _) = watch::channel(0);
        // Round 0 is "nothing to wait for": tickets start at 1.
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending { round: 1, ..Pending::default() }),
            wake: Condvar::new(),
            synced,
        });
        let thread = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new().name("warren-sync".into()).spawn(move || run(&shared, &*storage)).ok()
        };
        Syncer { shared, thread }
    }

    /// Puts a written file on the next round's list.
    pub fn mark_file(&self, file: &Arc<SyncFile>) {
        if !file.listed.swap(true, Ordering::AcqRel) {
            lock(&self.shared.pending).files.push(Arc::clone(file));
        }
    }

    /// Puts a directory (whose entries changed) on the next round's list.
    pub fn mark_dir(&self, dir: PathBuf) {
        let mut p = lock(&self.shared.pending);
        if !p.dirs.contains(&dir) {
            p.dirs.push(dir);
        }
    }

    /// The round that covers everything marked so far; starts it if the thread is idle.
    pub fn ticket(&self) -> u64 {
        let mut p = lock(&self.shared.pending);
        p.wanted = true;
        let round = p.round;
        drop(p);
        self.shared.wake.notify_one();
        round
    }

    /// The last round completed, as it changes.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.shared.synced.subscribe()
    }

    /// The last round completed.
    pub fn synced(&self) -> u64 {
        *self.shared.synced.borrow()
    }

    /// Whether a sync failed (confirms stop: the data may not be on disk).
    pub fn failed(&self) -> bool {
        lock(&self.shared.pending).failed
    }

    /// Syncs what is marked and waits for it (shutdown, tests).
    pub fn sync_now(&self) {
        let ticket = self.ticket();
        let mut rx = self.subscribe();
        let _ = futures::executor::block_on(rx.wait_for(|&done| done >= ticket || self.failed()));
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        lock(&self.shared.pending).stop = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(shared: &Shared, storage: &dyn Storage) {
    loop {
        let (round, files, dirs) = {
            let mut p = lock(&shared.pending);
            while !p.wanted && !p.stop {
                p = shared.wake.wait(p).unwrap_or_else(std::sync::PoisonError::into_inner);
            }
            if p.stop && !p.wanted {
                return;
            }
            p.wanted = false;
            let round = p.round;
            p.round += 1;
            let files = std::mem::take(&mut p.files);
            for f in &files {
                f.listed.store(false, Ordering::Release);
            }
            (round, files, std::mem::take(&mut p.dirs))
        };
        let mut ok = true;
        for f in &files {
            if let Err(error) = f.file.sync_data() {
                tracing::error!(%error, "cannot sync a message store file: confirms stop");
                ok = false;
            }
        }
        for dir in &dirs {
            if let Err(error) = storage.sync_dir(dir) {
                tracing::error!(%error, dir = %dir.display(), "cannot sync a message store directory: confirms stop");
                ok = false;
            }
        }
        if ok {
            shared.synced.send_replace(round);
        } else {
            lock(&shared.pending).failed = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sim::SimStorage;
    use std::path::Path;

    #[test]
    fn a_ticket_is_reported_once_its_writes_are_synced() {
        let fs = SimStorage::new();
        fs.create_dir_all(Path::new("/d")).expect("dir");
        let file = SyncFile::new(fs.open(Path::new("/d/f"), true).expect("open"));
        let syncer = Syncer::start(Arc::new(Arc::clone(&fs)));
        file.file.write_at(0, b"confirmed").expect("write");
        syncer.mark_file(&file);
        syncer.mark_dir(PathBuf::from("/d"));
        let ticket = syncer.ticket();
        assert!(ticket >= 1);
        syncer.sync_now();
        assert!(syncer.synced() >= ticket);
        file.file.write_at(9, b" and lost").expect("write");
        fs.power_cut(|_, _| (0, false));
        assert_eq!(fs.files(), vec![(PathBuf::from("/d/f"), 9)]);
    }
}
