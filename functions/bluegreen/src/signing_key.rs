//! The key that signs approval links: its bytes (never shown), their minimum, and how it is
//! read from its secret. Below the context, which reads it once per process; the links
//! themselves (claims, signing, checking) are `crate::links`.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::error::{StepError, StepResult};
use crate::ports::secrets::Secrets;

/// Fewer bytes than this and a key is refused: HMAC-SHA256 wants at least its output size.
pub const MIN_KEY_BYTES: usize = 32;

/// The key that signs approval links. Its `Debug` never shows the bytes.
#[derive(Clone)]
pub struct SigningKey(Vec<u8>);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(<redacted>)")
    }
}

impl SigningKey {
    /// A key from raw bytes; [`StepError::ConfigInvalid`] when shorter than [`MIN_KEY_BYTES`].
    pub fn new(bytes: impl Into<Vec<u8>>) -> StepResult<Self> {
        let bytes = bytes.into();
        if bytes.len() < MIN_KEY_BYTES {
            return Err(StepError::ConfigInvalid(vec![format!(
                "the link signing key has {} bytes; at least {MIN_KEY_BYTES} are needed",
                bytes.len()
            )]));
        }
        Ok(SigningKey(bytes))
    }

    /// Reads the key from the secret's `SecretString` (the stack generates it).
    pub async fn from_secret(secrets: &dyn Secrets, secret_id: &str) -> StepResult<Self> {
        let text = secrets.secret_string(secret_id).await?.ok_or_else(|| {
            StepError::ConfigInvalid(vec![format!(
                "secret {secret_id} has no SecretString (binary secrets are not supported)"
            )])
        })?;
        SigningKey::new(text.into_bytes())
    }

    /// An HMAC-SHA256 over `payload` with this key (signing and checking a link).
    pub(crate) fn mac(&self, payload: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC accepts any key length");
        mac.update(payload);
        mac
    }
}
