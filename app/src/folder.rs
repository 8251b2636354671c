//! A directory of JSON records, one file per record (`<name>.json`), each written
//! whole to a temporary file and renamed over the old one, so the CLI and a running
//! node can share it: the storage under a party's review and recovery desks.

use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// What reading a record can meet besides I/O errors.
#[derive(Debug)]
pub(crate) enum Read<T> {
    Found(T),
    Missing,
    Corrupt,
}

#[derive(Debug, Clone)]
pub(crate) struct Folder {
    dir: PathBuf,
}

impl Folder {
    pub(crate) fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// The record `name` (a name the caller checked: no path separators).
    pub(crate) fn read<T: DeserializeOwned>(&self, name: &str) -> io::Result<Read<T>> {
        match std::fs::read(self.path(name)) {
            Ok(bytes) => Ok(serde_json::from_slice(&bytes).map_or(Read::Corrupt, Read::Found)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Read::Missing),
            Err(e) => Err(e),
        }
    }

    /// The names of every record, sorted.
    pub(crate) fn names(&self) -> io::Result<Vec<String>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut names = Vec::new();
        for entry in entries {
            let file = entry?.file_name();
            if let Some(name) = file.to_str().and_then(|n| n.strip_suffix(".json")) {
                names.push(name.to_owned());
            }
        }
        names.sort();
        Ok(names)
    }

    /// Writes the record `name` whole, durably.
    pub(crate) fn write<T: Serialize>(&self, name: &str, record: &T) -> io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let bytes = serde_json::to_vec_pretty(record).map_err(io::Error::other)?;
        let mut file = tempfile::NamedTempFile::new_in(&self.dir)?;
        io::Write::write_all(&mut file, &bytes)?;
        file.as_file().sync_all()?;
        file.persist(self.path(name)).map_err(|e| e.error)?;
        Ok(())
    }

    fn path(&self, name: &str) -> PathBuf {
        Path::new(&self.dir).join(format!("{name}.json"))
    }
}
