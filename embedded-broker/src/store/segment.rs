//! One queue level's messages on disk: a chain of append-only segment files, each with a mark file
//! beside it, written through a buffer that the owner flushes once per batch, and read back
//! sequentially from a cursor (the queue's *tail*: messages on disk only).
//!
//! Memory per message that is only on disk is nothing: the chain keeps per segment a number,
//! its first sequence number, its length and how many of its records are still alive.

use std::collections::VecDeque;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;

use super::Shared;
use super::record::{self, Decoded, Mark, Record, RecordRef, SEGMENT_MAGIC};
use super::storage::StorageFile;
use super::syncer::SyncFile;

/// Bytes read from a segment at a time when loading the tail.
const READ_CHUNK: usize = 256 * 1024;

/// Marks read back at recovery for a segment written before the restart.
#[derive(Debug, Default)]
pub(super) struct RecoveredMarks {
    /// Sequence numbers gone (sorted).
    pub gone: Vec<u64>,
    /// Sequence numbers delivered and not gone (sorted).
    pub delivered: Vec<u64>,
}

/// A live record of a segment that the queue holds in memory (ready in its head, or delivered and
/// not yet acknowledged): what compaction copies into the rewritten segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Resident {
    pub seq: u64,
    /// Where the record starts in the segment file.
    pub offset: u64,
}

/// A segment file and what the chain knows of it.
#[derive(Debug)]
pub(super) struct Segment {
    pub no: u64,
    /// Sequence number of its first record (`u64::MAX` while it has none).
    pub first_seq: u64,
    /// Records not yet gone.
    pub live: u64,
    /// Records in the file, gone or not.
    pub records: u64,
    /// The live records before the tail, in file order (the others are tail records, read back
    /// from the tail cursor on). A segment wholly behind the tail has every live record here.
    pub resident: VecDeque<Resident>,
    /// Bytes of good records (buffered ones included for the segment being written).
    pub end: u64,
    pub marks: Option<MarkWriter>,
    /// Only for segments found at start.
    pub recovered: Option<Box<RecoveredMarks>>,
}

#[derive(Debug)]
pub(super) struct MarkWriter {
    /// Opened by the first flush with marks to write: a disk that refuses the file keeps the
    /// marks buffered (an acknowledged message must not come back after a restart).
    file: Option<Arc<dyn StorageFile>>,
    len: u64,
    buf: Vec<u8>,
}

#[derive(Debug)]
struct Writer {
    no: u64,
    /// Opened (created) by the first flush: a disk that refuses new files keeps the segment's
    /// records buffered instead of refusing them.
    file: Option<Arc<SyncFile>>,
    flushed: u64,
    buf: Vec<u8>,
    /// The buffer holds records that must be synced before their publishers hear of them.
    sync: bool,
}

/// Where the tail continues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cursor {
    no: u64,
    offset: u64,
}

#[derive(Debug)]
struct Chunk {
    no: u64,
    start: u64,
    data: Bytes,
}

/// A record loaded from the tail.
#[derive(Debug)]
pub struct Loaded {
    /// The record.
    pub record: Record,
    /// It had been delivered before a restart.
    pub redelivered: bool,
}

/// One level's chain of segments.
#[derive(Debug)]
pub(super) struct Chain {
    pub dir: PathBuf,
    pub level: u8,
    pub segments: VecDeque<Segment>,
    writer: Option<Writer>,
    tail: Option<Cursor>,
    /// Live records in the tail, and their body bytes.
    pub tail_count: u64,
    pub tail_bytes: u64,
    chunk: Option<Chunk>,
    read_file: Option<(u64, Arc<dyn StorageFile>)>,
    pub next_no: u64,
}

impl Chain {
    pub fn new(dir: PathBuf, level: u8) -> Chain {
        Chain {
            dir,
            level,
            segments: VecDeque::new(),
            writer: None,
            tail: None,
            tail_count: 0,
            tail_bytes: 0,
            chunk: None,
            read_file: None,
            next_no: 1,
        }
    }

    pub fn segment_path(&self, no: u64) -> PathBuf {
        self.dir.join(format!("{:03}.{no:010}.seg", self.level))
    }

    pub fn marks_path(&self, no: u64) -> PathBuf {
        self.dir.join(format!("{:03}.{no:010}.marks", self.level))
    }

