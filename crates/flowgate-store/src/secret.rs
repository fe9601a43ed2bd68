//! Secrets made here: random tokens from the operating system, and the SHA-256 they are stored as.

use sha2::{Digest, Sha256};

use crate::StoreError;

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `n` random bytes from the operating system, as hex.
pub(crate) fn random_hex(n: usize) -> Result<String, StoreError> {
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf).map_err(|e| StoreError::Refused {
        kind: "secret",
        id: String::new(),
        message: format!("no randomness from the operating system: {e}"),
    })?;
    Ok(hex(&buf))
}

/// What a secret is stored as: its SHA-256, as hex.
pub(crate) fn sha256_hex(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}
