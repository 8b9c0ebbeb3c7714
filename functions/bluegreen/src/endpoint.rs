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
/// names that say so themselves ([`carries_a_database_host`]).
const ADDRESS_KEYS: [&str; 7] = [
    "host",
    "hostname",
    "url",
    "uri",
    "dsn",
    "connection_string",
    "connectionstring",
];

/// A secret's value `current` with the database address it holds pointed at `host`. A JSON
/// object (RDS's format) gets every address field re-pointed (`host`, a `url`, a
/// `DATABASE_URL`-like key, and a URL under any other key that names production's database),
/// whichever key the task reads (`json_key`, which must be one of them) — another container
/// may read another key of the same secret; a plain value must be a URL. Everything else
/// (user, password, port, database, a `redis_url`) is kept. Fails closed: a value under an
/// address key that is neither a host nor a URL, or a production address still named anywhere
/// in the result (an `endpoint`, a reader endpoint, a nested object) is refused —
/// `production` lists the source database's own endpoints beside those the secret holds. An
/// error says why, naming keys but never values.
pub fn repointed_secret(
    current: &str,
    json_key: Option<&str>,
    host: &str,
    production: &[String],
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
    let mut production_hosts: Vec<String> =
        production.iter().map(|h| h.to_ascii_lowercase()).collect();
    let mut moved = moved_addresses(&fields, host, &mut production_hosts)?;
    moved.extend(moved_database_urls(&fields, host, &production_hosts)?);
    if let Some(key) = json_key
        && !moved.iter().any(|(k, _)| k == key)
    {
        return Err(match fields.get(key).and_then(|v| v.as_str()) {
            Some(_) => format!("field `{key}` holds neither a host nor a URL of the database"),
            None => format!("its JSON has no text field `{key}`"),
        });
    }
    if moved.is_empty() {
        let mut names: Vec<&str> = fields.keys().map(String::as_str).collect();
        names.sort_unstable();
        return Err(format!(
            "its JSON names no database host (keys: {}); expected `host` or a URL field",
            names.join(", ")
        ));
    }
    for (key, new) in moved {
        fields.insert(key, serde_json::Value::String(new));
    }
    let value = serde_json::Value::Object(fields);
    if let Some(path) = still_naming(&value, &production_hosts, "") {
        return Err(format!(
            "field `{path}` still names a production database address after the host fields \
             were re-pointed; bluegreen re-points `host` and URL fields only"
        ));
    }
    Ok(value.to_string())
}

/// `(key, new value)` for every field named for an address (`host`, `url`, `DATABASE_URL`…):
/// each must hold a host or a URL, whose host is production's (added to `production_hosts`).
fn moved_addresses(
    fields: &serde_json::Map<String, serde_json::Value>,
    host: &str,
    production_hosts: &mut Vec<String>,
) -> Result<Vec<(String, String)>, String> {
    let mut moved = Vec::new();
    for (key, value) in fields {
        let Some(value) = value.as_str().filter(|_| is_address_key(key)) else {
            continue;
        };
        let (old, new) = if is_url(value) {
            let old = url_host(value).map_err(|why| format!("field `{key}`: {why}"))?;
            let new =
                repointed(value, host, true).map_err(|why| format!("field `{key}`: {why}"))?;
            (old, new)
        } else if let Some((old, port)) = bare_host(value) {
            (old.to_ascii_lowercase(), format!("{host}{port}"))
        } else {
            return Err(format!(
                "field `{key}` holds neither a host nor a URL (a connection string?); \
                 bluegreen re-points only those"
            ));
        };
        production_hosts.push(old);
        moved.push((key.clone(), new));
    }
    Ok(moved)
}

/// `(key, new value)` for every URL under any other key that names production's database:
/// a `redis_url` or a `sentry_dsn` stays where it points.
fn moved_database_urls(
    fields: &serde_json::Map<String, serde_json::Value>,
    host: &str,
    production_hosts: &[String],
) -> Result<Vec<(String, String)>, String> {
    let mut moved = Vec::new();
    for (key, value) in fields {
        let Some(value) = value.as_str() else {
            continue;
        };
        if is_address_key(key) || !is_url(value) {
            continue;
        }
        if url_host(value).is_ok_and(|h| production_hosts.contains(&h)) {
            let new =
                repointed(value, host, true).map_err(|why| format!("field `{key}`: {why}"))?;
            moved.push((key.clone(), new));
        }
    }
    Ok(moved)
}

fn is_url(value: &str) -> bool {
    value.contains("://") || value.starts_with(JDBC)
}

/// The host a URL names (lowercase); an error without the value.
fn url_host(value: &str) -> Result<String, String> {
    let rest = value.strip_prefix(JDBC).unwrap_or(value);
    let parsed = Url::parse(rest).map_err(|e| format!("its value is not a URL ({e})"))?;
    parsed
        .host_str()
        .filter(|h| !h.is_empty())
        .map(str::to_ascii_lowercase)
        .ok_or_else(|| "its URL names no host".into())
}

/// `(host, ":port" or "")` when `value` is a bare host name, optionally with a port.
fn bare_host(value: &str) -> Option<(&str, &str)> {
    let (name, port) = match value.rsplit_once(':') {
        Some((name, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
            (name, &value[name.len()..])
        }
        _ => (value, ""),
    };
    let host_like = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_');
    host_like.then_some((name, port))
}

/// The path of the first string in `value` that names one of `hosts`.
fn still_naming(value: &serde_json::Value, hosts: &[String], path: &str) -> Option<String> {
    match value {
        serde_json::Value::String(text) => {
            let text = text.to_ascii_lowercase();
            hosts
                .iter()
                .any(|h| text.contains(h.as_str()))
                .then(|| path.to_owned())
        }
        serde_json::Value::Object(fields) => fields.iter().find_map(|(key, v)| {
            let path = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            still_naming(v, hosts, &path)
        }),
        serde_json::Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| still_naming(v, hosts, &format!("{path}[{i}]"))),
        _ => None,
    }
}

