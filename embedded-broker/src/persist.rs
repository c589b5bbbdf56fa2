//! Durable definitions on disk: with a data directory, the broker keeps its
//! durable vhosts, users, permissions, exchanges, queues, bindings and policies
//! in `definitions.json`, in the same shape as `GET /api/definitions`, and loads
//! it at start through the same import path as `POST /api/definitions`.
//!
//! Each save writes a temporary file, syncs it and renames it over the old one,
//! so a crash leaves either the old or the new document, never half of one.
//! Messages live in the message store (`crate::store`, under `messages/`).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use warren_definitions::{Definitions, QueueDef};

use crate::definitions::export;
use crate::definitions::import::{self, ImportError};
use crate::state::State;

/// How often the saver looks for definition changes. Changes are batched per
/// tick, so a burst of declarations costs one write, not one per declaration.
const SAVE_INTERVAL: Duration = Duration::from_millis(200);

/// The file name inside the data directory.
pub const DEFINITIONS_FILE: &str = "definitions.json";

/// Why definitions could not be read from or written to the data directory.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    /// The data directory could not be created.
    #[error("cannot create the data directory {}", .path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The definitions file exists but could not be read.
    #[error("cannot read {}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The definitions file is not a definitions document.
    #[error("{} is not a definitions document (line {line}, column {column})", .path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// Line of the first problem.
        line: usize,
        /// Column of the first problem.
        column: usize,
        /// What is wrong.
        #[source]
        source: serde_json::Error,
    },
    /// The saved definitions do not import (a hand-edited or foreign file).
    #[error("cannot load {}", .path.display())]
    Import {
        /// The file.
        path: PathBuf,
        /// Why the import refused it.
        #[source]
        source: Box<ImportError>,
    },
    /// The new definitions could not be written.
    #[error("cannot write {}", .path.display())]
    Write {
        /// The file being written.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
}

