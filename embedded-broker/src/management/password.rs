//! Creating password hashes as RabbitMQ stores them: base64(4-byte salt ++
//! H(salt ++ password)) with H = SHA-256 or SHA-512, so a definitions export
//! from either broker imports into the other. Checking a password against a
//! hash is [`crate::state::auth::User::check_password`].

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use sha2::{Digest, Sha256, Sha512};

/// How a stored password hash was computed; the names are RabbitMQ's module names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HashingAlgorithm {
    /// `rabbit_password_hashing_sha256`, RabbitMQ's default.
    #[default]
    Sha256,
    /// `rabbit_password_hashing_sha512`.
    Sha512,
}

/// A `hashing_algorithm` value the broker does not implement.
#[derive(Debug, thiserror::Error)]
#[error("unknown hashing algorithm '{0}'")]
pub struct UnknownAlgorithm(pub String);

impl HashingAlgorithm {
    /// RabbitMQ's name, as it appears in `hashing_algorithm`.
    pub fn name(self) -> &'static str {
        match self {
            HashingAlgorithm::Sha256 => "rabbit_password_hashing_sha256",
            HashingAlgorithm::Sha512 => "rabbit_password_hashing_sha512",
        }
    }

    /// Parses RabbitMQ's name; the short forms `sha256`/`sha512` are accepted too.
    pub fn from_name(name: &str) -> Result<HashingAlgorithm, UnknownAlgorithm> {
        match name {
            "rabbit_password_hashing_sha256" | "sha256" | "SHA256" => Ok(HashingAlgorithm::Sha256),
            "rabbit_password_hashing_sha512" | "sha512" | "SHA512" => Ok(HashingAlgorithm::Sha512),
            other => Err(UnknownAlgorithm(other.to_owned())),
        }
    }

    fn digest(self, salt: &[u8], password: &[u8]) -> Vec<u8> {
        match self {
            HashingAlgorithm::Sha256 => Sha256::new().chain_update(salt).chain_update(password).finalize().to_vec(),
            HashingAlgorithm::Sha512 => Sha512::new().chain_update(salt).chain_update(password).finalize().to_vec(),
        }
    }

    fn digest_len(self) -> usize {
        match self {
            HashingAlgorithm::Sha256 => 32,
            HashingAlgorithm::Sha512 => 64,
        }
    }
}

/// The algorithm of a hash: the declared one, or, when none is declared, the one whose digest
/// length the hash has (a SHA-512 hash sent without its algorithm, as `rabbitmq_http_client`'s
/// `UserParams` sends every hash, still logs in), defaulting to SHA-256 like RabbitMQ.
pub fn resolve(declared: Option<&str>, hash: &str) -> Result<HashingAlgorithm, UnknownAlgorithm> {
    if let Some(name) = declared {
        return HashingAlgorithm::from_name(name);
    }
    let sha512_length =
        STANDARD.decode(hash).is_ok_and(|bytes| bytes.len() == 4 + HashingAlgorithm::Sha512.digest_len());
    Ok(if sha512_length { HashingAlgorithm::Sha512 } else { HashingAlgorithm::Sha256 })
}

/// Hashes `password` with a fresh random salt; returns the base64 text RabbitMQ stores.
pub fn hash_password(password: &str, algorithm: HashingAlgorithm) -> String {
    let mut salt = [0u8; 4];
    rand::rng().fill_bytes(&mut salt);
    hash_with_salt(&salt, password, algorithm)
}

/// Hashes `password` with the given salt; returns base64(salt ++ digest).
pub fn hash_with_salt(salt: &[u8; 4], password: &str, algorithm: HashingAlgorithm) -> String {
    let mut bytes = salt.to_vec();
    bytes.extend(algorithm.digest(salt, password.as_bytes()));
    STANDARD.encode(bytes)
}

/// Checks that `stored` is usable as a hash of `algorithm`: base64 of a salt and a digest of the right length.
pub fn check_hash(stored: &str, algorithm: HashingAlgorithm) -> Result<(), String> {
    if stored.is_empty() {
        return Ok(());
    }
    let bytes = STANDARD.decode(stored).map_err(|_| "not_base64".to_owned())?;
    if bytes.len() != 4 + algorithm.digest_len() {
        return Err(format!(
            "a {} hash is {} bytes (4 salt + {} digest), this one is {}",
            algorithm.name(),
            4 + algorithm.digest_len(),
            algorithm.digest_len(),
            bytes.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::auth::User;

    /// A hash RabbitMQ 3.10 computed for the password `pw` (`PUT /api/users/…` with `"password":"pw"`).
    const RABBITMQ_SHA256_OF_PW: &str = "pn9nFSNvKQYLF7z2KSlEBPdL99NFW3al8M5FzMxVRwxYp1Ff";

    fn user(hash: &str, algorithm: HashingAlgorithm) -> User {
        User { name: "u".into(), password_hash: hash.into(), hashing_algorithm: algorithm.name().into(), tags: vec![] }
    }

    #[test]
    fn the_same_salt_gives_rabbitmqs_hash() {
        let bytes = STANDARD.decode(RABBITMQ_SHA256_OF_PW).expect("base64");
        let salt: [u8; 4] = bytes[..4].try_into().expect("4 bytes");
        assert_eq!(hash_with_salt(&salt, "pw", HashingAlgorithm::Sha256), RABBITMQ_SHA256_OF_PW);
        assert!(user(RABBITMQ_SHA256_OF_PW, HashingAlgorithm::Sha256).check_password(b"pw"));
    }

    #[test]
    fn fresh_hashes_of_both_algorithms_verify_and_differ_by_salt() {
        for algorithm in [HashingAlgorithm::Sha256, HashingAlgorithm::Sha512] {
            let a = hash_password("s3cret", algorithm);
            let b = hash_password("s3cret", algorithm);
            assert_ne!(a, b, "a fresh salt each time");
            assert!(user(&a, algorithm).check_password(b"s3cret"));
            assert!(!user(&a, algorithm).check_password(b"s3cret "));
            assert!(check_hash(&a, algorithm).is_ok());
        }
    }

    #[test]
    fn an_undeclared_algorithm_follows_the_hash_length() {
        let sha512 = hash_password("pw", HashingAlgorithm::Sha512);
        let sha256 = hash_password("pw", HashingAlgorithm::Sha256);
        assert_eq!(resolve(None, &sha512).ok(), Some(HashingAlgorithm::Sha512));
        assert_eq!(resolve(None, &sha256).ok(), Some(HashingAlgorithm::Sha256));
        assert_eq!(resolve(None, "").ok(), Some(HashingAlgorithm::Sha256));
        assert_eq!(resolve(Some("rabbit_password_hashing_sha256"), &sha512).ok(), Some(HashingAlgorithm::Sha256));
    }

    #[test]
    fn malformed_hashes_are_refused() {
        assert_eq!(check_hash("abc", HashingAlgorithm::Sha256), Err("not_base64".to_owned()));
        let short = STANDARD.encode([0u8; 20]);
        assert!(check_hash(&short, HashingAlgorithm::Sha256).is_err());
        assert!(check_hash("", HashingAlgorithm::Sha512).is_ok(), "no password at all is allowed");
        assert!(HashingAlgorithm::from_name("rabbit_password_hashing_md5").is_err());
    }
}
