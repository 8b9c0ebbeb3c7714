//! How a task's database setting is pointed at a clone: a bare host (`database.endpoint_env`,
//! `DATABASE_HOST=shop-db.prod.internal`) is replaced, a URL (`database.url_env`,
//! `DATABASE_URL=postgres://app:pw@shop-db.prod.internal:5432/shop`, also `jdbc:` URLs) keeps
//! everything but its host. Pure. Values may hold passwords: they never appear in an error.

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
}
