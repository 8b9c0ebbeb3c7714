//! Signed approval links: one per approver and deployment, expiring with the approval window,
//! good for one decision.
//!
//! A link carries `base64url(claims) "." base64url(HMAC-SHA256(key, claims))`. The key is a
//! Secrets Manager secret read by the approval step (to sign) and the console (to verify); it is
//! never logged or shown. A valid signature proves bluegreen issued the link to that approver
//! for that deployment; expiry is checked against the claims, single use against the decision
//! recorded on the deployment (the nonce of the link that decided is stored with it).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::Mac;
use serde::{Deserialize, Serialize};

use crate::context::Context;
use crate::error::{StepError, StepResult};

pub use crate::signing_key::{MIN_KEY_BYTES, SigningKey};

/// Set-up and diagnosis of the key's secret (the CLI's `install` and `doctor`).
impl SigningKey {
    /// Reads the key from the secret's `SecretString` (the stack generates it).
    pub async fn load(ctx: &Context, secret_id: &str) -> StepResult<Self> {
        SigningKey::from_secret(ctx.ports.secrets.as_ref(), secret_id).await
    }

    /// Whether the secret exists, read from its metadata only (`DescribeSecret`): checking
    /// an installation must not need the key itself.
    pub async fn secret_exists(ctx: &Context, secret_id: &str) -> StepResult<bool> {
        use aws_smithy_types::error::metadata::ProvideErrorMetadata;
        match ctx
            .sdk()?
            .secrets
            .describe_secret()
            .secret_id(secret_id)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.code() == Some("ResourceNotFoundException") => Ok(false),
            Err(e) => Err(StepError::from_sdk("secretsmanager:DescribeSecret", e)),
        }
    }

    /// Creates the secret `name` with a fresh random key (as the stack's generated secret), or
    /// finds it: `(ARN, created)`. For `bluegreen init --local`; in an account the stack owns it.
    pub async fn create_secret(ctx: &Context, name: &str) -> StepResult<(String, bool)> {
        use aws_smithy_types::error::metadata::ProvideErrorMetadata;
        // 64 hex characters of randomness (two v4 UUIDs' 244 random bits).
        let key = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let created = ctx
            .sdk()?
            .secrets
            .create_secret()
            .name(name)
            .description("HMAC key that signs bluegreen approval links")
            .secret_string(key)
            .send()
            .await;
        match created {
            Ok(out) => Ok((out.arn.unwrap_or_default(), true)),
            Err(e) if e.code() == Some("ResourceExistsException") => {
                let out = ctx
                    .sdk()?
                    .secrets
                    .describe_secret()
                    .secret_id(name)
                    .send()
                    .await
                    .map_err(|e| StepError::from_sdk("secretsmanager:DescribeSecret", e))?;
                Ok((out.arn.unwrap_or_default(), false))
            }
            Err(e) => Err(StepError::from_sdk("secretsmanager:CreateSecret", e)),
        }
    }
}

/// What a link says: who may decide which deployment until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkClaims {
    /// The deployment the link decides.
    #[serde(rename = "d")]
    pub deployment_id: String,
    /// The approver it was issued to, as listed in the service config.
    #[serde(rename = "a")]
    pub approver: String,
    /// Unix seconds after which the link is refused (the approval deadline).
    #[serde(rename = "e")]
    pub expires_at: i64,
    /// Random id of this link; recorded with the decision so the link cannot be used again.
    #[serde(rename = "n")]
    pub nonce: String,
}

impl LinkClaims {
    /// Claims for `approver` on `deployment_id`, expiring at `expires_at`, with a fresh nonce.
    pub fn new(deployment_id: &str, approver: &str, expires_at: DateTime<Utc>) -> Self {
        LinkClaims {
            deployment_id: deployment_id.to_owned(),
            approver: approver.to_owned(),
            expires_at: expires_at.timestamp(),
            nonce: uuid::Uuid::new_v4().simple().to_string(),
        }
    }
}

/// Why a link was refused. Each maps to its own page in the console; none changes anything.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// Not a link bluegreen could have issued (bad shape or encoding).
    #[error("this approval link is malformed")]
    Malformed,
    /// The signature does not match: the link was altered or made up.
    #[error("this approval link is not valid (its signature does not match)")]
    Forged,
    /// Past its expiry.
    #[error("this approval link expired at {0}")]
    Expired(DateTime<Utc>),
    /// Valid, but for another deployment.
    #[error("this approval link is for another deployment")]
    OtherDeployment,
    /// Already used for a decision.
    #[error("this approval link has already been used")]
    Used,
}

