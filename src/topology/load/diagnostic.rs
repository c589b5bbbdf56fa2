//! What went wrong in a topology file, and where.
//!
//! A [`Diagnostic`] is one problem at one place (`file:line:column`); a
//! [`LoadError`] carries every problem found in one file, so a user fixes
//! them all in one round instead of one per run.

use std::fmt;
use std::path::PathBuf;

/// A position in a source file, both 1-based as editors count them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pos {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub column: usize,
}

/// One problem in a topology file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file as the user named it (or a description such as `<inline>`).
    pub file: String,
    /// Where in the file, when known.
    pub pos: Option<Pos>,
    /// What is wrong, naming the entity; never contains a password or hash.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.pos {
            Some(Pos { line, column }) => write!(f, "{}:{line}:{column}: {}", self.file, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// Why a topology file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read at all.
    #[error("cannot read topology file {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file was read but is not a valid topology.
    #[error("{}", render(diagnostics))]
    Invalid {
        /// Every problem found, in file order.
        diagnostics: Vec<Diagnostic>,
    },
}

impl LoadError {
    /// The problems found, one per entry; empty when the file could not be read.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            LoadError::Read { .. } => &[],
            LoadError::Invalid { diagnostics } => diagnostics,
        }
    }
}

/// One problem per line. The lines after the first carry their own
/// `error: ` prefix because the caller prints the first one after `error: `,
/// so every line reads alike, as a compiler's output does.
fn render(diagnostics: &[Diagnostic]) -> String {
    let mut out = String::new();
    for (i, diagnostic) in diagnostics.iter().enumerate() {
        if i > 0 {
            out.push_str("\nerror: ");
        }
        out.push_str(&diagnostic.to_string());
    }
    if diagnostics.len() > 1 {
        out.push_str(&format!("\n{} problems found", diagnostics.len()));
    }
    out
}

/// Collects diagnostics for one file.
#[derive(Debug, Clone)]
pub struct Diagnostics {
    file: String,
    found: Vec<Diagnostic>,
    seen: std::collections::HashSet<(Option<Pos>, String)>,
}

impl Diagnostics {
    /// An empty collection for `file`.
    pub fn new(file: impl Into<String>) -> Diagnostics {
        Diagnostics { file: file.into(), found: Vec::new(), seen: Default::default() }
    }

    /// The file name diagnostics are reported against.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// Records a problem.
    pub fn push(&mut self, pos: Option<Pos>, message: impl Into<String>) {
        let message = message.into();
        // The same problem can be reached twice (e.g. a name checked as key
        // and as reference); say it once.
        if self.seen.insert((pos, message.clone())) {
            self.found.push(Diagnostic { file: self.file.clone(), pos, message });
        }
    }

    /// True when nothing has been recorded.
    pub fn is_empty(&self) -> bool {
        self.found.is_empty()
    }

    /// `Ok(value)` when nothing was recorded, else every problem in file order.
    pub fn finish<T>(self, value: T) -> Result<T, LoadError> {
        if self.found.is_empty() { Ok(value) } else { Err(self.into_error()) }
    }

    /// Every problem recorded, in file order (those without a position last).
    pub fn into_error(mut self) -> LoadError {
        self.found.sort_by_key(|d| (d.pos.is_none(), d.pos));
        LoadError::Invalid { diagnostics: self.found }
    }
}

/// The candidate closest to `word`, when it is close enough to be the
/// likely intent (a typo, not a different word).
pub fn suggest<'a, I>(word: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .filter(|candidate| *candidate != word)
        .map(|candidate| (strsim::damerau_levenshtein(word, candidate), candidate))
        .filter(|(distance, candidate)| {
            *distance <= limit || candidate.eq_ignore_ascii_case(word) || strsim::jaro_winkler(word, candidate) > 0.9
        })
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// ` (did you mean `x`?)`, or nothing when no candidate is close.
pub fn did_you_mean<'a, I>(word: &str, candidates: I) -> String
where
    I: IntoIterator<Item = &'a str>,
{
    match suggest(word, candidates) {
        Some(candidate) => format!(" (did you mean `{candidate}`?)"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_a_typo_but_not_an_unrelated_word() {
        let fields = ["durable", "auto_delete", "arguments", "state"];
        assert_eq!(suggest("durabel", fields), Some("durable"));
        assert_eq!(suggest("autodelete", fields), Some("auto_delete"));
        assert_eq!(suggest("colour", fields), None);
    }

    #[test]
    fn several_problems_render_one_per_line_in_file_order() {
        let mut diagnostics = Diagnostics::new("t.yaml");
        diagnostics.push(Some(Pos { line: 9, column: 3 }), "second");
        diagnostics.push(Some(Pos { line: 2, column: 5 }), "first");
        let text = diagnostics.into_error().to_string();
        assert_eq!(text, "t.yaml:2:5: first\nerror: t.yaml:9:3: second\n2 problems found");
    }
}
