//! SoftHSM2 for in-process stacks: pointing it at a private token directory before
//! the process starts threads, and a fresh token per party whose PKCS#11 vault keeps
//! its key-encryption key there (the data scenario of `mpc demo`).

use std::path::{Path, PathBuf};

use mpc_vault::{HsmError, Pkcs11Vault};
use zeroize::Zeroizing;

/// The PKCS#11 module used when `MPC_PKCS11_MODULE` is unset.
const SOFTHSM_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// SoftHSM2 could not be prepared or a token could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SoftHsmError {
    #[error("cannot create {0}")]
    Create(PathBuf, #[source] std::io::Error),
    #[error("cannot write {0}")]
    Write(PathBuf, #[source] std::io::Error),
    #[error("cannot run softhsm2-util")]
    Util(#[source] std::io::Error),
    #[error("softhsm2-util could not create token {0}")]
    Token(String),
    #[error(transparent)]
    Vault(#[from] HsmError),
    #[error("the token task stopped")]
    Task(#[from] tokio::task::JoinError),
}

/// Where a party's key-encryption key is kept: a PKCS#11 module (SoftHSM2's shared
/// library).
#[derive(Debug, Clone)]
pub struct Hsm {
    pub module: PathBuf,
}

/// Prepares SoftHSM2 before the process starts threads: when the module is installed
/// and `SOFTHSM2_CONF` is unset, points SoftHSM2 at a fresh token directory inside
/// `dir` (tokens are created there, never in the system's token directory). Returns
/// the HSM to use, or `None` when SoftHSM2 is missing.
///
/// # Safety
///
/// Sets an environment variable: call it while the process has one thread.
pub unsafe fn prepare_softhsm(dir: &Path) -> Result<Option<Hsm>, SoftHsmError> {
    let module = std::env::var_os("MPC_PKCS11_MODULE")
        .map_or_else(|| PathBuf::from(SOFTHSM_MODULE), PathBuf::from);
    if !module.is_file() || !softhsm_util_available() {
        return Ok(None);
    }
    if std::env::var_os("SOFTHSM2_CONF").is_none() {
        let tokens = dir.join("softhsm-tokens");
        std::fs::create_dir_all(&tokens).map_err(|e| SoftHsmError::Create(tokens.clone(), e))?;
        let conf = dir.join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            ),
        )
        .map_err(|e| SoftHsmError::Write(conf.clone(), e))?;
        // SAFETY: the caller guarantees the process has one thread.
        unsafe { std::env::set_var("SOFTHSM2_CONF", &conf) };
    }
    Ok(Some(Hsm { module }))
}

fn softhsm_util_available() -> bool {
    std::process::Command::new("softhsm2-util")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

impl Hsm {
    /// A vault in `vault_dir` whose key-encryption key lives in a fresh token of this
    /// HSM (random label and PINs).
    pub async fn fresh_vault(&self, vault_dir: PathBuf) -> Result<Pkcs11Vault, SoftHsmError> {
        let label = format!("mpc-demo-{}", hex::encode(rand::random::<[u8; 6]>()));
        let pin = hex::encode(rand::random::<[u8; 16]>());
        let so_pin = Zeroizing::new(hex::encode(rand::random::<[u8; 16]>()));
        let module = self.module.clone();
        tokio::task::spawn_blocking(move || {
            let status = std::process::Command::new("softhsm2-util")
                .args(["--init-token", "--free", "--label", &label])
                .args(["--so-pin", so_pin.as_str(), "--pin", &pin])
                .stdout(std::process::Stdio::null())
                .status()
                .map_err(SoftHsmError::Util)?;
            if !status.success() {
                return Err(SoftHsmError::Token(label));
            }
            Ok(Pkcs11Vault::open(&module, &label, &pin, &vault_dir)?)
        })
        .await?
    }
}
