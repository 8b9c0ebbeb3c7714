//! How a task's database setting is pointed at a clone: a bare host (`database.endpoint_env`,
//! `DATABASE_HOST=shop-db.prod.internal`) is replaced, a URL (`database.url_env`,
//! `DATABASE_URL=postgres://app:pw@shop-db.prod.internal:5432/shop`, also `jdbc:` URLs) keeps
//! everything but its host, and a secret's value (`database.secret`: RDS's JSON with `host`,
//! one JSON key of it, or a URL) keeps everything but the host it names. Pure. Values may hold
//! passwords: they never appear in an error.

use url::Url;

/// URL parameters that name the server instead of the URL's host (libpq's `host`/`hostaddr`,
/// MySQL's `socket`, JDBC drivers' `serverName`, …).
const HOST_PARAMETERS: [&str; 7] = [
    "host",
    "hostaddr",
    "server",
    "servername",
    "socket",
    "unix_socket",
    "sockethost",
];

/// JDBC's prefix before an ordinary URL (`jdbc:postgresql://host:5432/db`).
const JDBC: &str = "jdbc:";

/// `current` (production's value of the setting) pointed at `host`: the host itself, or —
/// with `url = true` — the URL with its host replaced (user, password, port, database and
/// parameters kept). An error says why, without the value.
pub fn repointed(current: &str, host: &str, url: bool) -> Result<String, String> {
    if !url {
        return Ok(host.to_owned());
    }
    let (prefix, rest) = match current.strip_prefix(JDBC) {
        Some(rest) => (JDBC, rest),
        None => ("", current),
    };
    let mut parsed = Url::parse(rest).map_err(|e| format!("its value is not a URL ({e})"))?;
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("its URL names no host (a socket path or a file?)".into());
    }
    // libpq and most drivers prefer a host given as a parameter over the URL's: rewriting the
    // URL's host alone would leave pre-prod on production.
    if let Some(key) = parsed
        .query_pairs()
        .map(|(key, _)| key.to_ascii_lowercase())
        .find(|key| HOST_PARAMETERS.contains(&key.as_str()))
    {
        return Err(format!(
            "its URL also names a host in its `{key}` parameter, which the driver would use; \
             bluegreen rewrites only the URL's host"
        ));
    }
    parsed
        .set_host(Some(host))
        .map_err(|e| format!("the clone's host {host} does not fit its URL ({e})"))?;
    Ok(format!("{prefix}{parsed}"))
}

/// JSON keys (compared without case) that hold the database's address in a secret, beside
/// names that say so themselves ([`crate::revisions::carries_a_database_host`]).
const ADDRESS_KEYS: [&str; 7] = [
    "host",
    "hostname",
    "url",
    "uri",
    "dsn",
    "connection_string",
    "connectionstring",
];

/// A secret's value `current` with the database address it holds pointed at `host`. With
/// `json_key` (the `valueFrom` names one) the container reads only that field of a JSON
/// object; without, the app reads the whole value: a JSON object (every address field is
/// re-pointed: RDS's `host`, a `url`, …) or a URL. Everything else (user, password, port,
/// database, other fields) is kept. An error says why, naming keys but never values.
pub fn repointed_secret(
    current: &str,
    json_key: Option<&str>,
    host: &str,
) -> Result<String, String> {
    let parsed: Option<serde_json::Map<String, serde_json::Value>> =
        serde_json::from_str(current).ok();
    let Some(mut fields) = parsed else {
        if let Some(key) = json_key {
            return Err(format!(
                "its valueFrom reads JSON key `{key}`, but the secret holds no JSON object"
            ));
        }
        return repointed(current, host, true)
            .map_err(|why| format!("the secret is neither a JSON object nor a URL: {why}"));
    };
    let keys: Vec<String> = match json_key {
        Some(key) => vec![key.to_owned()],
        None => fields
            .keys()
            .filter(|key| is_address_key(key))
            .cloned()
            .collect(),
    };
    if keys.is_empty() {
        let mut names: Vec<&str> = fields.keys().map(String::as_str).collect();
        names.sort_unstable();
        return Err(format!(
            "its JSON names no database host (keys: {}); expected `host` or a URL field",
            names.join(", ")
        ));
    }
    for key in keys {
        let Some(serde_json::Value::String(value)) = fields.get(&key) else {
            return Err(format!("its JSON has no text field `{key}`"));
        };
        let new = if value.contains("://") || value.starts_with(JDBC) {
            repointed(value, host, true).map_err(|why| format!("field `{key}`: {why}"))?
        } else if is_address_key(&key) {
            host.to_owned()
        } else {
            return Err(format!(
                "field `{key}` holds neither a host nor a URL (its name says no address)"
            ));
        };
        fields.insert(key, serde_json::Value::String(new));
    }
    Ok(serde_json::Value::Object(fields).to_string())
}

