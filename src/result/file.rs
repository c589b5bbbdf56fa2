//! Reading and writing result files (`bench --out`, baselines, shards).

use std::path::Path;

use super::RunResult;

/// Why a result file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ResultFileError {
    /// The file could not be read.
    #[error("cannot read the result file {path}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The result could not be encoded (a non-finite number, say).
    #[error("cannot encode the result")]
    Encode {
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// The file could not be written.
    #[error("cannot write the result file {path}")]
    Write {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Not a result file.
    #[error("{path}:{line}:{column}: not a warren result file: {message}")]
    Parse {
        /// The file.
        path: String,
        /// Line, from 1.
        line: usize,
        /// Column, from 1.
        column: usize,
        /// What serde said, without its own location.
        message: String,
    },
}

/// Reads a result file (`bench --out`).
pub fn load(path: &Path) -> Result<RunResult, ResultFileError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| ResultFileError::Read { path: path.display().to_string(), source })?;
    serde_json::from_str(&text).map_err(|error| {
        let full = error.to_string();
        let message = full.split(" at line ").next().unwrap_or(&full).to_owned();
        ResultFileError::Parse { path: path.display().to_string(), line: error.line(), column: error.column(), message }
    })
}

/// Writes `result` to `path` as the pretty-printed JSON document `load` reads.
pub fn write(path: &Path, result: &RunResult) -> Result<(), ResultFileError> {
    let json = serde_json::to_string_pretty(result).map_err(|source| ResultFileError::Encode { source })?;
    std::fs::write(path, json + "\n")
        .map_err(|source| ResultFileError::Write { path: path.display().to_string(), source })
}
