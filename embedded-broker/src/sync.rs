//! Locking shared by the broker's state and its message store, which sit side by side.

use std::sync::{Mutex, MutexGuard};

/// Locks a mutex, carrying on after a panic elsewhere: every critical section leaves the data
/// consistent before anything that could panic.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
