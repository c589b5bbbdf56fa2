//! Giving disk space back: a segment goes as soon as none of its messages is alive (acknowledged,
//! dropped or expired), a deleted queue's directory at once, and directories of queues that no
//! longer exist at start.

use std::path::Path;

use super::Shared;

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
