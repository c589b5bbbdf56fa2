//! A power-cut simulation of the file system, for tests: files live in memory, and
//! [`SimStorage::power_cut`] throws away every write that no sync covered, as a machine losing
//! power would. What survives a cut:
//!
//! - a file's content up to its last `sync_data`, plus possibly a torn piece of what was written
//!   after it (a random prefix, its last bytes possibly garbage), as a disk that wrote some sectors
//!   and not others leaves it;
//! - a file's name only once `sync_dir` ran on its directory after it was created, and a removed
//!   file's name until `sync_dir` ran after the removal; a renamed file keeps its old name (and
//!   the file it replaced keeps the new one) until `sync_dir` ran after the rename.
//!
//! It can also run out of space ([`SimStorage::set_capacity`]), for the disk alarm, and stop
//! dead after a number of changes ([`SimStorage::crash_after`]): every change from then on fails,
//! as if the machine had stopped there, so a power cut can be placed between any two steps.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::storage::{Storage, StorageFile};
use crate::sync::lock;

/// The simulated file system.
#[derive(Debug, Default)]
pub struct SimStorage {
    inner: Mutex<Namespace>,
}

#[derive(Debug, Default)]
struct Namespace {
    /// Names as running programs see them.
    live: BTreeMap<PathBuf, Arc<SimFile>>,
    /// Names as a power cut would leave them.
    durable: BTreeMap<PathBuf, Arc<SimFile>>,
    dirs: BTreeSet<PathBuf>,
    /// Bytes all files may hold together; `None`: unlimited.
    capacity: Option<u64>,
    /// Changes (writes, syncs, renames, removals, truncations) still allowed; `None`: unlimited.
    changes_left: Option<usize>,
}

/// One simulated file.
#[derive(Debug, Default)]
pub struct SimFile {
    content: Mutex<Content>,
    storage: std::sync::Weak<SimStorage>,
}

#[derive(Debug, Default, Clone)]
struct Content {
    data: Vec<u8>,
    /// What a power cut keeps.
    synced: Vec<u8>,
}

impl SimStorage {
    /// An empty file system.
    pub fn new() -> Arc<SimStorage> {
        Arc::new(SimStorage::default())
    }

    /// Limits the bytes all files together may hold (writes past it fail as a full disk does).
    pub fn set_capacity(&self, capacity: Option<u64>) {
        lock(&self.inner).capacity = capacity;
    }

    /// Lets `n` more changes (new files and directories, writes, syncs, renames, removals,
    /// truncations) through and fails
    /// every one after them; `None` lifts the limit.
    pub fn crash_after(&self, n: Option<usize>) {
        lock(&self.inner).changes_left = n;
    }

    /// The changes [`SimStorage::crash_after`] still lets through.
    pub fn changes_left(&self) -> Option<usize> {
        lock(&self.inner).changes_left
    }

