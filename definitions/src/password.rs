//! RabbitMQ's password hashes: base64(4-byte salt ++ H(salt ++ password))
//! with H = SHA-256 or SHA-512, so a hash made by either broker, or by
//! warren for an import, logs in on the other.
//!
//! Verifying a clear-text password against a stored hash lets `warren apply`
//! leave an unchanged password alone (no new salt, no reset) and lets the
//! broker log users in, without ever storing or printing the password.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256, Sha512};

/// Bytes of salt in front of the digest.
pub const SALT_LEN: usize = 4;

/// How a stored hash was computed; the names are RabbitMQ's module names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HashingAlgorithm {
    /// `rabbit_password_hashing_sha256`, RabbitMQ's default.
    #[default]
    Sha256,
    /// `rabbit_password_hashing_sha512`.
    Sha512,
}

impl HashingAlgorithm {
    /// RabbitMQ's name, as `hashing_algorithm` gives it.
    pub fn as_str(self) -> &'static str {
        match self {
            HashingAlgorithm::Sha256 => "rabbit_password_hashing_sha256",
            HashingAlgorithm::Sha512 => "rabbit_password_hashing_sha512",
        }
    }

    /// Parses RabbitMQ's name, or the short forms `sha256`/`sha512` (either case).
    pub fn parse(name: &str) -> Option<HashingAlgorithm> {
        match name {
            "rabbit_password_hashing_sha256" | "sha256" | "SHA256" => Some(HashingAlgorithm::Sha256),
            "rabbit_password_hashing_sha512" | "sha512" | "SHA512" => Some(HashingAlgorithm::Sha512),
            _ => None,
        }
    }

    /// Bytes of the digest.
    pub fn digest_len(self) -> usize {
        match self {
            HashingAlgorithm::Sha256 => 32,
            HashingAlgorithm::Sha512 => 64,
        }
    }

    /// Bytes of a whole decoded hash: salt and digest.
    pub fn hash_len(self) -> usize {
        SALT_LEN + self.digest_len()
    }

    fn digest(self, salt: &[u8], password: &[u8]) -> Vec<u8> {
        match self {
            HashingAlgorithm::Sha256 => Sha256::new().chain_update(salt).chain_update(password).finalize().to_vec(),
            HashingAlgorithm::Sha512 => Sha512::new().chain_update(salt).chain_update(password).finalize().to_vec(),
        }
    }
}

/// A `hashing_algorithm` that is not one RabbitMQ ships for stored hashes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown hashing algorithm '{0}'")]
pub struct UnknownAlgorithm(pub String);

/// A stored hash that no password can match.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashError {
    /// Not base64 (RabbitMQ's word for it).
    #[error("not_base64")]
    NotBase64,
    /// Base64 of the wrong length for its algorithm.
    #[error(
        "a {} hash is {} bytes (4 salt + {} digest), this one is {len}",
        algorithm.as_str(),
        algorithm.hash_len(),
        algorithm.digest_len()
    )]
    Length {
        /// The algorithm the hash was checked for.
        algorithm: HashingAlgorithm,
        /// Bytes the hash decodes to.
        len: usize,
    },
}

/// A fresh hash of `password` with a random salt, as RabbitMQ stores it.
pub fn hash(password: impl AsRef<[u8]>, algorithm: HashingAlgorithm) -> String {
    hash_with_salt(rand::random(), password, algorithm)
}

/// The hash of `password` with the given salt: base64(salt ++ digest).
pub fn hash_with_salt(salt: [u8; SALT_LEN], password: impl AsRef<[u8]>, algorithm: HashingAlgorithm) -> String {
    let mut bytes = salt.to_vec();
    bytes.extend(algorithm.digest(&salt, password.as_ref()));
    STANDARD.encode(bytes)
}