/// Whether a JSON key of a secret holds the database's address.
fn is_address_key(key: &str) -> bool {
    ADDRESS_KEYS.contains(&key.to_ascii_lowercase().as_str())
        || crate::revisions::carries_a_database_host(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLONE: &str = "bg-shop-1a2b-preprod.abc.eu-west-1.rds.amazonaws.com";

    #[test]
    fn a_url_keeps_everything_but_its_host() {
        for (url, expected) in [
            (
                "postgres://app:s3cret@shop-db.prod.internal:5432/shop?sslmode=require",
                format!("postgres://app:s3cret@{CLONE}:5432/shop?sslmode=require"),
            ),
            (
                "mysql://app@shop-db.prod.internal/shop",
                format!("mysql://app@{CLONE}/shop"),
            ),
            (
                "jdbc:postgresql://shop-db.prod.internal:5432/shop",
                format!("jdbc:postgresql://{CLONE}:5432/shop"),
            ),
        ] {
            assert_eq!(repointed(url, CLONE, true).unwrap(), expected, "{url}");
        }
        assert_eq!(
            repointed("shop-db.prod.internal", CLONE, false).unwrap(),
            CLONE
        );
    }

    #[test]
    fn a_value_that_is_no_url_with_a_host_is_refused_without_showing_it() {
        for value in [
            "shop-db.prod.internal",
            "postgres:///shop?host=/var/run",
            "s3cret",
        ] {
            let err = repointed(value, CLONE, true).unwrap_err();
            assert!(!err.contains(value), "{err}");
        }
    }

    /// A host in a parameter wins over the URL's with libpq: refused, naming the parameter.
    #[test]
    fn a_url_naming_its_host_in_a_parameter_is_refused() {
        for url in [
            "postgres://app:pw@prod-db:5432/shop?hostaddr=10.0.1.5",
            "postgres://app:pw@prod-db/shop?sslmode=require&Host=prod-db",
        ] {
            let err = repointed(url, CLONE, true).unwrap_err();
            assert!(
                err.contains("parameter") && !err.contains("10.0.1.5"),
                "{err}"
            );
        }
    }

    #[test]
    fn a_secret_keeps_everything_but_the_host_it_names() {
        let rds = r#"{"username":"shop","password":"s3cret","engine":"postgres","host":"shop-db.prod.internal","port":5432,"dbname":"shop"}"#;
        let whole: serde_json::Value =
            serde_json::from_str(&repointed_secret(rds, None, CLONE).unwrap()).unwrap();
        assert_eq!(whole["host"], CLONE);
        assert_eq!(whole["password"], "s3cret");
        assert_eq!(whole["port"], 5432);
        let keyed: serde_json::Value =
            serde_json::from_str(&repointed_secret(rds, Some("host"), CLONE).unwrap()).unwrap();
        assert_eq!(keyed["host"], CLONE);
        assert_eq!(keyed["username"], "shop");

        let with_url =
            r#"{"url":"postgres://shop:s3cret@shop-db.prod.internal:5432/shop","other":"x"}"#;
        let value: serde_json::Value =
            serde_json::from_str(&repointed_secret(with_url, Some("url"), CLONE).unwrap()).unwrap();
        assert_eq!(
            value["url"],
            format!("postgres://shop:s3cret@{CLONE}:5432/shop")
        );
        assert_eq!(value["other"], "x");

        let url = "mysql://shop:s3cret@shop-db.prod.internal:3306/shop";
        assert_eq!(
            repointed_secret(url, None, CLONE).unwrap(),
            format!("mysql://shop:s3cret@{CLONE}:3306/shop")
        );
    }

    #[test]
    fn a_secret_without_an_address_is_refused_without_showing_a_value() {
        for (value, key, says) in [
            (
                r#"{"username":"shop","password":"s3cret"}"#,
                None,
                "keys: password, username",
            ),
            (
                r#"{"password":"s3cret"}"#,
                Some("password"),
                "neither a host nor a URL",
            ),
            (r#"{"host":"db"}"#, Some("url"), "no text field `url`"),
            ("s3cret", None, "neither a JSON object nor a URL"),
            ("s3cret", Some("host"), "no JSON object"),
        ] {
            let err = repointed_secret(value, key, CLONE).unwrap_err();
            assert!(err.contains(says), "{value}: {err}");
            assert!(!err.contains("s3cret"), "the value is shown: {err}");
        }
    }
}