    /// Counts one change against [`SimStorage::crash_after`].
    fn change(ns: &mut Namespace) -> io::Result<()> {
        match ns.changes_left.as_mut() {
            Some(0) => Err(io::Error::other("the simulated machine has stopped")),
            Some(n) => {
                *n -= 1;
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Counts a change to a file's content (the file system's lock is not held).
    fn file_change(weak: &std::sync::Weak<SimStorage>) -> io::Result<()> {
        match weak.upgrade() {
            Some(storage) => SimStorage::change(&mut lock(&storage.inner)),
            None => Ok(()),
        }
    }

    fn used(ns: &Namespace) -> u64 {
        ns.live.values().map(|f| lock(&f.content).data.len() as u64).sum()
    }

    /// Cuts the power: every file goes back to what its last sync kept, with `torn(file, lost)`
    /// deciding for each how many of the `lost` unsynced bytes survive anyway (a torn write); the
    /// last surviving byte is flipped when `garbage` says so. Open files are useless afterwards
    /// (reopen everything, as after a reboot), and [`SimStorage::crash_after`] is lifted.
    pub fn power_cut(self: &Arc<Self>, mut torn: impl FnMut(&Path, usize) -> (usize, bool)) {
        let mut ns = lock(&self.inner);
        let durable = std::mem::take(&mut ns.durable);
        let mut live = BTreeMap::new();
        for (path, file) in durable {
            let old = lock(&file.content).clone();
            let mut data = old.synced.clone();
            if old.data.len() > data.len() && old.data.starts_with(&data) {
                let lost = old.data.len() - data.len();
                let (keep, garbage) = torn(&path, lost);
                let keep = keep.min(lost);
                data.extend_from_slice(&old.data[old.synced.len()..old.synced.len() + keep]);
                if garbage && keep > 0 {
                    let last = data.len() - 1;
                    data[last] ^= 0x5a;
                }
            }
            let fresh = Arc::new(SimFile {
                content: Mutex::new(Content { synced: data.clone(), data }),
                storage: Arc::downgrade(self),
            });
            live.insert(path, fresh);
        }
        ns.durable = live.clone();
        ns.live = live;
        ns.changes_left = None;
    }

    /// Every file's path and length, sorted: for assertions on what the store left behind.
    pub fn files(&self) -> Vec<(PathBuf, u64)> {
        lock(&self.inner).live.iter().map(|(p, f)| (p.clone(), lock(&f.content).data.len() as u64)).collect()
    }

    /// Overwrites bytes of a file in place, synced (bit rot, for corruption tests).
    pub fn corrupt(&self, path: &Path, offset: usize, bytes: &[u8]) -> bool {
        let ns = lock(&self.inner);
        let Some(file) = ns.live.get(path) else { return false };
        let mut c = lock(&file.content);
        if offset + bytes.len() > c.data.len() {
            return false;
        }
        c.data[offset..offset + bytes.len()].copy_from_slice(bytes);
        c.synced = c.data.clone();
        true
    }
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{} not found", path.display()))
}

impl Storage for Arc<SimStorage> {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut ns = lock(&self.inner);
        if !ns.dirs.contains(path) {
            SimStorage::change(&mut ns)?;
        }
        for ancestor in path.ancestors() {
            ns.dirs.insert(ancestor.to_owned());
        }
        Ok(())
    }

    fn list(&self, path: &Path) -> io::Result<Vec<String>> {
        let ns = lock(&self.inner);
        let mut names = BTreeSet::new();
        let children = ns.live.keys().chain(ns.dirs.iter());
        for p in children {
            if p.parent() == Some(path)
                && let Some(name) = p.file_name().and_then(|n| n.to_str())
            {
                names.insert(name.to_owned());
            }
        }
        Ok(names.into_iter().collect())
    }

    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn StorageFile>> {
        let mut ns = lock(&self.inner);
        if let Some(file) = ns.live.get(path) {
            return Ok(Arc::clone(file) as Arc<dyn StorageFile>);
        }
        if !create {
            return Err(not_found(path));
        }
        if path.parent().is_some_and(|p| !ns.dirs.contains(p)) {
            return Err(not_found(path));
        }
        SimStorage::change(&mut ns)?;
        let file = Arc::new(SimFile { content: Mutex::default(), storage: Arc::downgrade(self) });
        ns.live.insert(path.to_owned(), Arc::clone(&file));
        Ok(file)
    }

    fn exists(&self, path: &Path) -> bool {
        let ns = lock(&self.inner);
        ns.live.contains_key(path) || ns.dirs.contains(path)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut ns = lock(&self.inner);
        SimStorage::change(&mut ns)?;
        ns.live.remove(path);
        Ok(())
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut ns = lock(&self.inner);
        ns.live.retain(|p, _| !p.starts_with(path));
        ns.dirs.retain(|p| !p.starts_with(path));
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut ns = lock(&self.inner);
        SimStorage::change(&mut ns)?;
        let file = ns.live.remove(from).ok_or_else(|| not_found(from))?;
        ns.live.insert(to.to_owned(), file);
        Ok(())
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let mut ns = lock(&self.inner);
        SimStorage::change(&mut ns)?;
        let now: Vec<(PathBuf, Arc<SimFile>)> =
            ns.live.iter().filter(|(p, _)| p.parent() == Some(path)).map(|(p, f)| (p.clone(), Arc::clone(f))).collect();
        ns.durable.retain(|p, _| p.parent() != Some(path));
        ns.durable.extend(now);
        Ok(())
    }

    fn free_space(&self, _path: &Path) -> io::Result<u64> {
        let ns = lock(&self.inner);
        Ok(ns.capacity.map_or(u64::MAX / 2, |c| c.saturating_sub(SimStorage::used(&ns))))
    }
}

impl StorageFile for SimFile {
    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        if let Some(storage) = self.storage.upgrade() {
            let mut ns = lock(&storage.inner);
            SimStorage::change(&mut ns)?;
            if let Some(capacity) = ns.capacity {
                let len = lock(&self.content).data.len() as u64;
                let grows = (offset + data.len() as u64).saturating_sub(len);
                if SimStorage::used(&ns) + grows > capacity {
                    return Err(io::Error::new(io::ErrorKind::StorageFull, "no space left on device"));
                }
            }
        }
        let mut c = lock(&self.content);
        let offset = offset as usize;
        if c.data.len() < offset {
            c.data.resize(offset, 0);
        }
        let end = offset + data.len();
        if c.data.len() < end {
            c.data.resize(end, 0);
        }
        c.data[offset..end].copy_from_slice(data);
        Ok(())
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let c = lock(&self.content);
        let offset = (offset as usize).min(c.data.len());
        let n = buf.len().min(c.data.len() - offset);
        buf[..n].copy_from_slice(&c.data[offset..offset + n]);
        Ok(n)
    }

