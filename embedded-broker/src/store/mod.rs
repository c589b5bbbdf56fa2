//! The message store: with a data directory, queue contents live in append-only segment files,
//! one directory per queue, one chain of segments per priority level.
//!
//! - `record.rs`: the bytes on disk (records, marks, checksums).
//! - `segment.rs`: a chain of segments — buffered appends, marks, the sequential tail reader.
//! - `syncer.rs`: the group-commit thread (one `fdatasync` round covers every connection).
//! - `recovery.rs`: reading a queue's directory back at start, torn tails cut off.
//! - `reclaim.rs`: removing dead segments and deleted queues' directories, compacting sparse ones.
//! - `storage.rs`: the file system behind a trait; `sim.rs`: the power-cut simulation for tests.
//!
//! What goes to disk: a persistent message routed to a durable queue, at publish (its publisher's
//! confirm waits for the sync), and any message published while its queue's in-memory part is
//! full (the *tail*, read back in order when the head runs low; transient messages too, never
//! synced and dropped at restart). See `ARCHITECTURE.md` for the why.

mod reclaim;
pub mod record;
mod recovery;
mod segment;
pub mod sim;
pub mod storage;
pub mod syncer;

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use sha2::Digest as _;

pub use record::Mark;
use segment::Chain;
pub use segment::Loaded;
use storage::Storage;
use syncer::{SyncFile, Syncer};

use crate::sync::lock;

/// Default size at which a segment file is closed and a new one started.
pub const SEGMENT_SIZE: u64 = 32 << 20;

/// The name of the queue description written into each queue directory.
const META_FILE: &str = "queue.json";

/// Why the store could not read or write its files.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file or directory could not be used.
    #[error("cannot use {}", .path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
}

/// What every queue's store shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) storage: Arc<dyn Storage>,
    root: PathBuf,
    pub(crate) syncer: Syncer,
    pub(crate) segment_size: u64,
}

/// The broker's message store: one per data directory.
#[derive(Debug)]
pub struct MessageStore {
    shared: Arc<Shared>,
    /// Queue directories found at start and not yet claimed, by queue hash.
    found: Mutex<HashMap<String, Vec<String>>>,
    next_instance: AtomicU64,
}

/// A queue directory found at start that no queue claimed.
#[derive(Debug, Clone)]
pub struct Orphan {
    /// The directory.
    pub dir: PathBuf,
    /// Its `queue.json`, when readable.
    pub meta: Option<String>,
}

