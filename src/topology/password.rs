//! RabbitMQ's password hashes: base64(4-byte salt ++ digest(salt ++ password)).
//!
//! Comparing a clear-text password against the stored hash lets `apply`
//! leave an unchanged password alone (no new salt, no reset) while never
//! sending or printing the password itself.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256, Sha512};

use super::model::HashAlgorithm;

const SALT_LEN: usize = 4;

fn digest(algorithm: HashAlgorithm, salt: &[u8], password: &str) -> Vec<u8> {
    match algorithm {
        HashAlgorithm::Sha256 => {
            let mut h = Sha256::new();
            h.update(salt);
            h.update(password.as_bytes());
            h.finalize().to_vec()
        }
        HashAlgorithm::Sha512 => {
            let mut h = Sha512::new();
            h.update(salt);
            h.update(password.as_bytes());
            h.finalize().to_vec()
        }
    }
}

/// A fresh hash of `password` with a random salt, as RabbitMQ stores it.
pub fn hash(password: &str, algorithm: HashAlgorithm) -> String {
    let salt: [u8; SALT_LEN] = rand::random();
    hash_with_salt(password, algorithm, salt)
}

fn hash_with_salt(password: &str, algorithm: HashAlgorithm, salt: [u8; SALT_LEN]) -> String {
    let mut bytes = salt.to_vec();
    bytes.extend(digest(algorithm, &salt, password));
    STANDARD.encode(bytes)
}

/// True when `stored` (base64, as in definitions) is a hash of `password`.
/// A hash that does not decode, or has the wrong length, matches nothing.
pub fn matches(password: &str, stored: &str, algorithm: HashAlgorithm) -> bool {
    let Ok(bytes) = STANDARD.decode(stored) else {
        return false;
    };
    let expected_len = SALT_LEN
        + match algorithm {
            HashAlgorithm::Sha256 => 32,
            HashAlgorithm::Sha512 => 64,
        };
    if bytes.len() != expected_len {
        return false;
    }
    let (salt, stored_digest) = bytes.split_at(SALT_LEN);
    digest(algorithm, salt, password) == stored_digest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_guest_hash_rabbitmq_created() {
        // `guest`'s hash as RabbitMQ 3.10.8 generated it on this project's test broker.
        let stored = "xnArkd8Mb+JKWRCIfz1Tejg4iFCXBnti54BrfMEDb9SGSMzy";
        assert!(matches("guest", stored, HashAlgorithm::Sha256));
        assert!(!matches("Guest", stored, HashAlgorithm::Sha256));
        assert!(!matches("guest", stored, HashAlgorithm::Sha512));
    }

    #[test]
    fn fresh_hashes_verify_and_are_salted() {
        for algorithm in [HashAlgorithm::Sha256, HashAlgorithm::Sha512] {
            let a = hash("s3cret", algorithm);
            assert!(matches("s3cret", &a, algorithm));
            assert!(!matches("s3cret!", &a, algorithm));
            let same_salt = hash_with_salt("s3cret", algorithm, [1, 2, 3, 4]);
            let other_salt = hash_with_salt("s3cret", algorithm, [1, 2, 3, 5]);
            assert_ne!(same_salt, other_salt);
        }
    }

    #[test]
    fn garbage_hashes_match_nothing() {
        assert!(!matches("x", "not base64!", HashAlgorithm::Sha256));
        assert!(!matches("x", "AAAA", HashAlgorithm::Sha256));
    }
}