    fn len(&self) -> io::Result<u64> {
        Ok(lock(&self.content).data.len() as u64)
    }

    fn truncate(&self, len: u64) -> io::Result<()> {
        SimStorage::file_change(&self.storage)?;
        let mut c = lock(&self.content);
        c.data.resize(len as usize, 0);
        // A truncation is metadata: kept as if the file system journaled it at once.
        let keep = c.synced.len().min(len as usize);
        c.synced.truncate(keep);
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        SimStorage::file_change(&self.storage)?;
        let mut c = lock(&self.content);
        c.synced = c.data.clone();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_power_cut_keeps_synced_bytes_and_synced_names_only() {
        let fs = SimStorage::new();
        let dir = Path::new("/d");
        fs.create_dir_all(dir).expect("dir");
        let a = fs.open(&dir.join("a"), true).expect("a");
        a.write_at(0, b"hello").expect("write");
        a.sync_data().expect("sync");
        fs.sync_dir(dir).expect("sync dir");
        a.write_at(5, b" world").expect("write");
        let b = fs.open(&dir.join("b"), true).expect("b");
        b.write_at(0, b"never synced name").expect("write");
        b.sync_data().expect("sync");
        fs.power_cut(|_, _| (0, false));
        assert_eq!(fs.files(), vec![(dir.join("a"), 5)]);
        let a = fs.open(&dir.join("a"), false).expect("a survives");
        let mut buf = [0u8; 16];
        let n = a.read_at(0, &mut buf).expect("read");
        assert_eq!(&buf[..n], b"hello");
    }

    #[test]
    fn a_torn_write_keeps_a_prefix_and_a_full_disk_refuses_writes() {
        let fs = SimStorage::new();
        fs.create_dir_all(Path::new("/d")).expect("dir");
        let a = fs.open(Path::new("/d/a"), true).expect("a");
        fs.sync_dir(Path::new("/d")).expect("sync dir");
        a.write_at(0, b"0123456789").expect("write");
        fs.power_cut(|_, lost| (lost / 2, true));
        let a = fs.open(Path::new("/d/a"), false).expect("a");
        assert_eq!(a.len().expect("len"), 5);
        fs.set_capacity(Some(8));
        assert_eq!(a.write_at(5, b"abcd").expect_err("full").kind(), io::ErrorKind::StorageFull);
        a.write_at(5, b"abc").expect("fits");
        assert_eq!(fs.free_space(Path::new("/d")).expect("free"), 0);
    }
}