    /// Sets the tail from recovery: every live record, from the first segment on.
    pub fn set_recovered_tail(&mut self, count: u64, bytes: u64) {
        if count > 0
            && let Some(first) = self.segments.front()
        {
            self.tail = Some(Cursor { no: first.no, offset: SEGMENT_MAGIC.len() as u64 });
            self.tail_count = count;
            self.tail_bytes = bytes;
        }
    }

    /// Whether new messages must go behind the tail (it has messages).
    pub fn in_tail(&self) -> bool {
        self.tail_count > 0
    }

    /// From now on, appended messages are tail messages: the tail starts at the write position.
    pub fn start_tail(&mut self) {
        if self.tail_count > 0 {
            return;
        }
        let cursor = match &self.writer {
            Some(w) => Cursor { no: w.no, offset: w.flushed + w.buf.len() as u64 },
            None => Cursor { no: self.next_no, offset: SEGMENT_MAGIC.len() as u64 },
        };
        self.tail = Some(cursor);
    }

    /// Appends a record; `tail`: it is a tail message (not kept in memory).
    pub fn append(&mut self, shared: &Shared, r: &RecordRef<'_>, tail: bool) -> io::Result<()> {
        let len = record::record_len(r) as u64;
        let full = match (&self.writer, self.segments.back()) {
            (Some(w), Some(seg)) => {
                seg.first_seq != u64::MAX && w.flushed + w.buf.len() as u64 + len > shared.segment_size
            }
            _ => true,
        };
        if full && let Err(error) = self.roll(shared) {
            // A full disk (or a failing one): the record waits in the current segment's buffer
            // (the segment grows past its size) until the disk takes it; the flush that fails
            // raises the disk alarm, which stops publishers. Refusing the record here would nack
            // a message the broker could still keep. (A roll fails only in flushing the current
            // segment, so there is one.)
            // Said once, as the segment first passes its size (not for every record after).
            if self.segments.back().is_some_and(|seg| seg.end <= shared.segment_size) {
                tracing::warn!(%error, dir = %self.dir.display(), "cannot start a new segment: the current one grows");
            }
        }
        if tail && self.tail_count == 0 {
            self.start_tail();
        }
        let (Some(w), Some(seg)) = (self.writer.as_mut(), self.segments.back_mut()) else {
            return Err(io::Error::other("no segment to write to"));
        };
        if !tail {
            seg.resident.push_back(Resident { seq: r.seq, offset: w.flushed + w.buf.len() as u64 });
        }
        seg.records += 1;
        record::encode(&mut w.buf, r);
        if r.flags & record::FLAG_RECOVER != 0 {
            w.sync = true;
        }
        seg.end += len;
        seg.live += 1;
        if seg.first_seq == u64::MAX {
            seg.first_seq = r.seq;
        }
        if tail {
            self.tail_count += 1;
            self.tail_bytes += r.body.len() as u64;
        }
        Ok(())
    }

    /// Starts a new segment (the previous one is flushed and, when nothing in it is alive, removed);
    /// its file is created by the next flush.
    fn roll(&mut self, shared: &Shared) -> io::Result<()> {
        // Flushed first: when the disk refuses, the record waits in the current segment.
        self.flush(shared)?;
        let no = self.next_no;
        let mut buf = Vec::with_capacity(64 * 1024);
        buf.extend_from_slice(SEGMENT_MAGIC);
        let old = self.writer.replace(Writer { no, file: None, flushed: 0, buf, sync: false });
        self.next_no = no + 1;
        self.segments.push_back(Segment {
            no,
            first_seq: u64::MAX,
            live: 0,
            records: 0,
            resident: VecDeque::new(),
            end: SEGMENT_MAGIC.len() as u64,
            marks: None,
            recovered: None,
        });
        if let Some(old) = old {
            self.reclaim_if_dead(shared, old.no);
        }
        Ok(())
    }

