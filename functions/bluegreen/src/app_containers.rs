//! Which containers of a task definition run the service's app — the ones a push updates.
//!
//! Real task definitions hold more than the app: a front proxy (nginx, envoy, oauth2-proxy)
//! that the load balancer targets, agents (Datadog, X-Ray, FireLens), and often a worker or
//! init container running the same app image with another command. The pushed digest belongs
//! in every container that runs the app's image and in no other: writing it into the proxy
//! replaces the proxy with the app; leaving the worker behind runs two releases in one task.
//!
//! By default the app's containers are those whose image comes from `source.repository` (in
//! any registry: the source, a replica, a pull-through mirror of the same path), and the
//! config's `container` — the one migrations run in and whose database setting is re-pointed —
//! must be one of them. `containers = [...]` names them instead. Pure: the callers read the
//! task definition.

use crate::config::ServiceConfig;

/// A container as this decision needs it: its name and its image reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Named<'a> {
    /// The container's name.
    pub name: &'a str,
    /// Its image reference, as the task definition has it.
    pub image: &'a str,
}

/// The repository path of an image reference: the registry host, the tag and the digest
/// dropped (`123….dkr.ecr.us-east-1.amazonaws.com/shop/web:v1@sha256:…` → `shop/web`,
/// `nginx:1.27` → `nginx`). As Docker reads a reference, the first path segment is a registry
/// host only when it has a `.` or a `:` or is `localhost`.
pub fn repository_of(image: &str) -> &str {
    let reference = image.split_once('@').map_or(image, |(r, _)| r);
    let path = match reference.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            rest
        }
        _ => reference,
    };
    // A tag is a `:` after the last `/` (a host's port was dropped above).
    let last = path.rfind('/').map_or(0, |i| i + 1);
    match path[last..].find(':') {
        Some(colon) => &path[..last + colon],
        None => path,
    }
}

/// Whether `image` is an image of the ECR repository named `repository`.
pub fn runs_image_of(image: &str, repository: &str) -> bool {
    repository_of(image) == repository
}

/// The names of the containers that get the pushed image, in the task definition's order, or
/// why there is no safe answer (a config problem the caller reports as such): a named container
/// that does not exist, or — by default — a `container` whose image is not the app's.
/// `definition` names the task definition in messages.
pub fn app_containers(
    config: &ServiceConfig,
    containers: &[Named<'_>],
    definition: &str,
) -> Result<Vec<String>, String> {
    let names = || {
        containers
            .iter()
            .map(|c| c.name)
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !config.containers.is_empty() {
        let missing: Vec<&String> = config
            .containers
            .iter()
            .filter(|name| !containers.iter().any(|c| c.name == name.as_str()))
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "containers: {missing:?} not in task definition {definition} (it has {})",
                names()
            ));
        }
        return Ok(containers
            .iter()
            .filter(|c| config.containers.iter().any(|n| n == c.name))
            .map(|c| c.name.to_owned())
            .collect());
    }
    let repository = &config.source.repository;
    let from_source: Vec<String> = containers
        .iter()
        .filter(|c| runs_image_of(c.image, repository))
        .map(|c| c.name.to_owned())
        .collect();
    let Some(main) = containers.iter().find(|c| c.name == config.container) else {
        return Err(format!(
            "container: {:?} is not a container of task definition {definition} (it has {})",
            config.container,
            names()
        ));
    };
    if !from_source.iter().any(|n| n == main.name) {
        let instead = if from_source.is_empty() {
            format!(
                "no container of it runs an image of {repository}; name the containers the \
                 push updates in `containers`"
            )
        } else {
            format!(
                "set `container` to the app's container ({})",
                from_source.join(", ")
            )
        };
        return Err(format!(
            "container: {:?} of task definition {definition} runs {}, not an image of \
             source.repository {repository} (a proxy or agent sidecar would be replaced by \
             the app); {instead}",
            main.name, main.image
        ));
    }
    Ok(from_source)
}

