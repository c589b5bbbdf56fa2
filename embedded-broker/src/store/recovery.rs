//! Reading a durable queue's directory back at start: each level's segments in order, each record
//! checked against its checksum, the mark files telling which are gone and which were delivered.
//! Nothing per message stays in memory: the queue's tail simply starts at the first segment.
//!
//! A record that does not check out at the end of a level's last segment is a write the crash
//! interrupted (never confirmed): it is cut off. Anywhere else it is damage: logged with the file
//! and offset, the rest of that segment skipped, and the broker starts anyway.

use std::io;
use std::path::Path;

use bytes::Bytes;

use super::record::{self, Decoded, Mark, SEGMENT_MAGIC};
use super::segment::{Chain, RecoveredMarks, Segment};
use super::{Shared, StoreError};

/// Bytes read at a time while scanning.
const SCAN_CHUNK: usize = 1 << 20;

/// What a scan found in one segment.
#[derive(Debug, Default)]
struct Scan {
    first_seq: Option<u64>,
    max_seq: Option<u64>,
    live: u64,
    /// Good records, live or not.
    records: u64,
    bytes: u64,
    /// Length of the good records.
    end: u64,
    /// Why the scan stopped early, and where.
    stopped: Option<(u64, &'static str)>,
}

/// Segment numbers per level found in a queue directory. What a compaction interrupted by a crash
/// left (a file not yet renamed into place) is removed, and so is a mark file whose segment is
/// gone (removed just before a crash), so that a new segment of that number never inherits it.
fn segments_by_level(shared: &Shared, dir: &Path, levels: usize) -> Result<Vec<Vec<u64>>, StoreError> {
    let names = shared.storage.list(dir).map_err(|source| StoreError::Io { path: dir.to_owned(), source })?;
    let mut found = vec![Vec::new(); levels];
    for name in &names {
        let orphan_marks =
            name.strip_suffix(".marks").is_some_and(|stem| !names.iter().any(|n| n.strip_suffix(".seg") == Some(stem)));
        if name.ends_with(super::reclaim::NEW_SUFFIX) || orphan_marks {
            let path = dir.join(name);
            tracing::info!(path = %path.display(), "removing what an interrupted compaction or removal left");
            shared.storage.remove_file(&path).map_err(|source| StoreError::Io { path, source })?;
        }
    }
    for name in names {
        let Some(stem) = name.strip_suffix(".seg") else { continue };
        let Some((level, no)) = stem.split_once('.') else { continue };
        let (Ok(level), Ok(no)) = (level.parse::<usize>(), no.parse::<u64>()) else { continue };
        if level < levels {
            found[level].push(no);
        }
    }
    for nos in &mut found {
        nos.sort_unstable();
    }
    Ok(found)
}

/// Recovers every level of a queue directory; returns the chains and the next sequence number.
pub(super) fn recover_dir(shared: &Shared, dir: &Path, levels: usize) -> Result<(Vec<Chain>, u64), StoreError> {
    let mut chains: Vec<Chain> = (0..levels).map(|l| Chain::new(dir.to_owned(), l as u8)).collect();
    let mut next_seq = 0;
    for (level, nos) in segments_by_level(shared, dir, levels)?.into_iter().enumerate() {
        let chain = &mut chains[level];
        let (mut count, mut bytes) = (0, 0);
        let last = nos.last().copied();
        for no in nos {
            chain.next_no = chain.next_no.max(no + 1);
            let path = chain.segment_path(no);
            let marks_path = chain.marks_path(no);
            let marks = read_marks(shared, &marks_path)?;
            let scan = scan_segment(shared, &path, &marks.gone)?;
            if let Some(max) = scan.max_seq {
                next_seq = u64::max(next_seq, max + 1);
            }
            if let Some((offset, why)) = scan.stopped {
                if Some(no) == last {
                    tracing::warn!(path = %path.display(), offset, "{why} at the end of a segment: an interrupted write, cut off");
                    let file = shared
                        .storage
                        .open(&path, false)
                        .map_err(|source| StoreError::Io { path: path.clone(), source })?;
                    file.truncate(scan.end).map_err(|source| StoreError::Io { path: path.clone(), source })?;
                } else {
                    tracing::error!(path = %path.display(), offset, "{why} inside a segment: the file is damaged; the messages after that point are skipped");
                }
            }
            if scan.live == 0 {
                // A damaged file stays for inspection (it is reported at every start).
                if scan.stopped.is_none() || Some(no) == last {
                    super::reclaim::remove_segment(shared, &path, &marks_path);
                }
                continue;
            }
            count += scan.live;
            bytes += scan.bytes;
            let delivered = marks.delivered.into_iter().filter(|s| marks.gone.binary_search(s).is_err()).collect();
            chain.push_recovered(Segment {
                no,
                first_seq: scan.first_seq.unwrap_or(u64::MAX),
                live: scan.live,
                records: scan.records,
                resident: std::collections::VecDeque::new(),
                end: scan.end,
                marks: None,
                recovered: Some(Box::new(RecoveredMarks { gone: marks.gone, delivered })),
            });
        }
        chain.set_recovered_tail(count, bytes);
    }
    Ok((chains, next_seq))
}

/// A mark file's entries, sorted; a torn or damaged end is cut off.
pub(super) fn read_marks(shared: &Shared, path: &Path) -> Result<RecoveredMarks, StoreError> {
    let io_err = |source: io::Error| StoreError::Io { path: path.to_path_buf(), source };
    let mut marks = RecoveredMarks::default();
    if !shared.storage.exists(path) {
        return Ok(marks);
    }
    let file = shared.storage.open(path, false).map_err(io_err)?;
    let len = file.len().map_err(io_err)? as usize;
    let mut data = vec![0u8; len];
    let got = file.read_at(0, &mut data).map_err(io_err)?;
    data.truncate(got);
    let mut good = 0;
    for entry in data.chunks(record::MARK_LEN) {
        let Some((seq, mark)) = record::decode_mark(entry) else { break };
        match mark {
            Mark::Gone => marks.gone.push(seq),
            Mark::Delivered => marks.delivered.push(seq),
        }
        good += record::MARK_LEN;
    }
    if good < data.len() {
        tracing::warn!(path = %path.display(), offset = good, "an incomplete mark at the end of a mark file, cut off");
        file.truncate(good as u64).map_err(io_err)?;
    }
    marks.gone.sort_unstable();
    marks.gone.dedup();
    marks.delivered.sort_unstable();
    marks.delivered.dedup();
    Ok(marks)
}

fn scan_segment(shared: &Shared, path: &Path, gone: &[u64]) -> Result<Scan, StoreError> {
    let io_err = |source: io::Error| StoreError::Io { path: path.to_path_buf(), source };
    let file = shared.storage.open(path, false).map_err(io_err)?;
    let len = file.len().map_err(io_err)?;
    let mut scan = Scan::default();
    let mut magic = [0u8; 8];
    let got = file.read_at(0, &mut magic).map_err(io_err)?;
    if got < magic.len() || &magic != SEGMENT_MAGIC {
        scan.stopped = Some((0, "not a segment header"));
        return Ok(scan);
    }
    let mut offset = SEGMENT_MAGIC.len() as u64;
    let mut buf = Bytes::new();
    let mut buf_start = offset;
    while offset < len {
        let rest = buf.slice(((offset - buf_start) as usize).min(buf.len())..);
        match record::decode(&rest) {
            Decoded::Record(r, used) => {
                scan.first_seq.get_or_insert(r.seq);
                scan.max_seq = Some(r.seq);
                scan.records += 1;
                if r.recover() && gone.binary_search(&r.seq).is_err() {
                    scan.live += 1;
                    scan.bytes += r.body.len() as u64;
                }
                offset += used as u64;
            }
            Decoded::Incomplete(need) => {
                if offset + need as u64 > len {
                    scan.stopped = Some((offset, "an incomplete record"));
                    break;
                }
                if rest.len() >= need {
                    scan.stopped = Some((offset, "an unreadable record"));
                    break;
                }
                let n = SCAN_CHUNK.max(need).min((len - offset) as usize);
                let mut data = vec![0u8; n];
                let got = file.read_at(offset, &mut data).map_err(io_err)?;
                data.truncate(got);
                if got < need {
                    scan.stopped = Some((offset, "an incomplete record"));
                    break;
                }
                buf = Bytes::from(data);
                buf_start = offset;
            }
            Decoded::Invalid(why) => {
                scan.stopped = Some((offset, why));
                break;
            }
        }
    }
    scan.end = offset.min(len);
    if scan.stopped.is_none() {
        scan.end = len;
    }
    Ok(scan)
}
