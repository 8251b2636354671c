//! Configuration: the flags that choose the event store (SQLite file or PostgreSQL
//! URL) and the transport (in-process or Kafka), opened by `mpc_app::adapters`; small
//! secrets kept in the data directory; the TOML configuration file.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use zeroize::Zeroizing;

/// Where the event log lives.
#[derive(Args, Debug, Clone)]
pub struct StoreArgs {
    /// PostgreSQL URL of the event store (e.g. `postgres://mpc@db:5432/mpc`).
    /// Default: the SQLite file `events.db` in the data directory.
    #[arg(long, env = "MPC_STORE_URL")]
    pub store_url: Option<String>,
}

/// How protocol envelopes travel.
#[derive(Args, Debug, Clone)]
pub struct TransportArgs {
    /// Kafka bootstrap brokers (`host:port,…`). Default: in-process only.
    #[arg(long, env = "MPC_KAFKA_BROKERS")]
    pub kafka_brokers: Option<String>,
    /// Kafka topic of the envelopes.
    #[arg(long, env = "MPC_KAFKA_TOPIC", default_value = mpc_transport::DEFAULT_TOPIC)]
    pub kafka_topic: String,
}

/// A secret read from `path`, or, when `path` is `None`, from `default_path`,
/// created there (mode 0600) with `generate()` if missing.
pub fn secret_file(
    path: Option<&Path>,
    default_path: &Path,
    generate: impl FnOnce() -> String,
) -> anyhow::Result<Zeroizing<String>> {
    let path: PathBuf = path.map_or_else(|| default_path.to_owned(), Path::to_owned);
    if !path.exists() && path == default_path {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options
            .open(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        let secret = Zeroizing::new(generate());
        file.write_all(secret.as_bytes())
            .and_then(|()| file.sync_all())
            .with_context(|| format!("cannot write {}", path.display()))?;
        tracing::info!(path = %path.display(), "created a new secret file");
        return Ok(secret);
    }
    let text = Zeroizing::new(
        std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?,
    );
    Ok(Zeroizing::new(text.trim().to_owned()))
}

/// 32 random bytes as hex.
pub fn random_hex() -> String {
    hex::encode(Zeroizing::new(rand::random::<[u8; 32]>()).as_slice())
}

/// Applies a TOML configuration file: every `key = value` becomes `MPC_KEY` in the
/// environment unless already set, so flags > environment > file > defaults.
pub fn apply_config_file(path: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    let table: toml::Table =
        toml::from_str(&text).with_context(|| format!("invalid TOML in {}", path.display()))?;
    for (key, value) in table {
        let name = format!("MPC_{}", key.to_ascii_uppercase().replace('-', "_"));
        let value = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            other => anyhow::bail!("config key {key:?}: unsupported value {other}"),
        };
        if std::env::var_os(&name).is_none() {
            // SAFETY: called at start-up, before any other thread exists.
            unsafe { std::env::set_var(&name, value) };
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_file_fills_the_environment_without_overriding_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mpc.toml");
        std::fs::write(
            &path,
            "zz_test_from_file = \"file\"\nzz_test_number = 5\nzz-test-overridden = \"file\"\n",
        )
        .unwrap();
        // SAFETY: only this test touches these variables.
        unsafe { std::env::set_var("MPC_ZZ_TEST_OVERRIDDEN", "env") };
        apply_config_file(&path).unwrap();
        assert_eq!(std::env::var("MPC_ZZ_TEST_FROM_FILE").unwrap(), "file");
        assert_eq!(std::env::var("MPC_ZZ_TEST_NUMBER").unwrap(), "5");
        assert_eq!(std::env::var("MPC_ZZ_TEST_OVERRIDDEN").unwrap(), "env");
    }

    #[test]
    fn a_bad_config_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mpc.toml");
        std::fs::write(&path, "store_url = [1, 2]\n").unwrap();
        let error = apply_config_file(&path).unwrap_err().to_string();
        assert!(error.contains("store_url"), "{error}");
        std::fs::write(&path, "not toml at all").unwrap();
        let error = format!("{:#}", apply_config_file(&path).unwrap_err());
        assert!(error.contains("invalid TOML"), "{error}");
        assert!(apply_config_file(&dir.path().join("missing.toml")).is_err());
    }
}