fn queue_hash(vhost: &str, name: &str) -> String {
    let digest =
        sha2::Sha256::new().chain_update(vhost.as_bytes()).chain_update([0]).chain_update(name.as_bytes()).finalize();
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

impl MessageStore {
    /// Opens (creating it) the store under `root` and starts the syncer thread.
    pub fn open(storage: Arc<dyn Storage>, root: &Path, segment_size: u64) -> Result<MessageStore, StoreError> {
        let io_err = |source| StoreError::Io { path: root.to_owned(), source };
        storage.create_dir_all(root).map_err(io_err)?;
        let mut found: HashMap<String, Vec<String>> = HashMap::new();
        for name in storage.list(root).map_err(io_err)? {
            if let Some((hash, instance)) = name.split_once('.')
                && hash.len() == 32
                && u64::from_str_radix(instance, 16).is_ok()
            {
                found.entry(hash.to_owned()).or_default().push(name);
            }
        }
        for dirs in found.values_mut() {
            dirs.sort();
        }
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        let syncer = Syncer::start(Arc::clone(&storage));
        Ok(MessageStore {
            shared: Arc::new(Shared { storage, root: root.to_owned(), syncer, segment_size: segment_size.max(4096) }),
            found: Mutex::new(found),
            next_instance: AtomicU64::new(now),
        })
    }

    /// The store of a queue being created. A durable queue takes over the directory a previous run
    /// left for it and recovers its messages; anything else starts empty. `meta` describes the
    /// queue (written into its directory, for an operator and for [`MessageStore::orphans`]).
    pub fn queue(
        &self,
        vhost: &str,
        name: &str,
        durable: bool,
        levels: usize,
        meta: impl FnOnce() -> String,
    ) -> Result<QueueStore, StoreError> {
        let hash = queue_hash(vhost, name);
        let mut previous = lock(&self.found).remove(&hash).unwrap_or_default();
        let adopt = if durable { previous.pop() } else { None };
        for stale in previous {
            reclaim::remove_queue_dir(&self.shared, &self.shared.root.join(stale));
        }
        let levels = levels.max(1);
        if let Some(dir_name) = adopt {
            let dir = self.shared.root.join(dir_name);
            let (chains, next_seq) = recovery::recover_dir(&self.shared, &dir, levels)?;
            let count: u64 = chains.iter().map(|c| c.tail_count).sum();
            if count > 0 {
                tracing::info!(vhost, queue = name, messages = count, "recovered persistent messages");
            }
            return Ok(QueueStore {
                shared: Arc::clone(&self.shared),
                dir,
                durable,
                created: true,
                meta: None,
                chains,
                next_seq,
                destroyed: false,
            });
        }
        let instance = self.next_instance.fetch_add(1, Ordering::Relaxed);
        let dir = self.shared.root.join(format!("{hash}.{instance:016x}"));
        Ok(QueueStore {
            shared: Arc::clone(&self.shared),
            chains: (0..levels).map(|l| Chain::new(dir.clone(), l as u8)).collect(),
            dir,
            durable,
            created: false,
            meta: Some(meta()),
            next_seq: 0,
            destroyed: false,
        })
    }

    /// Queue directories found at start that no queue has claimed (call once every durable queue
    /// is declared).
    pub fn orphans(&self) -> Vec<Orphan> {
        let found = lock(&self.found);
        found
            .values()
            .flatten()
            .map(|name| {
                let dir = self.shared.root.join(name);
                let meta = self.shared.storage.open(&dir.join(META_FILE), false).ok().and_then(|f| {
                    let mut buf = vec![0u8; f.len().ok()? as usize];
                    let n = f.read_at(0, &mut buf).ok()?;
                    buf.truncate(n);
                    String::from_utf8(buf).ok()
                });
                Orphan { dir, meta }
            })
            .collect()
    }

    /// Removes the directories of [`MessageStore::orphans`] still unclaimed.
    pub fn remove_orphans(&self) {
        let found = std::mem::take(&mut *lock(&self.found));
        for name in found.into_values().flatten() {
            tracing::info!(dir = %name, "removing the messages of a queue that no longer exists");
            reclaim::remove_queue_dir(&self.shared, &self.shared.root.join(name));
        }
    }

    /// The sync round that will cover everything written so far (see `syncer.rs`).
    pub fn ticket(&self) -> u64 {
        self.shared.syncer.ticket()
    }

    /// The last completed sync round, as it changes.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.shared.syncer.subscribe()
    }

    /// The last completed sync round.
    pub fn synced(&self) -> u64 {
        self.shared.syncer.synced()
    }

    /// Syncs everything written so far and waits for it.
    pub fn sync_now(&self) {
        self.shared.syncer.sync_now();
    }

    /// Bytes free on the data directory's file system.
    pub fn free_space(&self) -> io::Result<u64> {
        self.shared.storage.free_space(&self.shared.root)
    }

    /// Where the queue directories are.
    pub fn root(&self) -> &Path {
        &self.shared.root
    }
}

/// One queue's messages on disk.
#[derive(Debug)]
pub struct QueueStore {
    shared: Arc<Shared>,
    dir: PathBuf,
    durable: bool,
    /// The directory exists.
    created: bool,
    /// What to write into `queue.json` when the directory is created.
    meta: Option<String>,
    chains: Vec<Chain>,
    next_seq: u64,
    destroyed: bool,
}

impl QueueStore {
    /// The first free sequence number (after the recovered messages).
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Whether the queue is durable (its persistent messages are recovered).
    pub fn durable(&self) -> bool {
        self.durable
    }

    /// Tail messages of a level (on disk only) and their body bytes.
    pub fn tail(&self, level: usize) -> (u64, u64) {
        self.chains.get(level).map_or((0, 0), |c| (c.tail_count, c.tail_bytes))
    }

    /// Whether a level has tail messages (new ones must go behind them).
    pub fn in_tail(&self, level: usize) -> bool {
        self.chains.get(level).is_some_and(Chain::in_tail)
    }

