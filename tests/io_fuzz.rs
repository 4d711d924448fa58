//! Malformed-input fuzzing of the file loaders: valid files mutated in many seeded ways
//! (truncations, byte flips, corrupted header lengths, offsets, shapes and dtypes, inserted and
//! deleted bytes, random junk) must give `Ok` or `Err`, never a panic.

use std::panic::{catch_unwind, AssertUnwindSafe};

use tapegrad::io::{safetensors, torch};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

/// splitmix64: a small seeded generator, so every run tries the same inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Positions of ASCII digits in `range` of `b`: the numbers of a JSON header or a text field.
fn digits(b: &[u8], range: std::ops::Range<usize>) -> Vec<usize> {
    range
        .filter(|&i| b.get(i).is_some_and(u8::is_ascii_digit))
        .collect()
}

/// One mutation of `seed`; `text` is the byte range holding a textual header (the safetensors
/// JSON), where digits and dtype names are mutated specifically.
fn mutate(seed: &[u8], text: std::ops::Range<usize>, rng: &mut Rng) -> Vec<u8> {
    let mut b = seed.to_vec();
    match rng.below(9) {
        0 => b.truncate(rng.below(seed.len())),
        1 => {
            for _ in 0..1 + rng.below(8) {
                let i = rng.below(b.len());
                b[i] ^= 1 << rng.below(8);
            }
        }
        2 => {
            // a header length that is off by a little, or wildly
            let n = u64::from_le_bytes(b[..8].try_into().unwrap());
            let v = match rng.below(3) {
                0 => n.wrapping_add(rng.below(17) as u64).wrapping_sub(8),
                1 => rng.next(),
                _ => seed.len() as u64 + rng.below(4) as u64,
            };
            b[..8].copy_from_slice(&v.to_le_bytes());
        }
        3 => {
            // change a number in the header: an offset, a shape dim
            let d = digits(&b, text.clone());
            for _ in 0..1 + rng.below(3) {
                if let Some(&i) = d.get(rng.below(d.len())) {
                    b[i] = b"0123456789"[rng.below(10)];
                }
            }
        }
        4 => {
            // swap one dtype name for another of the same length, or a bogus one
            const NAMES: [&[u8]; 8] = [
                b"F32", b"F64", b"I64", b"F16", b"I32", b"U16", b"C64", b"X_Y",
            ];
            let hdr = &b[text.clone()];
            let pos: Vec<usize> = (0..hdr.len().saturating_sub(3))
                .filter(|&i| NAMES.iter().any(|n| &hdr[i..i + 3] == *n))
                .map(|i| i + text.start)
                .collect();
            if let Some(&i) = pos.get(rng.below(pos.len())) {
                b[i..i + 3].copy_from_slice(NAMES[rng.below(NAMES.len())]);
            }
        }
        5 => {
            let i = rng.below(b.len() + 1);
            let junk: Vec<u8> = (0..1 + rng.below(16)).map(|_| rng.next() as u8).collect();
            b.splice(i..i, junk);
        }
        6 => {
            let i = rng.below(b.len());
            let n = 1 + rng.below(16);
            b.drain(i..(i + n).min(b.len()));
        }
        7 => {
            // overwrite a run with one repeated byte (0x00, 0xFF, '{', '"', ...)
            let i = rng.below(b.len());
            let v = [0u8, 0xFF, b'{', b'"', b'9', b'-', b'['][rng.below(7)];
            for x in b.iter_mut().skip(i).take(1 + rng.below(32)) {
                *x = v;
            }
        }
        _ => {
            let n = rng.below(seed.len() * 2);
            b = (0..n).map(|_| rng.next() as u8).collect();
            if n >= 8 && rng.below(2) == 0 {
                b[..8].copy_from_slice(
                    &((n as u64).saturating_sub(8 + rng.below(64) as u64)).to_le_bytes(),
                );
            }
        }
    }
    b
}

/// Runs `load` on `count` mutations of the seeds; returns how many inputs it accepted, and fails
/// on the first panic with the input that caused it.
fn fuzz(
    seeds: &[(Vec<u8>, std::ops::Range<usize>)],
    count: usize,
    rng_seed: u64,
    load: impl Fn(&[u8]) -> bool,
) -> usize {
    let mut rng = Rng(rng_seed);
    let mut accepted = 0;
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mut failure = None;
    for k in 0..count {
        let (seed, text) = &seeds[k % seeds.len()];
        let input = mutate(seed, text.clone(), &mut rng);
        match catch_unwind(AssertUnwindSafe(|| load(&input))) {
            Ok(ok) => accepted += ok as usize,
            Err(_) => {
                failure = Some((k, input));
                break;
            }
        }
    }
    std::panic::set_hook(hook);
    if let Some((k, input)) = failure {
        panic!(
            "input {k} made the loader panic; it was {} bytes: {input:?}",
            input.len()
        );
    }
    accepted
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(format!("{DIR}/{name}")).unwrap()
}

/// A safetensors seed with the byte range of its JSON header.
fn st_seed(bytes: Vec<u8>) -> (Vec<u8>, std::ops::Range<usize>) {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    (bytes, 8..8 + n)
}

#[test]
fn a_hundred_thousand_malformed_safetensors_files_give_errors_not_panics() {
    // f16 / bf16 / u8 / bool seeds too, so the conversions run on mutated data
    let mut half = Vec::new();
    let header = br#"{"a":{"dtype":"F16","shape":[2,2],"data_offsets":[0,8]},"b":{"dtype":"BF16","shape":[3],"data_offsets":[8,14]},"c":{"dtype":"U8","shape":[2],"data_offsets":[14,16]}}"#;
    half.extend((header.len() as u64).to_le_bytes());
    half.extend(header);
    half.extend((0..16u8).map(|i| i.wrapping_mul(37)));
    assert!(
        safetensors::load_bytes(&half).is_ok(),
        "the hand-made seed is valid"
    );
    let seeds = [
        st_seed(read("ckpt_dtypes.safetensors")),
        st_seed(read("ckpt_net.safetensors")),
        st_seed(half),
    ];
    let accepted = fuzz(&seeds, 100_000, 1, |b| safetensors::load_bytes(b).is_ok());
    // most mutations must be caught; a few (a flipped bit in the tensor data) stay valid files
    assert!(
        accepted < 50_000,
        "{accepted} of 100000 mutated files were accepted"
    );
}

#[test]
fn a_hundred_thousand_malformed_torch_checkpoints_give_errors_not_panics() {
    // mutations hit the zip structure and, inside the stored data.pkl, the pickle opcodes
    let seeds: Vec<_> = ["ckpt_views.pt", "ckpt_dtypes.pt", "ckpt_nested.pt"]
        .iter()
        .map(|n| {
            let b = read(n);
            let start = b.windows(8).position(|w| w == b"data.pkl").unwrap() + 8;
            (b, start..start + 600)
        })
        .collect();
    let accepted = fuzz(&seeds, 100_000, 2, |b| torch::load_value_bytes(b).is_ok());
    assert!(
        accepted < 90_000,
        "{accepted} of 100000 mutated files were accepted"
    );
}
