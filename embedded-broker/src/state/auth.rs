//! Users (their password hashes are `warren_definitions::password`'s) and permissions.

use warren_definitions::password::{self, HashingAlgorithm};

/// A user account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Login name.
    pub name: String,
    /// base64(4-byte salt ++ digest(salt ++ password)), or empty for a user without a password.
    pub password_hash: String,
    /// How the hash was computed.
    pub hashing_algorithm: HashingAlgorithm,
    /// Tags such as `administrator`, `management`, `monitoring`.
    pub tags: Vec<String>,
}

impl User {
    /// Whether `password` matches the stored hash. A user with an empty hash cannot log in with a
    /// password, as in RabbitMQ.
    pub fn check_password(&self, password: &[u8]) -> bool {
        password::verify(password, &self.password_hash, self.hashing_algorithm)
    }

    /// Whether the user carries `tag`.
    pub fn has_tag(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t == tag)
    }
}

/// The configure/write/read regular expressions of one user in one vhost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permission {
    /// The user.
    pub user: String,
    /// The virtual host.
    pub vhost: String,
    /// Pattern of names the user may declare and delete.
    pub configure: String,
    /// Pattern of names the user may publish to or bind to.
    pub write: String,
    /// Pattern of names the user may consume from or bind from.
    pub read: String,
}

/// A topic permission: which routing keys a user may publish/consume on one topic exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicPermission {
    /// The user.
    pub user: String,
    /// The virtual host.
    pub vhost: String,
    /// The topic exchange the patterns apply to.
    pub exchange: String,
    /// Pattern of routing keys the user may publish with.
    pub write: String,
    /// Pattern of routing keys the user may bind with.
    pub read: String,
}

/// Compiles a permission pattern as RabbitMQ's PCRE reads it: a `{` that does not open a
/// quantifier (`{2}`, `{2,}`, `{2,5}`) is a literal there, as in the `{username}` and `{vhost}`
/// placeholders of topic permissions, while the `regex` crate refuses it; such braces are escaped.
pub fn compile_pattern(pattern: &str) -> Result<regex::Regex, regex::Error> {
    if !pattern.contains('{') {
        return regex::Regex::new(pattern);
    }
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut chars = pattern.char_indices().peekable();
    let mut in_class = false;
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                out.push(c);
                if let Some((_, next)) = chars.next() {
                    out.push(next);
                }
            }
            '[' if !in_class => {
                in_class = true;
                out.push(c);
                // A `]` right after `[` or `[^` is a literal member of the class.
                if let Some(&(_, '^')) = chars.peek() {
                    out.push('^');
                    chars.next();
                }
                if let Some(&(_, ']')) = chars.peek() {
                    out.push(']');
                    chars.next();
                }
            }
            ']' if in_class => {
                in_class = false;
                out.push(c);
            }
            '{' if !in_class && !opens_quantifier(&pattern[i + 1..]) => out.push_str("\\{"),
            _ => out.push(c),
        }
    }
    regex::Regex::new(&out)
}

/// Whether `rest` (what follows a `{`) is `n}`, `n,}` or `n,m}`.
fn opens_quantifier(rest: &str) -> bool {
    let Some((inside, _)) = rest.split_once('}') else { return false };
    let (min, max) = inside.split_once(',').unwrap_or((inside, "0"));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    !min.is_empty() && digits(min) && digits(max)
}

/// A user's topic permission on one exchange, compiled for matching routing keys: what
/// [`crate::state::State::topic_rules`] returns and a connection caches. A pattern that does not compile
/// (after `{username}`/`{vhost}` expansion) is `None` and allows nothing.
#[derive(Debug, Clone)]
pub struct TopicRule {
    /// The exchange the permission is for.
    pub exchange: String,
    /// Checked against the routing key of a publish.
    pub write: Option<regex::Regex>,
    /// Checked against the routing key of a binding whose source is the exchange.
    pub read: Option<regex::Regex>,
}

impl TopicRule {
    /// Whether `routing_key` is allowed for `access` (write: publish; read: bind and unbind).
    /// Topic permissions have no configure pattern: it allows nothing.
    pub fn allows(&self, access: Access, routing_key: &str) -> bool {
        let pattern = match access {
            Access::Write => &self.write,
            Access::Read => &self.read,
            Access::Configure => return false,
        };
        pattern.as_ref().is_some_and(|re| re.is_match(routing_key))
    }
}

/// Which of the three permission kinds an operation needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Declare or delete.
    Configure,
    /// Publish, or be the destination of a binding.
    Write,
    /// Consume, get, purge, or be the source of a binding.
    Read,
}

impl Access {
    /// The word RabbitMQ uses in its refusal texts.
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Configure => "configure",
            Access::Write => "write",
            Access::Read => "read",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn braces_that_open_no_quantifier_are_literal_as_in_pcre() {
        let re = compile_pattern(r"^{username}\.a{2}b{1,}c{1,2}$").expect("compiles");
        assert!(re.is_match("{username}.aabcc"));
        assert!(!re.is_match("{username}.abc"));
        assert!(compile_pattern("^x{,3}$").expect("literal").is_match("x{,3}"));
        assert!(compile_pattern("[{]v}").expect("class").is_match("{v}"));
        assert!(compile_pattern(r"\{a}").expect("escaped").is_match("{a}"));
        assert!(compile_pattern("(").is_err());
    }

    #[test]
    fn check_password_accepts_the_right_one_only() {
        let user = User {
            name: "u".into(),
            password_hash: password::hash("secret", HashingAlgorithm::Sha256),
            hashing_algorithm: HashingAlgorithm::Sha256,
            tags: vec![],
        };
        assert!(user.check_password(b"secret"));
        assert!(!user.check_password(b"Secret"));
        let empty = User { password_hash: String::new(), ..user };
        assert!(!empty.check_password(b""));
    }
}
