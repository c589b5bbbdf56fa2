//! Erlang's portable term hash, `erlang:phash2/2`, for the few term shapes an
//! AMQP argument table takes inside RabbitMQ (lists, tuples, binaries, atoms,
//! integers, floats). RabbitMQ names a binding with arguments by the phash2 of
//! its argument table, so reproducing it makes our `properties_key`s equal to
//! RabbitMQ's. The algorithm is documented as stable across Erlang releases.
//!
//! It mixes 32-bit words with Bob Jenkins' 1996 `mix`, walking the term
//! depth-first with an explicit stack; binaries go through Jenkins' block hash.

/// An Erlang term, as far as argument tables need.
#[derive(Debug, Clone, PartialEq)]
pub enum Term {
    /// A proper list (`[]` when empty).
    List(Vec<Term>),
    /// A tuple.
    Tuple(Vec<Term>),
    /// A binary.
    Binary(Vec<u8>),
    /// An atom, by name (ASCII).
    Atom(&'static str),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
}

/// The golden-ratio constant every multiple below derives from.
const GOLDEN: u32 = 0x9e37_79b9;

/// `GOLDEN * n` modulo 2^32: each term type mixes in its own constant.
const fn golden(n: u32) -> u32 {
    GOLDEN.wrapping_mul(n)
}

/// The hash Erlang gives the empty list when nothing was hashed before it.
const NIL_FIRST: u32 = 3_468_870_702;
/// The empty list's type tag, mixed in when it follows other terms.
const NIL_TAG: u32 = 2;

/// `erlang:phash2(Term, 1 bsl 32)`.
pub fn phash2(term: &Term) -> u32 {
    let mut hash: u32 = 0;
    let mut pending: Vec<Term> = Vec::new();
    let mut current = term.clone();
    loop {
        match current {
            Term::List(items) => {
                let mut shifted: u32 = 0;
                let mut count = 0;
                let mut index = 0;
                // Runs of small non-negative integers (strings) are packed four to a word.
                while let Some(Term::Int(byte @ 0..=255)) = items.get(index) {
                    shifted = (shifted << 8).wrapping_add(*byte as u32);
                    if count == 3 {
                        mix_words(&mut hash, shifted, 0, golden(4));
                        shifted = 0;
                        count = 0;
                    } else {
                        count += 1;
                    }
                    index += 1;
                }
                if count > 0 {
                    mix_words(&mut hash, shifted, 0, golden(4));
                }
                if index == items.len() {
                    current = Term::List(Vec::new());
                    if items.is_empty() {
                        nil(&mut hash);
                    } else {
                        continue;
                    }
                } else {
                    let mut items = items;
                    let rest = items.split_off(index + 1);
                    pending.push(Term::List(rest));
                    current = items.swap_remove(index);
                    continue;
                }
            }
            Term::Tuple(mut elements) => {
                mix_words(&mut hash, elements.len() as u32, 0, golden(9));
                if !elements.is_empty() {
                    let first = elements.remove(0);
                    pending.extend(elements.into_iter().rev());
                    current = first;
                    continue;
                }
            }
            Term::Binary(bytes) => {
                let seed = golden(13).wrapping_add(hash);
                hash = if bytes.is_empty() { seed } else { block_hash(&bytes, seed) };
            }
            Term::Atom(name) => {
                let value = atom_hash(name);
                if hash == 0 {
                    hash = value;
                } else {
                    mix_words(&mut hash, value, 0, golden(3));
                }
            }
            Term::Int(value) => int(&mut hash, value),
            Term::Float(value) => {
                // -0.0 hashes as 0.0, as in Erlang.
                let bits = if value == 0.0 { 0u64 } else { value.to_bits() };
                mix_words(&mut hash, (bits >> 32) as u32, bits as u32, golden(12));
            }
        }
        match pending.pop() {
            Some(next) => current = next,
            None => return hash,
        }
    }
}

fn nil(hash: &mut u32) {
    if *hash == 0 {
        *hash = NIL_FIRST;
    } else {
        mix_words(hash, NIL_TAG, 0, golden(2));
    }
}

fn int(hash: &mut u32, value: i64) {
    // Integers that fit in 28 signed bits hash as 32-bit words; negative ones are mixed twice.
    if (-(1 << 27)..(1 << 27)).contains(&value) {
        let word = value as i32;
        if word < 0 {
            mix_words(hash, word.wrapping_neg() as u32, 0, GOLDEN);
        }
        mix_words(hash, word as u32, 0, GOLDEN);
    } else {
        let magnitude = value.unsigned_abs();
        let constant = if value < 0 { golden(10) } else { golden(11) };
        mix_words(hash, magnitude as u32, (magnitude >> 32) as u32, constant);
    }
}

/// Mixes two words (each offset by `constant`) into the running hash.
fn mix_words(hash: &mut u32, first: u32, second: u32, constant: u32) {
    let mut a = constant.wrapping_add(first);
    let mut b = constant.wrapping_add(second);
    mix(&mut a, &mut b, hash);
}

/// Bob Jenkins' 96-bit mix of three words.
fn mix(a: &mut u32, b: &mut u32, c: &mut u32) {
    for (ra, rb, rc) in [(13, 8, 13), (12, 16, 5), (3, 10, 15)] {
        *a = a.wrapping_sub(*b).wrapping_sub(*c) ^ (*c >> ra);
        *b = b.wrapping_sub(*c).wrapping_sub(*a) ^ (*a << rb);
        *c = c.wrapping_sub(*a).wrapping_sub(*b) ^ (*b >> rc);
    }
}

/// Jenkins' block hash of a byte string, seeded with `seed`.
fn block_hash(bytes: &[u8], seed: u32) -> u32 {
    let word = |chunk: &[u8]| chunk.iter().rev().fold(0u32, |acc, b| (acc << 8) | u32::from(*b));
    let (mut a, mut b, mut c) = (GOLDEN, GOLDEN, seed);
    let mut chunks = bytes.chunks_exact(12);
    for chunk in &mut chunks {
        a = a.wrapping_add(word(&chunk[0..4]));
        b = b.wrapping_add(word(&chunk[4..8]));
        c = c.wrapping_add(word(&chunk[8..12]));
        mix(&mut a, &mut b, &mut c);
    }
    let tail = chunks.remainder();
    // The length goes into c's low byte, so the tail's third word starts one byte up.
    c = c.wrapping_add(bytes.len() as u32);
    for (i, byte) in tail.iter().enumerate() {
        let byte = u32::from(*byte);
        match i {
            0..=3 => a = a.wrapping_add(byte << (8 * i)),
            4..=7 => b = b.wrapping_add(byte << (8 * (i - 4))),
            _ => c = c.wrapping_add(byte << (8 * (i - 7))),
        }
    }
    mix(&mut a, &mut b, &mut c);
    c
}

/// The hash Erlang keeps for an atom (hashpjw over its name).
fn atom_hash(name: &str) -> u32 {
    let mut h: u32 = 0;
    for byte in name.bytes() {
        h = (h << 4).wrapping_add(u32::from(byte));
        let top = h & 0xf000_0000;
        if top != 0 {
            h ^= top >> 24;
            h ^= top;
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bin(text: &str) -> Term {
        Term::Binary(text.as_bytes().to_vec())
    }

    fn arg(key: &str, kind: &'static str, value: Term) -> Term {
        Term::Tuple(vec![bin(key), Term::Atom(kind), value])
    }

    /// `erlang:phash2(T, 1 bsl 32)` as Erlang/OTP 25 computes it (RabbitMQ 3.10's runtime).
    #[test]
    fn matches_erlang_for_every_term_shape_argument_tables_use() {
        let cases: Vec<(&str, Term, u32)> = vec![
            (
                "the table RabbitMQ hashed into properties key b~bis9TA",
                Term::List(vec![arg("k", "long", Term::Int(1)), arg("x-match", "longstr", bin("all"))]),
                1_848_327_500,
            ),
            ("bool", Term::List(vec![arg("a", "bool", Term::Atom("true"))]), 1_802_062_121),
            ("negative", Term::List(vec![arg("n", "long", Term::Int(-5))]), 4_152_883_683),
            ("beyond 28 bits", Term::List(vec![arg("big", "long", Term::Int(1 << 40))]), 1_007_383_420),
            ("negative beyond 28 bits", Term::List(vec![arg("neg", "long", Term::Int(-(1 << 40)))]), 2_570_341_220),
            ("double", Term::List(vec![arg("d", "double", Term::Float(1.5))]), 1_279_670_192),
            ("negative zero", Term::List(vec![arg("z", "double", Term::Float(-0.0))]), 2_359_333_607),
            (
                "nested table",
                Term::List(vec![arg("t", "table", Term::List(vec![arg("x", "longstr", bin("y"))]))]),
                3_369_206_527,
            ),
            (
                "array",
                Term::List(vec![arg(
                    "arr",
                    "array",
                    Term::List(vec![
                        Term::Tuple(vec![Term::Atom("long"), Term::Int(1)]),
                        Term::Tuple(vec![Term::Atom("longstr"), bin("two")]),
                    ]),
                )]),
                1_543_219_574,
            ),
            (
                "binaries longer than a 12-byte block",
                Term::List(vec![arg(
                    "header-with-a-long-name-xyz",
                    "longstr",
                    bin("a value longer than twelve bytes!"),
                )]),
                3_283_829_494,
            ),
            ("empty binary", Term::List(vec![arg("e", "longstr", bin(""))]), 3_291_887_948),
            ("string of 3", Term::List("abc".bytes().map(|b| Term::Int(b.into())).collect()), 519_996_486),
            ("string of 7", Term::List("abcdefg".bytes().map(|b| Term::Int(b.into())).collect()), 716_797_499),
            (
                "bytes then other terms",
                Term::List(vec![Term::Int(1), Term::Int(2), Term::Atom("a"), Term::Int(300), Term::Int(4)]),
                2_846_185_075,
            ),
            ("void", Term::List(vec![arg("v", "void", Term::Atom("undefined"))]), 3_233_508_068),
            ("largest 28-bit", Term::Int(134_217_727), 4_273_352_567),
            ("smallest beyond 28 bits", Term::Int(134_217_728), 2_562_491_755),
            ("smallest 28-bit", Term::Int(-134_217_728), 874_979_335),
            ("below 28 bits", Term::Int(-134_217_729), 1_418_916_782),
            ("empty tuple", Term::Tuple(Vec::new()), 221_703_996),
            ("signedint", Term::List(vec![arg("i", "signedint", Term::Int(7))]), 1_164_504_905),
            ("empty list", Term::List(Vec::new()), 3_468_870_702),
            ("atom", Term::Atom("a"), 97),
        ];
        for (what, term, expected) in cases {
            assert_eq!(phash2(&term), expected, "{what}");
        }
    }
}