/// Whether `stored` is a hash of `password`. A hash that does not decode or
/// has the wrong length, the empty one included, matches nothing.
pub fn verify(password: impl AsRef<[u8]>, stored: &str, algorithm: HashingAlgorithm) -> bool {
    let Ok(bytes) = STANDARD.decode(stored) else { return false };
    if bytes.len() != algorithm.hash_len() {
        return false;
    }
    let (salt, digest) = bytes.split_at(SALT_LEN);
    let computed = algorithm.digest(salt, password.as_ref());
    // Compared in constant time, so the comparison tells nothing of how much matched.
    computed.iter().zip(digest).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// The algorithm a hash's length tells (`GET /api/users` leaves the algorithm out).
pub fn detect(stored: &str) -> Option<HashingAlgorithm> {
    let len = STANDARD.decode(stored).ok()?.len();
    [HashingAlgorithm::Sha256, HashingAlgorithm::Sha512].into_iter().find(|a| a.hash_len() == len)
}

/// The algorithm of a hash: the declared one, or, when none is declared, the
/// one whose length the hash has (a SHA-512 hash sent without its algorithm,
/// as `rabbitmq_http_client`'s `UserParams` sends every hash, still logs in),
/// else SHA-256, RabbitMQ's default.
pub fn resolve(declared: Option<&str>, stored: &str) -> Result<HashingAlgorithm, UnknownAlgorithm> {
    match declared {
        Some(name) => HashingAlgorithm::parse(name).ok_or_else(|| UnknownAlgorithm(name.to_owned())),
        None => Ok(detect(stored).unwrap_or_default()),
    }
}

/// Checks that `stored` can be a hash of `algorithm`: base64 of a salt and a
/// digest of the right length. The empty string is not a hash: whether it
/// means "no password" is the caller's to say.
pub fn check(stored: &str, algorithm: HashingAlgorithm) -> Result<(), HashError> {
    let bytes = STANDARD.decode(stored).map_err(|_| HashError::NotBase64)?;
    match bytes.len() == algorithm.hash_len() {
        true => Ok(()),
        false => Err(HashError::Length { algorithm, len: bytes.len() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hash RabbitMQ 3.10 computed for the password `pw` (`PUT /api/users/…` with `"password":"pw"`).
    const RABBITMQ_SHA256_OF_PW: &str = "pn9nFSNvKQYLF7z2KSlEBPdL99NFW3al8M5FzMxVRwxYp1Ff";

    #[test]
    fn the_same_salt_gives_rabbitmqs_hash() {
        let bytes = STANDARD.decode(RABBITMQ_SHA256_OF_PW).expect("base64");
        let salt: [u8; 4] = bytes[..4].try_into().expect("4 bytes");
        assert_eq!(hash_with_salt(salt, "pw", HashingAlgorithm::Sha256), RABBITMQ_SHA256_OF_PW);
        assert!(verify("pw", RABBITMQ_SHA256_OF_PW, HashingAlgorithm::Sha256));
    }

    #[test]
    fn hash_matches_rabbitmq_documented_example() {
        // From RabbitMQ's "Credentials and Passwords" guide: salt 908D C60A, password "test12".
        let hash = hash_with_salt([0x90, 0x8D, 0xC6, 0x0A], "test12", HashingAlgorithm::Sha256);
        assert_eq!(hash, "kI3GCqW5JLMJa4iX1lo7X4D6XbYqlLgxIs30+P6tENUV2POR");
    }

    #[test]
    fn matches_the_guest_hash_rabbitmq_created() {
        // `guest`'s hash as RabbitMQ 3.10.8 generated it on this project's test broker.
        let stored = "xnArkd8Mb+JKWRCIfz1Tejg4iFCXBnti54BrfMEDb9SGSMzy";
        assert!(verify("guest", stored, HashingAlgorithm::Sha256));
        assert!(!verify("Guest", stored, HashingAlgorithm::Sha256));
        assert!(!verify("guest", stored, HashingAlgorithm::Sha512));
    }

    #[test]
    fn fresh_hashes_of_both_algorithms_verify_and_differ_by_salt() {
        for algorithm in [HashingAlgorithm::Sha256, HashingAlgorithm::Sha512] {
            let a = hash("s3cret", algorithm);
            let b = hash("s3cret", algorithm);
            assert_ne!(a, b, "a fresh salt each time");
            assert!(verify("s3cret", &a, algorithm));
            assert!(!verify("s3cret ", &a, algorithm));
            assert!(!verify("s3cret!", &a, algorithm));
            assert!(check(&a, algorithm).is_ok());
            let same_salt = hash_with_salt([1, 2, 3, 4], "s3cret", algorithm);
            let other_salt = hash_with_salt([1, 2, 3, 5], "s3cret", algorithm);
            assert_ne!(same_salt, other_salt);
        }
    }

    #[test]
    fn an_undeclared_algorithm_follows_the_hash_length() {
        let sha512 = hash("pw", HashingAlgorithm::Sha512);
        let sha256 = hash("pw", HashingAlgorithm::Sha256);
        assert_eq!(resolve(None, &sha512), Ok(HashingAlgorithm::Sha512));
        assert_eq!(resolve(None, &sha256), Ok(HashingAlgorithm::Sha256));
        assert_eq!(resolve(None, ""), Ok(HashingAlgorithm::Sha256));
        assert_eq!(resolve(Some("rabbit_password_hashing_sha256"), &sha512), Ok(HashingAlgorithm::Sha256));
        assert_eq!(detect(&sha512), Some(HashingAlgorithm::Sha512));
        assert_eq!(detect("AAAA"), None);
    }

    #[test]
    fn algorithms_are_named_as_rabbitmq_names_them() {
        for algorithm in [HashingAlgorithm::Sha256, HashingAlgorithm::Sha512] {
            assert_eq!(HashingAlgorithm::parse(algorithm.as_str()), Some(algorithm));
        }
        assert_eq!(HashingAlgorithm::parse("sha512"), Some(HashingAlgorithm::Sha512));
        assert_eq!(HashingAlgorithm::parse("rabbit_password_hashing_md5"), None);
        let unknown = resolve(Some("rabbit_password_hashing_md5"), "");
        assert_eq!(
            unknown.map_err(|e| e.to_string()),
            Err("unknown hashing algorithm 'rabbit_password_hashing_md5'".into())
        );
    }

    #[test]
    fn malformed_hashes_are_refused_and_match_nothing() {
        assert_eq!(check("abc", HashingAlgorithm::Sha256), Err(HashError::NotBase64));
        let short = STANDARD.encode([0u8; 20]);
        assert_eq!(
            check(&short, HashingAlgorithm::Sha256).map_err(|e| e.to_string()),
            Err("a rabbit_password_hashing_sha256 hash is 36 bytes (4 salt + 32 digest), this one is 20".into())
        );
        assert_eq!(
            check("", HashingAlgorithm::Sha512),
            Err(HashError::Length { algorithm: HashingAlgorithm::Sha512, len: 0 })
        );
        assert!(!verify("x", "not base64!", HashingAlgorithm::Sha256));
        assert!(!verify("x", "AAAA", HashingAlgorithm::Sha256));
        assert!(!verify("", "", HashingAlgorithm::Sha256), "no hash, no login");
    }
}
