//! `${VAR}` and `${VAR:-default}` in topology strings.
//!
//! Substitution happens on every string of the file (names included) after
//! parsing, so a value from the environment is never re-parsed as YAML.
//! `$${` stands for a literal `${`: more precisely, a run of `$` signs
//! before `{` is halved, and an odd run's last `$` starts a variable. Runs
//! not followed by `{` are left alone, so regexes such as `^orders$` need no
//! escaping. [`escape`] is the inverse, used by the writer.

use std::collections::HashMap;

/// Where variables come from.
pub trait Env {
    /// The variable's value, `None` when unset.
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        // A value that is not UTF-8 cannot go into a topology; treating it as
        // unset reports it by name instead of garbling it.
        std::env::var(name).ok()
    }
}

impl Env for HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

/// Why a string could not be substituted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvError {
    /// `${NAME}` without a default, and `NAME` is not set.
    #[error("environment variable `{name}` is not set (write `${{{name}:-default}}` to give a default)")]
    Unset {
        /// The variable.
        name: String,
    },
    /// `${` without its closing `}`.
    #[error("`${{` without a closing `}}` (write `$${{` for a literal `${{`)")]
    Unterminated,
    /// `${...}` whose name is not a variable name.
    #[error("`${{{name}}}` is not a variable reference: names are letters, digits and `_`, not starting with a digit")]
    BadName {
        /// What stood between the braces.
        name: String,
    },
}

/// Replaces every `${VAR}` / `${VAR:-default}` in `text`.
pub fn substitute(text: &str, env: &dyn Env) -> Result<String, EnvError> {
    substitute_located(text, env).map_err(|(_, error)| error)
}

/// [`substitute`], with the byte offset in `text` of the `${` that failed,
/// so a message can point at the reference rather than the whole string.
pub fn substitute_located(text: &str, env: &dyn Env) -> Result<String, (usize, EnvError)> {
    if !text.contains('$') {
        return Ok(text.to_owned());
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('$') {
        out.push_str(&rest[..start]);
        let run = rest[start..].bytes().take_while(|b| *b == b'$').count();
        let after = &rest[start + run..];
        if !after.starts_with('{') {
            out.push_str(&rest[start..start + run]);
            rest = after;
            continue;
        }
        out.extend(std::iter::repeat_n('$', run / 2));
        if run % 2 == 0 {
            out.push('{');
            rest = &after[1..];
            continue;
        }
        // Where the reference's `${` starts: after the escaping `$` pairs.
        let offset = text.len() - after.len() - 1;
        let close = after.find('}').ok_or((offset, EnvError::Unterminated))?;
        let inner = &after[1..close];
        let (name, default) = match inner.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (inner, None),
        };
        if !is_variable_name(name) {
            return Err((offset, EnvError::BadName { name: inner.to_owned() }));
        }
        match (env.var(name), default) {
            // As in a shell, `:-` also covers a variable set to the empty string.
            (Some(value), Some(default)) if value.is_empty() => out.push_str(default),
            (Some(value), _) => out.push_str(&value),
            (None, Some(default)) => out.push_str(default),
            (None, None) => return Err((offset, EnvError::Unset { name: name.to_owned() })),
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The text that [`substitute`] turns back into `text`.
pub fn escape(text: &str) -> String {
    if !text.contains("${") {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len() + 4);
    let mut rest = text;
    while let Some(start) = rest.find('$') {
        out.push_str(&rest[..start]);
        let run = rest[start..].bytes().take_while(|b| *b == b'$').count();
        let dollars = &rest[start..start + run];
        out.push_str(dollars);
        if rest[start + run..].starts_with('{') {
            out.push_str(dollars);
        }
        rest = &rest[start + run..];
    }
    out.push_str(rest);
    out
}

fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> HashMap<String, String> {
        HashMap::from([("USER_PW".to_owned(), "s3cret".to_owned()), ("EMPTY".to_owned(), String::new())])
    }

    #[test]
    fn substitutes_set_variables_and_defaults() {
        let env = env();
        assert_eq!(substitute("pw=${USER_PW}!", &env), Ok("pw=s3cret!".to_owned()));
        assert_eq!(substitute("${NOPE:-fallback}", &env), Ok("fallback".to_owned()));
        assert_eq!(substitute("${EMPTY:-fallback}", &env), Ok("fallback".to_owned()));
        assert_eq!(substitute("${EMPTY}", &env), Ok(String::new()));
        assert_eq!(substitute("${NOPE:-}", &env), Ok(String::new()));
    }

    #[test]
    fn dollar_signs_outside_references_are_literal() {
        let env = env();
        assert_eq!(substitute("^orders$", &env), Ok("^orders$".to_owned()));
        assert_eq!(substitute("a$$b", &env), Ok("a$$b".to_owned()));
        assert_eq!(substitute("$${USER_PW}", &env), Ok("${USER_PW}".to_owned()));
        assert_eq!(substitute("$$${USER_PW}", &env), Ok("$s3cret".to_owned()));
    }

    #[test]
    fn a_failure_says_where_its_reference_starts() {
        let env = env();
        assert_eq!(substitute_located("a ${USER_PW} b ${NOPE}", &env).map_err(|(at, _)| at), Err(15));
        assert_eq!(substitute_located("$${X} ${", &env).map_err(|(at, _)| at), Err(6));
    }

    #[test]
    fn reports_unset_unterminated_and_malformed_references() {
        let env = env();
        assert_eq!(substitute("${NOPE}", &env), Err(EnvError::Unset { name: "NOPE".to_owned() }));
        assert_eq!(substitute("x${USER_PW", &env), Err(EnvError::Unterminated));
        assert_eq!(substitute("${1X}", &env), Err(EnvError::BadName { name: "1X".to_owned() }));
    }

    proptest::proptest! {
        #[test]
        fn escape_is_the_inverse_of_substitute(text in "[a-z${}.^:-]{0,24}") {
            let escaped = escape(&text);
            proptest::prop_assert_eq!(substitute(&escaped, &HashMap::new()), Ok(text));
        }
    }
}
