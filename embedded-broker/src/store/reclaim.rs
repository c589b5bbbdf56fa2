//! Giving disk space back: a segment goes as soon as none of its messages is alive (acknowledged,
//! dropped or expired), a segment that only a few live messages pin is rewritten with just those
//! (compaction), a deleted queue's directory goes at once, and so do directories of queues that no
//! longer exist at start.

use std::io;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::Shared;
use super::record::{self, Decoded, Mark, SEGMENT_MAGIC};
use super::segment::Resident;
use super::storage::StorageFile;

/// Bytes read from a segment at a time while compacting it.
const COMPACT_READ: usize = 256 * 1024;
/// Bytes of the rewritten segment buffered before a write.
const COMPACT_WRITE: usize = 1 << 20;
/// The name a rewritten file has until it replaces the old one. Recovery removes such leftovers.
pub(super) const NEW_SUFFIX: &str = ".new";

/// Removes a dead segment and its mark file. Not synced: should a power cut bring them back, the
/// restart reads them and finds the same messages gone or, at worst (marks not yet on disk),
/// delivers acknowledged messages again, as RabbitMQ may after a crash.
pub(super) fn remove_segment(shared: &Shared, segment: &Path, marks: &Path) {
    for path in [segment, marks] {
        if let Err(error) = shared.storage.remove_file(path) {
            tracing::warn!(%error, path = %path.display(), "cannot remove a message store file");
        }
    }
}

/// Removes a queue's directory (the queue was deleted, or is not durable and the broker restarted).
pub(super) fn remove_queue_dir(shared: &Shared, dir: &Path) {
    if let Err(error) = shared.storage.remove_dir_all(dir) {
        tracing::warn!(%error, dir = %dir.display(), "cannot remove a deleted queue's messages");
    }
}

fn with_suffix(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(NEW_SUFFIX);
    PathBuf::from(name)
}

fn damaged(path: &Path, offset: u64, why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("{why} at offset {offset} of {}", path.display()))
}

/// Rewrites a segment with only the records `keep` (in file order), and its mark file with only
/// the *delivered* marks of those records (a restart returns them redelivered); returns the
/// records' new offsets and the new length.
///
/// The order makes a crash at any point harmless: the new segment is written under another name
/// and synced, renamed over the old one, and the directory synced, so the segment a restart finds
/// is the old one or the new one, never a mix; only then is the mark file replaced the same way.
/// The old mark file holds every mark the new segment needs (and more, for records no longer
/// there), so the new segment with the old marks is consistent too.
pub(super) fn compact_segment(
    shared: &Shared,
    dir: &Path,
    segment: &Path,
    marks: &Path,
    end: u64,
    keep: &std::collections::VecDeque<Resident>,
) -> io::Result<(Vec<u64>, u64)> {
    let storage = &shared.storage;
    let old = storage.open(segment, false)?;
    let new_segment = with_suffix(segment);
    let new = storage.open(&new_segment, true)?;
    let written = (|| {
        new.truncate(0)?;
        let mut offsets = Vec::with_capacity(keep.len());
        let mut out = Vec::with_capacity(COMPACT_WRITE.min(64 * 1024));
        out.extend_from_slice(SEGMENT_MAGIC);
        let mut flushed = 0u64;
        let mut chunk = (0u64, Bytes::new());
        for r in keep {
            let bytes = record_at(&*old, segment, r, end, &mut chunk)?;
            offsets.push(flushed + out.len() as u64);
            out.extend_from_slice(&bytes);
            if out.len() >= COMPACT_WRITE {
                new.write_at(flushed, &out)?;
                flushed += out.len() as u64;
                out.clear();
            }
        }
        new.write_at(flushed, &out)?;
        new.sync_data()?;
        Ok((offsets, flushed + out.len() as u64))
    })();
    let (offsets, new_end) = match written {
        Ok(w) => w,
        Err(error) => {
            let _ = storage.remove_file(&new_segment);
            return Err(error);
        }
    };
    let delivered = delivered_marks(shared, marks, keep)?;
    let new_marks = with_suffix(marks);
    if !delivered.is_empty() {
        let file = storage.open(&new_marks, true)?;
        file.truncate(0)?;
        file.write_at(0, &delivered)?;
        file.sync_data()?;
    }
    storage.rename(&new_segment, segment)?;
    storage.sync_dir(dir)?;
    if delivered.is_empty() {
        storage.remove_file(marks)?;
    } else {
        storage.rename(&new_marks, marks)?;
    }
    storage.sync_dir(dir)?;
    Ok((offsets, new_end))
}

/// The record of `r` at its offset, as bytes to copy (checked: checksum and sequence number).
fn record_at(
    file: &dyn StorageFile,
    path: &Path,
    r: &Resident,
    end: u64,
    chunk: &mut (u64, Bytes),
) -> io::Result<Bytes> {
    let mut want = COMPACT_READ;
    // Two reads at most: one at the record, one more when it is longer than a read.
    for _ in 0..3 {
        let (start, data) = &*chunk;
        if r.offset >= *start && r.offset < start + data.len() as u64 {
            let rest = data.slice((r.offset - start) as usize..);
            match record::decode(&rest) {
                Decoded::Record(record, used) if record.seq == r.seq => return Ok(rest.slice(..used)),
                Decoded::Record(..) => return Err(damaged(path, r.offset, "another message than expected")),
                Decoded::Invalid(why) => return Err(damaged(path, r.offset, why)),
                Decoded::Incomplete(need) => want = need.max(COMPACT_READ),
            }
        }
        let n = want.min(end.saturating_sub(r.offset) as usize);
        let mut buf = vec![0u8; n];
        let got = file.read_at(r.offset, &mut buf)?;
        buf.truncate(got);
        *chunk = (r.offset, Bytes::from(buf));
    }
    Err(damaged(path, r.offset, "a record cut short"))
}

/// The *delivered* entries of a mark file for the records kept (not gone), encoded again.
fn delivered_marks(shared: &Shared, marks: &Path, keep: &std::collections::VecDeque<Resident>) -> io::Result<Vec<u8>> {
    let found = super::recovery::read_marks(shared, marks).map_err(|e| match e {
        super::StoreError::Io { source, .. } => source,
    })?;
    let mut out = Vec::new();
    for seq in found.delivered {
        if found.gone.binary_search(&seq).is_err() && keep.binary_search_by_key(&seq, |r| r.seq).is_ok() {
            record::encode_mark(&mut out, seq, Mark::Delivered);
        }
    }
    Ok(out)
}
