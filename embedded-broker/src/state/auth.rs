//! Users, password hashes as RabbitMQ stores them, and permissions.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore as _;
use sha2::{Digest, Sha256, Sha512};

/// RabbitMQ's name for its default hashing module.
pub const SHA256: &str = "rabbit_password_hashing_sha256";
/// RabbitMQ's name for its SHA-512 hashing module.
pub const SHA512: &str = "rabbit_password_hashing_sha512";

/// A user account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Login name.
    pub name: String,
    /// base64(4-byte salt ++ digest(salt ++ password)), or empty for a user without a password.
    pub password_hash: String,
    /// [`SHA256`] or [`SHA512`].
    pub hashing_algorithm: String,
    /// Tags such as `administrator`, `management`, `monitoring`.
    pub tags: Vec<String>,
}

impl User {
    /// Whether `password` matches the stored hash. A user with an empty hash cannot log in with a
    /// password, as in RabbitMQ.
    pub fn check_password(&self, password: &[u8]) -> bool {
        let Ok(raw) = STANDARD.decode(self.password_hash.as_bytes()) else { return false };
        if raw.len() < 5 {
            return false;
        }
        let (salt, digest) = raw.split_at(4);
        let computed = digest_with(&self.hashing_algorithm, salt, password);
        // Length check first so a truncated hash never matches a prefix.
        computed.len() == digest.len() && computed.iter().zip(digest).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }

    /// Whether the user carries `tag`.
    pub fn has_tag(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t == tag)
    }
}

fn digest_with(algorithm: &str, salt: &[u8], password: &[u8]) -> Vec<u8> {
    if algorithm == SHA512 {
        let mut h = Sha512::new();
        h.update(salt);
        h.update(password);
        h.finalize().to_vec()
    } else {
        let mut h = Sha256::new();
        h.update(salt);
        h.update(password);
        h.finalize().to_vec()
    }
}

/// Hashes `password` with a fresh random salt the way RabbitMQ's SHA-256 module does.
pub fn hash_password(password: &str) -> String {
    let mut salt = [0u8; 4];
    rand::rng().fill_bytes(&mut salt);
    hash_password_with_salt(salt, password)
}

/// Hashes with a given salt; public so callers can compare against a known hash in tests.
pub fn hash_password_with_salt(salt: [u8; 4], password: &str) -> String {
    let mut raw = salt.to_vec();
    raw.extend(digest_with(SHA256, &salt, password.as_bytes()));
    STANDARD.encode(raw)
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
    fn hash_matches_rabbitmq_documented_example() {
        // From RabbitMQ's "Credentials and Passwords" guide: salt 908D C60A, password "test12".
        let hash = hash_password_with_salt([0x90, 0x8D, 0xC6, 0x0A], "test12");
        assert_eq!(hash, "kI3GCqW5JLMJa4iX1lo7X4D6XbYqlLgxIs30+P6tENUV2POR");
    }

    #[test]
    fn check_password_accepts_the_right_one_only() {
        let user = User {
            name: "u".into(),
            password_hash: hash_password("secret"),
            hashing_algorithm: SHA256.into(),
            tags: vec![],
        };
        assert!(user.check_password(b"secret"));
        assert!(!user.check_password(b"Secret"));
        let empty = User { password_hash: String::new(), ..user };
        assert!(!empty.check_password(b""));
    }
}