    fn ensure_dir(&mut self) -> io::Result<()> {
        if self.created {
            return Ok(());
        }
        let storage = &self.shared.storage;
        storage.create_dir_all(&self.dir)?;
        let meta = self.meta.take().unwrap_or_default();
        let file = SyncFile::new(storage.open(&self.dir.join(META_FILE), true)?);
        file.file.write_at(0, meta.as_bytes())?;
        if self.durable {
            self.shared.syncer.mark_file(&file);
            self.shared.syncer.mark_dir(self.shared.root.clone());
            self.shared.syncer.mark_dir(self.dir.clone());
        }
        self.created = true;
        Ok(())
    }

    /// Appends a message record to a level; `tail`: it is not kept in memory (read back later).
    pub fn append(&mut self, level: usize, r: &record::RecordRef<'_>, tail: bool) -> io::Result<()> {
        if self.destroyed {
            return Err(io::Error::other("the queue was deleted"));
        }
        // A disk that refuses the directory keeps the records buffered, as it does when it refuses
        // a segment's write: the flush tries again (and fails, raising the disk alarm).
        if !self.created
            && let Err(error) = self.ensure_dir()
        {
            tracing::debug!(%error, dir = %self.dir.display(), "cannot create a queue's directory yet");
        }
        let chain = self.chains.get_mut(level).ok_or_else(|| io::Error::other("no such priority level"))?;
        chain.append(&self.shared, r, tail)
    }

    /// Loads the next tail message of a level (`None` when the level has no tail). A read error is
    /// logged and ends the tail: the broker keeps serving what it has.
    pub fn load(&mut self, level: usize) -> Option<Loaded> {
        let chain = self.chains.get_mut(level)?;
        match chain.load(&self.shared) {
            Ok(loaded) => loaded,
            Err(error) => {
                tracing::error!(%error, dir = %self.dir.display(), "cannot read queued messages back: they are lost");
                chain.tail_count = 0;
                chain.tail_bytes = 0;
                None
            }
        }
    }

    /// Records what became of a message that is in a segment.
    pub fn mark(&mut self, level: usize, seq: u64, mark: Mark, recover: bool) {
        if self.destroyed {
            return;
        }
        if let Some(chain) = self.chains.get_mut(level) {
            chain.mark(&self.shared, seq, mark, recover);
        }
    }

    /// Writes every buffer to its file (see `Chain::flush`).
    pub fn flush(&mut self) -> io::Result<()> {
        if self.destroyed {
            return Ok(());
        }
        if !self.created && self.chains.iter().any(Chain::has_buffered) {
            self.ensure_dir()?;
        }
        for chain in &mut self.chains {
            chain.flush(&self.shared)?;
        }
        Ok(())
    }

    /// Rewrites the segments that a few live messages pin with just those messages (compaction, see
    /// `reclaim.rs`); run from the broker's periodic sweep, not from the paths that acknowledge.
    pub fn compact(&mut self) {
        if self.destroyed {
            return;
        }
        for chain in &mut self.chains {
            chain.compact(&self.shared);
        }
    }

    /// Whether a flush has anything to write.
    pub fn has_buffered(&self) -> bool {
        !self.destroyed && self.chains.iter().any(Chain::has_buffered)
    }

    /// Drops a level's tail messages; returns how many.
    pub fn purge_tail(&mut self, level: usize) -> u64 {
        let Some(chain) = self.chains.get_mut(level) else { return 0 };
        match chain.purge_tail(&self.shared) {
            Ok(n) => n,
            Err(error) => {
                tracing::error!(%error, dir = %self.dir.display(), "cannot read queued messages while purging");
                let n = chain.tail_count;
                chain.tail_count = 0;
                chain.tail_bytes = 0;
                n
            }
        }
    }

    /// Bytes of segment files (buffered included).
    pub fn disk_bytes(&self) -> u64 {
        self.chains.iter().map(Chain::disk_bytes).sum()
    }

    /// The queue is gone: its directory goes too.
    pub fn destroy(&mut self) {
        if std::mem::replace(&mut self.destroyed, true) {
            return;
        }
        self.chains.clear();
        if self.created {
            reclaim::remove_queue_dir(&self.shared, &self.dir);
        }
    }
}

#[cfg(test)]
mod tests;