    /// Writes what is buffered (records, then marks); files holding records to recover are put on
    /// the syncer's list. On an error the data stays buffered for the next try.
    pub fn flush(&mut self, shared: &Shared) -> io::Result<()> {
        let unopened = self.writer.as_ref().filter(|w| w.file.is_none() && !w.buf.is_empty()).map(|w| w.no);
        if let Some(no) = unopened {
            let file = SyncFile::new(shared.storage.open(&self.segment_path(no), true)?);
            // The new name must be durable before anything in the file is confirmed.
            shared.syncer.mark_dir(self.dir.clone());
            if let Some(w) = self.writer.as_mut() {
                w.file = Some(file);
            }
        }
        if let Some(w) = self.writer.as_mut()
            && !w.buf.is_empty()
            && let Some(file) = &w.file
        {
            file.file.write_at(w.flushed, &w.buf)?;
            w.flushed += w.buf.len() as u64;
            w.buf.clear();
            if std::mem::take(&mut w.sync) {
                shared.syncer.mark_file(file);
            }
        }
        for i in 0..self.segments.len() {
            if self.segments[i].marks.as_ref().is_some_and(|m| m.file.is_none() && !m.buf.is_empty()) {
                // The path is made only to open the file: once per segment, not per mark.
                let file = shared.storage.open(&self.marks_path(self.segments[i].no), true)?;
                let len = file.len()?;
                if let Some(m) = self.segments[i].marks.as_mut() {
                    // A torn entry at the end of a mark file from before a restart is cut off.
                    m.len = len - len % record::MARK_LEN as u64;
                    m.file = Some(file);
                }
            }
            if let Some(m) = self.segments[i].marks.as_mut()
                && !m.buf.is_empty()
                && let Some(file) = &m.file
            {
                file.write_at(m.len, &m.buf)?;
                m.len += m.buf.len() as u64;
                m.buf.clear();
            }
        }
        Ok(())
    }

    /// Whether anything waits in a buffer.
    pub fn has_buffered(&self) -> bool {
        self.writer.as_ref().is_some_and(|w| !w.buf.is_empty())
            || self.segments.iter().any(|s| s.marks.as_ref().is_some_and(|m| !m.buf.is_empty()))
    }

    fn find(&self, seq: u64) -> Option<usize> {
        let i = self.segments.partition_point(|s| s.first_seq <= seq);
        i.checked_sub(1)
    }

    /// Records what became of a message that is in a segment: `Gone` frees its place (the segment
    /// is removed once nothing in it is alive); a mark is written only for `recover` records,
    /// the only ones a restart reads.
    pub fn mark(&mut self, shared: &Shared, seq: u64, mark: Mark, recover: bool) {
        let Some(i) = self.find(seq) else { return };
        if recover {
            let marks =
                self.segments[i].marks.get_or_insert_with(|| MarkWriter { file: None, len: 0, buf: Vec::new() });
            record::encode_mark(&mut marks.buf, seq, mark);
        }
        if mark == Mark::Gone {
            let seg = &mut self.segments[i];
            if let Ok(at) = seg.resident.binary_search_by_key(&seq, |r| r.seq) {
                seg.resident.remove(at);
            }
            seg.live = seg.live.saturating_sub(1);
            let no = seg.no;
            self.reclaim_if_dead(shared, no);
        }
    }

    /// Loads the next tail message.
    pub fn load(&mut self, shared: &Shared) -> io::Result<Option<Loaded>> {
        loop {
            if self.tail_count == 0 {
                self.tail = None;
                self.chunk = None;
                self.read_file = None;
                return Ok(None);
            }
            let Some(mut cursor) = self.tail else {
                return Ok(self.lost_tail("no tail position"));
            };
            let Some(i) = self.segments.iter().position(|s| s.no >= cursor.no) else {
                return Ok(self.lost_tail("the tail's segments are missing"));
            };
            if self.segments[i].no != cursor.no {
                cursor = Cursor { no: self.segments[i].no, offset: SEGMENT_MAGIC.len() as u64 };
                self.tail = Some(cursor);
            }
            // A record not written yet is written first; when the disk refuses (the flush's error
            // reaches the queue through its own flush), it is read from the buffer it waits in.
            if self.writer.as_ref().is_some_and(|w| w.no == cursor.no && cursor.offset >= w.flushed) {
                let _ = self.flush(shared);
            }
            let end = self.segments[i].end;
            if cursor.offset >= end {
                self.tail = Some(Cursor { no: cursor.no + 1, offset: SEGMENT_MAGIC.len() as u64 });
                if i + 1 >= self.segments.len() {
                    return Ok(self.lost_tail("the tail ends before its last message"));
                }
                continue;
            }
            let data = match self.buffered(cursor) {
                Some(data) => data,
                None => self.read(shared, cursor, end)?,
            };
            match record::decode(&data) {
                Decoded::Record(record, used) => {
                    self.tail = Some(Cursor { no: cursor.no, offset: cursor.offset + used as u64 });
                    let seg = &mut self.segments[i];
                    let mut redelivered = false;
                    if let Some(marks) = &seg.recovered {
                        if !record.recover() || marks.gone.binary_search(&record.seq).is_ok() {
                            continue;
                        }
                        redelivered = marks.delivered.binary_search(&record.seq).is_ok();
                    }
                    seg.resident.push_back(Resident { seq: record.seq, offset: cursor.offset });
                    self.tail_count -= 1;
                    self.tail_bytes = self.tail_bytes.saturating_sub(record.body.len() as u64);
                    return Ok(Some(Loaded { record, redelivered }));
                }
                Decoded::Incomplete(_) | Decoded::Invalid(_) => {
                    let path = self.segment_path(cursor.no);
                    tracing::error!(path = %path.display(), offset = cursor.offset, "a message store segment changed under the broker: the rest of it is skipped");
                    self.tail = Some(Cursor { no: cursor.no, offset: end });
                }
            }
        }
    }