/// Whether a JSON key of a secret holds the database's address.
fn is_address_key(key: &str) -> bool {
    ADDRESS_KEYS.contains(&key.to_ascii_lowercase().as_str()) || carries_a_database_host(key)
}

/// Whether a variable's name says it holds a whole database address (a URL, DSN or connection
/// string), which names a host of its own.
/// Judged by whole words of the name (`FEEDBACK_URL` is no database): an address word with a
/// database word (`DATABASE_URL`, `DB_HOST`, `SPRING_DATASOURCE_URL`), or a name that is one by
/// itself (`PGHOST`, `DATABASEURL`, .NET's `ConnectionStrings__…`).
pub fn carries_a_database_host(name: &str) -> bool {
    let name = name.to_ascii_uppercase();
    let words: Vec<&str> = name.split(|c: char| !c.is_ascii_alphanumeric()).collect();
    let has = |list: &[&str]| words.iter().any(|w| list.contains(w));
    has(&[
        "PGHOST",
        "PGHOSTADDR",
        "DATABASEURL",
        "DATABASEHOST",
        "DBURL",
        "DBHOST",
        "CONNECTIONSTRINGS",
        "CONNECTIONSTRING",
    ]) || (has(&[
        "URL",
        "URI",
        "DSN",
        "CONNECTION",
        "CONN",
        "HOST",
        "HOSTNAME",
        "ENDPOINT",
    ]) && has(&[
        "DATABASE",
        "DB",
        "POSTGRES",
        "POSTGRESQL",
        "PG",
        "MYSQL",
        "MARIADB",
        "SQL",
        "JDBC",
        "RDS",
        "AURORA",
        "DATASOURCE",
    ]))
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
            serde_json::from_str(&repointed_secret(rds, None, CLONE, &[]).unwrap()).unwrap();
        assert_eq!(whole["host"], CLONE);
        assert_eq!(whole["password"], "s3cret");
        assert_eq!(whole["port"], 5432);
        let keyed: serde_json::Value =
            serde_json::from_str(&repointed_secret(rds, Some("host"), CLONE, &[]).unwrap())
                .unwrap();
        assert_eq!(keyed["host"], CLONE);
        assert_eq!(keyed["username"], "shop");

        let with_url =
            r#"{"url":"postgres://shop:s3cret@shop-db.prod.internal:5432/shop","other":"x"}"#;
        let value: serde_json::Value =
            serde_json::from_str(&repointed_secret(with_url, Some("url"), CLONE, &[]).unwrap())
                .unwrap();
        assert_eq!(
            value["url"],
            format!("postgres://shop:s3cret@{CLONE}:5432/shop")
        );
        assert_eq!(value["other"], "x");

        let url = "mysql://shop:s3cret@shop-db.prod.internal:3306/shop";
        assert_eq!(
            repointed_secret(url, None, CLONE, &[]).unwrap(),
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
            let err = repointed_secret(value, key, CLONE, &[]).unwrap_err();
            assert!(err.contains(says), "{value}: {err}");
            assert!(!err.contains("s3cret"), "the value is shown: {err}");
        }
    }

    /// Every address field is re-pointed, whichever key the setting reads: another container
    /// may read another key of the same secret.
    #[test]
    fn every_address_field_moves_whichever_key_the_setting_reads() {
        let secret = r#"{"host":"db.prod","port":5432,"url":"postgres://u:s3cret@db.prod:5432/shop","password":"s3cret"}"#;
        let value: serde_json::Value =
            serde_json::from_str(&repointed_secret(secret, Some("host"), CLONE, &[]).unwrap())
                .unwrap();
        assert_eq!(value["host"], CLONE);
        assert_eq!(
            value["url"],
            format!("postgres://u:s3cret@{CLONE}:5432/shop")
        );
        assert_eq!(value["password"], "s3cret");
        assert_eq!(value["port"], 5432);
        // A field no address key names that still holds production's host fails closed.
        let proxied = r#"{"host":"db.prod","proxy":"db.prod:6432"}"#;
        let err = repointed_secret(proxied, Some("host"), CLONE, &[]).unwrap_err();
        assert!(err.contains("field `proxy` still names"), "{err}");
        // The source's own endpoints count too: Aurora's reader endpoint is no other host.
        let aurora = r#"{"host":"x.cluster-abc.rds.amazonaws.com","reader_host":"x.cluster-ro-abc.rds.amazonaws.com"}"#;
        let reader = ["x.cluster-ro-abc.rds.amazonaws.com".to_owned()];
        let err = repointed_secret(aurora, None, CLONE, &reader).unwrap_err();
        assert!(err.contains("field `reader_host` still names"), "{err}");
        // A URL of another service stays; one naming the database moves.
        let mixed = r#"{"host":"db.prod","redis_url":"redis://cache.prod:6379","replica":"postgres://u:p@db.prod/shop"}"#;
        let value: serde_json::Value =
            serde_json::from_str(&repointed_secret(mixed, None, CLONE, &[]).unwrap()).unwrap();
        assert_eq!(value["redis_url"], "redis://cache.prod:6379");
        assert_eq!(value["replica"], format!("postgres://u:p@{CLONE}/shop"));
    }
}