/// The value `image_env` variables are set to: the pushed tag, or the digest for a push
/// without one (`deploy --digest`).
pub fn version_label(tag: &str, digest: &str) -> String {
    if tag.is_empty() {
        digest.to_owned()
    } else {
        tag.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const APP: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/shop/web:v1";

    fn config(container: &str, containers: &[&str]) -> ServiceConfig {
        let mut c = ServiceConfig::from_toml(include_str!("../../../docs/example-service.toml"))
            .expect("the documented example parses");
        c.container = container.into();
        c.source.repository = "shop/web".into();
        c.containers = containers.iter().map(|s| s.to_string()).collect();
        c
    }

    fn task() -> Vec<Named<'static>> {
        vec![
            Named {
                name: "proxy",
                image: "public.ecr.aws/envoyproxy/envoy:v1.31",
            },
            Named {
                name: "web",
                image: APP,
            },
            Named {
                name: "datadog",
                image: "datadog/agent:7",
            },
            Named {
                name: "worker",
                image: "123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop/web@sha256:ab",
            },
        ]
    }

    #[test]
    fn an_image_reference_names_its_repository_without_host_tag_or_digest() {
        for (image, repository) in [
            (APP, "shop/web"),
            (
                "123456789012.dkr.ecr.us-east-1.amazonaws.com/shop/web@sha256:ab",
                "shop/web",
            ),
            (
                "123456789012.dkr.ecr.us-east-1.amazonaws.com/shop/web:v1@sha256:ab",
                "shop/web",
            ),
            ("nginx:1.27", "nginx"),
            ("nginx", "nginx"),
            ("datadog/agent:7", "datadog/agent"),
            ("localhost:5000/shop/web:v1", "shop/web"),
            ("registry.local:5000/shop/web", "shop/web"),
            ("public.ecr.aws/envoyproxy/envoy:v1.31", "envoyproxy/envoy"),
        ] {
            assert_eq!(repository_of(image), repository, "{image}");
        }
        assert!(!runs_image_of(
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/shop/web-proxy:v1",
            "shop/web"
        ));
    }

    #[test]
    fn by_default_every_container_running_the_source_image_is_the_app() {
        let got = app_containers(&config("web", &[]), &task(), "shop:7").unwrap();
        assert_eq!(got, ["web", "worker"]);
    }

    #[test]
    fn a_container_that_is_a_sidecar_is_refused_naming_the_app_containers() {
        let err = app_containers(&config("proxy", &[]), &task(), "shop:7").unwrap_err();
        assert!(err.contains("\"proxy\""), "{err}");
        assert!(err.contains("envoyproxy/envoy:v1.31"), "{err}");
        assert!(err.contains("(web, worker)"), "{err}");
        let mut only_sidecars = task();
        only_sidecars.retain(|c| c.name == "proxy" || c.name == "datadog");
        let err = app_containers(&config("proxy", &[]), &only_sidecars, "shop:7").unwrap_err();
        assert!(err.contains("name the containers"), "{err}");
        let err = app_containers(&config("app", &[]), &task(), "shop:7").unwrap_err();
        assert!(err.contains("not a container"), "{err}");
    }

    #[test]
    fn named_containers_are_taken_as_named_and_must_exist() {
        let got = app_containers(&config("web", &["web", "datadog"]), &task(), "shop:7").unwrap();
        assert_eq!(got, ["web", "datadog"]);
        let err = app_containers(&config("web", &["web", "api"]), &task(), "shop:7").unwrap_err();
        assert!(err.contains("\"api\""), "{err}");
    }

    #[test]
    fn the_version_label_is_the_tag_or_else_the_digest() {
        assert_eq!(version_label("v2", "sha256:ab"), "v2");
        assert_eq!(version_label("", "sha256:ab"), "sha256:ab");
    }
}
