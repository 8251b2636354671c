//! The fuzz targets (`fuzz/targets.rs`) as an ordinary test, so every `cargo test`
//! exercises the decoders of untrusted bytes: the fixture corpus
//! (`schemas/fixtures/**`, the HTTP seeds in `fuzz/seeds/http_dtos/`) and a fixed
//! number of deterministic mutations of each file (bit flips, byte overwrites,
//! truncations, deletions, duplicated chunks, from a fixed seed), run through every
//! target. Each target asserts its own properties (round trips, refused unknown
//! versions); here every input must either decode or be refused without a panic, and
//! every unmutated fixture must be accepted by some decoder. `cargo fuzz` runs the
//! same functions with coverage guidance: `scripts/fuzz.sh`, docs/reliability.md.

#[path = "../../fuzz/targets.rs"]
mod targets;

use std::path::{Path, PathBuf};

/// Mutations per corpus file.
const MUTATIONS: usize = 60;

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// The seed corpus: every fixture (hex fixtures decoded) and the HTTP seeds.
fn corpus() -> Vec<(PathBuf, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut paths = Vec::new();
    files(&root.join("schemas/fixtures"), &mut paths);
    files(&root.join("fuzz/seeds"), &mut paths);
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).unwrap();
            let bytes = if path.extension().is_some_and(|e| e == "hex") {
                hex::decode(String::from_utf8(bytes).unwrap().trim()).unwrap()
            } else {
                bytes
            };
            (path, bytes)
        })
        .collect()
}

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    if out.is_empty() {
        out.push(rng.next() as u8);
        return out;
    }
    // One to three edits.
    for _ in 0..=rng.below(3) {
        if out.is_empty() {
            break;
        }
        let at = rng.below(out.len());
        match rng.below(6) {
            0 => out[at] ^= 1 << rng.below(8),
            1 => out[at] = rng.next() as u8,
            2 => out.truncate(at),
            3 => {
                out.remove(at);
            }
            4 => {
                let end = (at + 1 + rng.below(16)).min(out.len());
                let chunk = out[at..end].to_vec();
                out.splice(at..at, chunk);
            }
            _ => {
                // An "interesting" byte: JSON structure, digits, limits.
                const BYTES: &[u8] = b"\"{}[],:0-9eE\\\x00\x7f\xff";
                out[at] = BYTES[rng.below(BYTES.len())];
            }
        }
    }
    out
}

#[test]
fn decoders_survive_the_corpus_and_its_mutations() {
    let corpus = corpus();
    assert!(corpus.len() >= 50, "corpus has {} files", corpus.len());
    let mut rng = Rng(0x5eed_f022_u64);
    let (mut inputs, mut accepted_inputs) = (0usize, 0usize);
    for (path, bytes) in &corpus {
        assert!(
            targets::all(bytes) > 0,
            "no decoder accepts the fixture {}",
            path.display()
        );
        for _ in 0..MUTATIONS {
            let mutated = mutate(&mut rng, bytes);
            inputs += 1;
            accepted_inputs += usize::from(targets::all(&mutated) > 0);
        }
    }
    // Edge inputs.
    for edge in [
        &b""[..],
        b"null",
        b"{}",
        b"[]",
        b"\"\"",
        &[0xff; 64],
        &[0; 300],
    ] {
        inputs += 1;
        accepted_inputs += usize::from(targets::all(edge) > 0);
    }
    println!(
        "mutation test: {} corpus files, {inputs} mutated/edge inputs through 5 targets: \
         {accepted_inputs} accepted by some decoder, {} refused by all, 0 panics",
        corpus.len(),
        inputs - accepted_inputs
    );
    assert_eq!(inputs, corpus.len() * MUTATIONS + 7);
}