    /// A copy of the record at `cursor` while it waits in the writer's buffer.
    fn buffered(&self, cursor: Cursor) -> Option<Bytes> {
        let w = self.writer.as_ref().filter(|w| w.no == cursor.no && cursor.offset >= w.flushed)?;
        let rest = w.buf.get(usize::try_from(cursor.offset - w.flushed).ok()?..)?;
        let len = rest.get(..4).map_or(0, |l| u32::from_le_bytes([l[0], l[1], l[2], l[3]]) as usize);
        Some(Bytes::copy_from_slice(&rest[..(record::RECORD_HEADER + len).min(rest.len())]))
    }

    /// The tail's count says there is more, the files do not: the rest is lost (logged once).
    fn lost_tail(&mut self, why: &str) -> Option<Loaded> {
        tracing::error!(dir = %self.dir.display(), level = self.level, lost = self.tail_count, "{why}: queued messages are lost");
        self.tail_count = 0;
        self.tail_bytes = 0;
        self.tail = None;
        None
    }

    /// The bytes from `cursor` on, enough for at least the record there (up to `end`).
    fn read(&mut self, shared: &Shared, cursor: Cursor, end: u64) -> io::Result<Bytes> {
        let avail = |c: &Chunk| c.start + c.data.len() as u64;
        if let Some(c) = &self.chunk
            && c.no == cursor.no
            && cursor.offset >= c.start
            && cursor.offset < avail(c)
        {
            let at = (cursor.offset - c.start) as usize;
            let rest = c.data.slice(at..);
            if let Decoded::Record(..) | Decoded::Invalid(_) = record::decode(&rest) {
                return Ok(rest);
            }
            // A record that runs past the chunk: read again from it.
        }
        let file = match &self.read_file {
            Some((no, f)) if *no == cursor.no => Arc::clone(f),
            _ => {
                let f = shared.storage.open(&self.segment_path(cursor.no), false)?;
                self.read_file = Some((cursor.no, Arc::clone(&f)));
                f
            }
        };
        let mut want = READ_CHUNK;
        loop {
            let n = want.min((end - cursor.offset) as usize);
            let mut buf = vec![0u8; n];
            let got = file.read_at(cursor.offset, &mut buf)?;
            buf.truncate(got);
            let data = Bytes::from(buf);
            match record::decode(&data) {
                Decoded::Incomplete(need) if need > got && got == n && n < (end - cursor.offset) as usize => {
                    want = need;
                }
                _ => {
                    self.chunk = Some(Chunk { no: cursor.no, start: cursor.offset, data: data.clone() });
                    return Ok(data);
                }
            }
        }
    }

    /// Drops every tail message, marking the ones a restart would read; returns how many.
    pub fn purge_tail(&mut self, shared: &Shared) -> io::Result<u64> {
        let mut n = 0;
        while let Some(loaded) = self.load(shared)? {
            self.mark(shared, loaded.record.seq, Mark::Gone, loaded.record.recover());
            n += 1;
        }
        Ok(n)
    }