/// Signs claims into the link token put in a URL's `link` parameter.
pub fn sign(key: &SigningKey, claims: &LinkClaims) -> String {
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("claims serialise"));
    let signature = URL_SAFE_NO_PAD.encode(key.mac(payload.as_bytes()).finalize().into_bytes());
    format!("{payload}.{signature}")
}

/// Checks a token's signature (in constant time), its expiry and its deployment. Single use is
/// checked by the caller against the recorded decision ([`LinkError::Used`]).
pub fn verify(
    key: &SigningKey,
    token: &str,
    deployment_id: &str,
    now: DateTime<Utc>,
) -> Result<LinkClaims, LinkError> {
    let claims = verify_unscoped(key, token, now)?;
    if claims.deployment_id != deployment_id {
        return Err(LinkError::OtherDeployment);
    }
    Ok(claims)
}

/// Checks a token's signature and expiry, whatever deployment it names (the console's list page
/// accepts any valid link, to show its holder what else is pending).
pub fn verify_unscoped(
    key: &SigningKey,
    token: &str,
    now: DateTime<Utc>,
) -> Result<LinkClaims, LinkError> {
    let (payload, signature) = token.trim().split_once('.').ok_or(LinkError::Malformed)?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| LinkError::Malformed)?;
    key.mac(payload.as_bytes())
        .verify_slice(&signature)
        .map_err(|_| LinkError::Forged)?;
    // Only a payload we signed is ever parsed.
    let claims: LinkClaims = URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or(LinkError::Malformed)?;
    let expires_at = DateTime::from_timestamp(claims.expires_at, 0).ok_or(LinkError::Malformed)?;
    if now > expires_at {
        return Err(LinkError::Expired(expires_at));
    }
    Ok(claims)
}

/// The console URL that opens `deployment_id` with a signed link.
pub fn url(console_url: &str, deployment_id: &str, token: &str) -> String {
    format!(
        "{}/deployments/{deployment_id}?link={token}",
        console_url.trim_end_matches('/')
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SigningKey {
        SigningKey::new(b"0123456789abcdef0123456789abcdef".to_vec()).unwrap()
    }

    fn claims(expires_in: i64) -> LinkClaims {
        LinkClaims::new(
            "dep-1",
            "alice@example.com",
            Utc::now() + chrono::Duration::seconds(expires_in),
        )
    }

    #[test]
    fn a_signed_link_verifies_for_its_deployment_until_it_expires() {
        let c = claims(60);
        let token = sign(&key(), &c);
        assert_eq!(verify(&key(), &token, "dep-1", Utc::now()), Ok(c));
        assert_eq!(
            verify(&key(), &token, "dep-2", Utc::now()),
            Err(LinkError::OtherDeployment)
        );
        let later = Utc::now() + chrono::Duration::seconds(120);
        assert!(matches!(
            verify(&key(), &token, "dep-1", later),
            Err(LinkError::Expired(_))
        ));
    }

    #[test]
    fn changed_claims_or_another_key_are_forged() {
        let token = sign(&key(), &claims(60));
        let (_, signature) = token.split_once('.').unwrap();
        let mut other = claims(60);
        other.approver = "mallory@example.com".into();
        let other_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&other).unwrap());
        let tampered = format!("{other_payload}.{signature}");
        assert_eq!(
            verify(&key(), &tampered, "dep-1", Utc::now()),
            Err(LinkError::Forged)
        );
        let stranger = SigningKey::new(vec![7u8; 32]).unwrap();
        assert_eq!(
            verify(&stranger, &token, "dep-1", Utc::now()),
            Err(LinkError::Forged)
        );
        for junk in ["", "abc", "a.b.c", "!!!.???"] {
            assert_eq!(
                verify(&key(), junk, "dep-1", Utc::now()),
                Err(LinkError::Malformed),
                "{junk:?}"
            );
        }
    }

    #[test]
    fn short_keys_are_refused_and_keys_never_print() {
        assert!(SigningKey::new(vec![1u8; 31]).is_err());
        assert_eq!(format!("{:?}", key()), "SigningKey(<redacted>)");
    }
}
