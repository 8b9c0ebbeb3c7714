//! A container's `secrets[].valueFrom`, read and rewritten. Pure.
//!
//! ECS accepts a Secrets Manager secret as its full ARN, optionally followed by a JSON key,
//! a version stage and a version id
//! (`arn:aws:secretsmanager:eu-west-1:123456789012:secret:shop/db-AbCdEf:host::`); an SSM
//! parameter as its ARN or, in the task's Region, its bare name. bluegreen writes clone
//! settings only to Secrets Manager, under [`CLONE_SECRET_PREFIX`].

/// The name prefix of the per-deployment secrets bluegreen writes for clones: a reference to
/// one is a reference to a clone, whatever the clone's state.
pub const CLONE_SECRET_PREFIX: &str = "bluegreen/clone/";

/// A parsed Secrets Manager `valueFrom`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretReference {
    /// The secret's ARN, without the JSON key and version parts.
    pub secret_id: String,
    /// The JSON key ECS extracts (the container sees only that field), if any.
    pub json_key: Option<String>,
    /// The version stage ECS reads (`AWSCURRENT` when absent).
    pub version_stage: Option<String>,
    /// The version id ECS reads, if pinned.
    pub version_id: Option<String>,
}

impl SecretReference {
    /// Parses `value_from`; an SSM parameter or anything else is refused with why.
    pub fn parse(value_from: &str) -> Result<Self, String> {
        let parts: Vec<&str> = value_from.split(':').collect();
        let is_secret = parts.len() >= 7
            && parts[0] == "arn"
            && parts[2] == "secretsmanager"
            && parts[5] == "secret"
            && !parts[6].is_empty();
        if !is_secret {
            let kind = if parts.get(2) == Some(&"ssm") || !value_from.starts_with("arn:") {
                "an SSM parameter"
            } else {
                "not a Secrets Manager secret"
            };
            return Err(format!(
                "its valueFrom {value_from} is {kind}; bluegreen re-points only Secrets Manager \
                 secrets (or use url_env / endpoint_env with a plain variable)"
            ));
        }
        if parts.len() > 10 {
            return Err(format!(
                "its valueFrom {value_from} has more parts than ARN:key:stage:id"
            ));
        }
        let part = |i: usize| {
            parts
                .get(i)
                .filter(|p| !p.is_empty())
                .map(|p| (*p).to_owned())
        };
        Ok(SecretReference {
            secret_id: parts[..7].join(":"),
            json_key: part(7),
            version_stage: part(8),
            version_id: part(9),
        })
    }

    /// The secret's name: the ARN's last part, with the six characters Secrets Manager adds
    /// after a `-` when `full` (a partial ARN has none).
    fn name(&self, full: bool) -> &str {
        let name = self.secret_id.rsplit(':').next().unwrap_or_default();
        match name.rsplit_once('-') {
            Some((base, suffix)) if full && suffix.len() == 6 => base,
            _ => name,
        }
    }

    /// Whether `other` names the same secret: the same ARN, or one a partial ARN (without
    /// the random suffix) of the other.
    pub fn same_secret(&self, other: &SecretReference) -> bool {
        if self.secret_id == other.secret_id {
            return true;
        }
        let prefix = |id: &str| id.rsplit_once(':').map(|(p, _)| p.to_owned());
        prefix(&self.secret_id) == prefix(&other.secret_id)
            && (self.name(true) == other.name(false) || self.name(false) == other.name(true))
    }

    /// Whether `value_from` reads this secret through SSM's
    /// `/aws/reference/secretsmanager/<name>` parameter.
    pub fn named_through_ssm(&self, value_from: &str) -> bool {
        value_from
            .split_once("/aws/reference/secretsmanager/")
            .is_some_and(|(_, name)| {
                let name = name.split(':').next().unwrap_or_default();
                name == self.name(true) || name == self.name(false)
            })
    }

    /// The same reference to the secret `arn` (its current version): what a re-pointed
    /// container reads — the same JSON key, if any.
    pub fn pointing_at(&self, arn: &str) -> String {
        match &self.json_key {
            Some(key) => format!("{arn}:{key}::"),
            None => arn.to_owned(),
        }
    }
}

/// Whether `value_from` references a secret bluegreen wrote for a clone.
pub fn is_clone_secret(value_from: &str) -> bool {
    value_from.contains(&format!(":secret:{CLONE_SECRET_PREFIX}"))
}

/// The per-deployment secret's name for the clone `clone_identifier` of `service`: one path
/// segment per service, so a service's task execution role can be let read only its own
/// clones' secrets (`bluegreen/clone/<service>/*`) — they hold production's credentials.
pub fn clone_secret_name(service: &str, clone_identifier: &str) -> String {
    format!("{CLONE_SECRET_PREFIX}{service}/{clone_identifier}")
}

/// The clone a clone secret's name is for (its last path segment).
pub fn clone_of_secret(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:shop/db-AbCdEf";

    #[test]
    fn a_full_arn_with_and_without_its_key_and_version() {
        let plain = SecretReference::parse(ARN).unwrap();
        assert_eq!(plain.secret_id, ARN);
        assert_eq!(plain.json_key, None);
        let keyed = SecretReference::parse(&format!("{ARN}:host:AWSPREVIOUS:")).unwrap();
        assert_eq!(keyed.secret_id, ARN);
        assert_eq!(keyed.json_key.as_deref(), Some("host"));
        assert_eq!(keyed.version_stage.as_deref(), Some("AWSPREVIOUS"));
        assert_eq!(keyed.version_id, None);
        let clone = "arn:aws:secretsmanager:eu-west-1:1:secret:bluegreen/clone/bg-x-Zz";
        assert_eq!(keyed.pointing_at(clone), format!("{clone}:host::"));
        assert_eq!(plain.pointing_at(clone), clone);
        assert!(is_clone_secret(&keyed.pointing_at(clone)));
        assert!(!is_clone_secret(ARN));
    }

    #[test]
    fn a_full_and_a_partial_arn_name_the_same_secret_and_ssm_references_are_seen() {
        let full = SecretReference::parse(ARN).unwrap();
        let partial =
            SecretReference::parse("arn:aws:secretsmanager:eu-west-1:123456789012:secret:shop/db")
                .unwrap();
        let other = SecretReference::parse(
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:shop/db-replica-Zz9Yy8",
        )
        .unwrap();
        assert!(full.same_secret(&partial) && partial.same_secret(&full));
        assert!(!full.same_secret(&other) && !partial.same_secret(&other));
        assert!(full.named_through_ssm("/aws/reference/secretsmanager/shop/db"));
        assert!(full.named_through_ssm(
            "arn:aws:ssm:eu-west-1:123456789012:parameter/aws/reference/secretsmanager/shop/db"
        ));
        assert!(!full.named_through_ssm("/aws/reference/secretsmanager/shop/other"));
    }

    #[test]
    fn ssm_parameters_and_other_values_are_refused_naming_what_they_are() {
        for (value, says) in [
            ("/shop/db-host", "SSM parameter"),
            (
                "arn:aws:ssm:eu-west-1:1:parameter/shop/db-host",
                "SSM parameter",
            ),
            ("arn:aws:s3:::bucket/key", "not a Secrets Manager secret"),
        ] {
            let err = SecretReference::parse(value).unwrap_err();
            assert!(err.contains(says), "{value}: {err}");
        }
    }
}