/// The definitions file of one data directory.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// Uses `dir` (created if missing) for the definitions file.
    pub fn open(dir: &Path) -> Result<Store, PersistError> {
        fs::create_dir_all(dir).map_err(|source| PersistError::CreateDir { path: dir.to_owned(), source })?;
        Ok(Store { dir: dir.to_owned() })
    }

    /// The definitions file's path.
    pub fn path(&self) -> PathBuf {
        self.dir.join(DEFINITIONS_FILE)
    }

    /// The saved definitions, or `None` when nothing was saved yet.
    pub fn load(&self) -> Result<Option<Definitions>, PersistError> {
        let path = self.path();
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(PersistError::Read { path, source }),
        };
        serde_json::from_str(&text).map(Some).map_err(|source| PersistError::Parse {
            line: source.line(),
            column: source.column(),
            path,
            source,
        })
    }

    /// Replaces the saved definitions atomically (temporary file, sync, rename, sync the directory).
    pub fn save(&self, definitions: &Definitions) -> Result<(), PersistError> {
        let path = self.path();
        let temp = self.dir.join(format!("{DEFINITIONS_FILE}.tmp"));
        let write_err = |source| PersistError::Write { path: path.clone(), source };
        let text = serde_json::to_vec_pretty(definitions)
            .map_err(|e| write_err(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
        let mut file = fs::File::create(&temp).map_err(write_err)?;
        file.write_all(&text).map_err(write_err)?;
        file.sync_all().map_err(write_err)?;
        drop(file);
        fs::rename(&temp, &path).map_err(write_err)?;
        // The rename is durable only once the directory entry is on disk too.
        if let Ok(dir) = fs::File::open(&self.dir) {
            let _ = dir.sync_all();
        }
        Ok(())
    }
}

/// The state a broker with a data directory starts from: the saved definitions
/// when there are some (so a deleted `guest` stays deleted), otherwise a fresh
/// state with `/` and guest, as a new RabbitMQ node has.
pub fn initial_state(store: &Store, memory_limit: usize) -> Result<State, PersistError> {
    initial_state_with(store, memory_limit, None)
}

/// [`initial_state`] with a message store: durable queues recover their messages as they are
/// declared from the saved definitions. A queue directory no definition claims belongs to a
/// durable queue declared just before a crash (the definitions are saved a moment later): that
/// queue is declared again from the description in its directory, so the messages it confirmed
/// are not lost (its bindings are). Directories of other queues are removed.
pub fn initial_state_with(
    store: &Store,
    memory_limit: usize,
    messages: Option<(std::sync::Arc<crate::store::MessageStore>, u64)>,
) -> Result<State, PersistError> {
    let definitions = store.load()?;
    let state = if definitions.is_some() { State::empty(memory_limit) } else { State::new(memory_limit) };
    let message_store = messages.as_ref().map(|(m, _)| std::sync::Arc::clone(m));
    if let Some((messages, disk_free_limit)) = messages {
        state.attach_store(messages, disk_free_limit);
    }
    if let Some(definitions) = definitions {
        import::import(&state, &definitions, None)
            .map_err(|source| PersistError::Import { path: store.path(), source: Box::new(source) })?;
        tracing::info!(path = %store.path().display(), "loaded durable definitions");
    }
    if let Some(messages) = message_store {
        for orphan in messages.orphans() {
            let Some(def) = orphan.meta.as_deref().and_then(|m| serde_json::from_str::<QueueDef>(m).ok()) else {
                continue;
            };
            if !def.durable.unwrap_or(false) || def.vhost.as_deref().is_none_or(|v| state.vhost(v).is_none()) {
                continue;
            }
            let document = Definitions { queues: vec![def.clone()], ..Definitions::default() };
            match import::import(&state, &document, None) {
                Ok(_) => tracing::warn!(
                    vhost = def.vhost.as_deref().unwrap_or_default(),
                    queue = %def.name,
                    "declared again a durable queue that was created just before the broker stopped; its bindings are not restored"
                ),
                Err(error) => tracing::warn!(queue = %def.name, "cannot declare a queue found on disk again: {error}"),
            }
        }
        messages.remove_orphans();
    }
    Ok(state)
}

/// Saves the durable definitions now.
pub fn save_now(store: &Store, state: &State) -> Result<(), PersistError> {
    store.save(&export::definitions(state, export::Scope::Durable))
}

/// Starts the task that keeps the data directory in step with the state: it
/// saves whenever the definitions changed, and once more when `shutdown` is
/// cancelled, so a graceful stop never loses a change. The broker awaits the
/// handle during its shutdown.
pub fn spawn_saver(store: Store, state: State, shutdown: CancellationToken) -> JoinHandle<()> {
    tracing::info!(path = %store.path().display(), "durable definitions and persistent messages are kept in the data directory");
    tokio::spawn(async move {
        let mut saved = None;
        let mut ticker = tokio::time::interval(SAVE_INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let stopping = tokio::select! {
                _ = ticker.tick() => false,
                () = shutdown.cancelled() => true,
            };
            let generation = state.generation();
            if saved != Some(generation) {
                let (store, state) = (store.clone(), state.clone());
                match tokio::task::spawn_blocking(move || save_now(&store, &state)).await {
                    Ok(Ok(())) => saved = Some(generation),
                    Ok(Err(error)) => tracing::error!(error = %error, "cannot save durable definitions"),
                    Err(error) => tracing::error!(%error, "the definitions saver failed"),
                }
            }
            if stopping {
                break;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use warren_definitions::QueueDef;

    #[test]
    fn saved_definitions_load_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("nested")).expect("open");
        assert!(store.load().expect("load").is_none(), "nothing saved yet");
        let definitions = Definitions {
            queues: vec![QueueDef {
                name: "q1".into(),
                vhost: Some("/".into()),
                durable: Some(true),
                auto_delete: false,
                arguments: serde_json::Map::new(),
                kind: None,
            }],
            ..Definitions::default()
        };
        store.save(&definitions).expect("save");
        store.save(&definitions).expect("a second save replaces the first");
        let loaded = store.load().expect("load").expect("saved");
        assert_eq!(loaded.queues.len(), 1);
        assert_eq!(loaded.queues[0].name, "q1");
        assert!(!dir.path().join("nested").join("definitions.json.tmp").exists());
    }

    #[test]
    fn a_corrupt_file_is_an_error_naming_file_and_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        fs::write(store.path(), "{\n  \"queues\": [1,\n").expect("write");
        let err = store.load().expect_err("corrupt");
        let text = err.to_string();
        assert!(text.contains("definitions.json") && text.contains("line 2"), "{text}");
    }
}
