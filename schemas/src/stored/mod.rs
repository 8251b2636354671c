//! The payloads of the events in the store: what the coordinator wrote and must be
//! able to read forever.
//!
//! Stored events carry their type name and schema version next to the payload
//! ([`crate::Encoded`]). Each module encodes the current version and decodes every
//! version ever written, upcasting older payloads to the current domain event; a
//! fixture file of every stored version lives in `fixtures/stored/<module>/`, named
//! `<Type>.v<N>[.<variant>].json`, and is tested. Fixtures never change: a new shape
//! is a new version with a new fixture next to the old ones.
//!
//! - [`session`]: session streams (`session-<id>`), versioned with upcasters.
//! - [`account`]: account streams, uniqueness claims and key streams.
//! - [`approval`]: approval-workflow streams, and the transcript approvers sign.
//! - [`operator`]: the operator-credential registry (key digests, names, roles).
//!
//! These formats change under the store's rules; the public contract for external
//! consumers is [`crate::domain`], the wire between parties [`crate::envelope`].

pub mod account;
pub mod approval;
pub mod operator;
pub mod session;

#[cfg(test)]
pub(crate) mod fixtures {
    use std::path::PathBuf;

    /// `fixtures/stored/<dir>`.
    pub fn dir(dir: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/stored")
            .join(dir)
    }

    /// Every fixture in `fixtures/stored/<dir>`, named `<Type>.v<N>[.<variant>].json`,
    /// as (type, version, bytes).
    pub fn read(dir: &str) -> Vec<(String, u16, Vec<u8>)> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(self::dir(dir)).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            let mut parts = name.trim_end_matches(".json").split('.');
            let ty = parts.next().unwrap().to_owned();
            let version = parts
                .next()
                .unwrap()
                .trim_start_matches('v')
                .parse()
                .unwrap();
            out.push((ty, version, std::fs::read(&path).unwrap()));
        }
        out
    }
}