    /// Closes the segment being written once it has grown past a quarter of the segment size and
    /// nothing in it is alive, or so little that compaction would take it (see
    /// [`Chain::compactable`]): it is then removed, or rewritten by the compaction that follows.
    /// Otherwise a queue drained after a burst keeps its last segment, up to the whole segment
    /// size, until the next message fills it; and under a disk alarm no message comes, so the
    /// space never returns (a consumer's few unacknowledged messages are enough to pin it). From
    /// the periodic sweep only: a queue whose consumers keep up empties its segment many times a
    /// second, and a new file (and a directory sync) each time would cost the publishers.
    fn retire_writer(&mut self, shared: &Shared) {
        let Some(w) = self.writer.as_ref() else { return };
        let Some(seg) = self.segments.back() else { return };
        let mostly_dead = seg.live == 0 || (seg.live == seg.resident.len() as u64 && seg.live * 4 <= seg.records);
        if seg.no != w.no
            || self.tail_count > 0
            || !w.buf.is_empty()
            || seg.end < shared.segment_size / 4
            || !mostly_dead
        {
            return;
        }
        let no = w.no;
        self.writer = None;
        self.reclaim_if_dead(shared, no);
    }

    /// Removes a segment once nothing in it is alive and it is not being written.
    pub fn reclaim_if_dead(&mut self, shared: &Shared, no: u64) {
        if self.writer.as_ref().is_some_and(|w| w.no == no) {
            return;
        }
        let Some(i) = self.segments.iter().position(|s| s.no == no) else { return };
        if self.segments[i].live > 0 {
            return;
        }
        self.segments.remove(i);
        if self.chunk.as_ref().is_some_and(|c| c.no == no) {
            self.chunk = None;
        }
        if self.read_file.as_ref().is_some_and(|(n, _)| *n == no) {
            self.read_file = None;
        }
        super::reclaim::remove_segment(shared, &self.segment_path(no), &self.marks_path(no));
    }

    /// Rewrites the segments worth it (see [`Chain::compactable`]) with only their live records.
    /// A failure is logged and leaves the segment as it was.
    pub fn compact(&mut self, shared: &Shared) {
        self.retire_writer(shared);
        if !(0..self.segments.len()).any(|i| self.compactable(i)) {
            return;
        }
        // Marks still buffered belong in the mark files about to be replaced: written first.
        if self.flush(shared).is_err() {
            return;
        }
        for i in 0..self.segments.len() {
            if !self.compactable(i) {
                continue;
            }
            if let Err(error) = self.compact_one(shared, i) {
                let seg = &mut self.segments[i];
                tracing::error!(%error, path = %self.dir.join(format!("{:03}.{:010}.seg", self.level, seg.no)).display(), "cannot compact a message store segment; it stays as it is");
                // Not tried again until as many more of its records are gone.
                seg.records = seg.live;
            }
        }
    }

    /// A segment is rewritten when at most a quarter of its records are alive (one message left
    /// unacknowledged, or acknowledged out of order, keeps a whole segment otherwise), it is not
    /// being written, and the tail has passed it: then its live records are exactly the resident
    /// ones, whose places are known, and no tail cursor points into it.
    fn compactable(&self, i: usize) -> bool {
        let seg = &self.segments[i];
        if self.writer.as_ref().is_some_and(|w| w.no == seg.no) {
            return false;
        }
        let behind_tail = match self.tail {
            Some(c) if self.tail_count > 0 => c.no > seg.no || (c.no == seg.no && c.offset >= seg.end),
            _ => true,
        };
        behind_tail && seg.live > 0 && seg.live == seg.resident.len() as u64 && seg.live * 4 <= seg.records
    }

    fn compact_one(&mut self, shared: &Shared, i: usize) -> io::Result<()> {
        let no = self.segments[i].no;
        let (path, marks) = (self.segment_path(no), self.marks_path(no));
        let seg = &self.segments[i];
        let (offsets, end) = super::reclaim::compact_segment(shared, &self.dir, &path, &marks, seg.end, &seg.resident)?;
        let seg = &mut self.segments[i];
        for (r, offset) in seg.resident.iter_mut().zip(offsets) {
            r.offset = offset;
        }
        seg.records = seg.live;
        seg.end = end;
        // Its mark file was replaced (or removed): reopened at the next mark. What recovery read
        // of it is only for records the tail has passed.
        seg.marks = None;
        seg.recovered = None;
        if self.chunk.as_ref().is_some_and(|c| c.no == no) {
            self.chunk = None;
        }
        if self.read_file.as_ref().is_some_and(|(n, _)| *n == no) {
            self.read_file = None;
        }
        Ok(())
    }

    /// Bytes on disk and buffered, for the management API and tests.
    pub fn disk_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.end).sum()
    }

    /// Adopts a segment found at recovery.
    pub(super) fn push_recovered(&mut self, seg: Segment) {
        self.next_no = self.next_no.max(seg.no + 1);
        self.segments.push_back(seg);
    }
}
