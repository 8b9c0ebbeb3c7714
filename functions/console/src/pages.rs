//! The console's HTML: plain server-rendered pages (maud escapes every value) with a little CSS
//! that reads on a phone. No scripts.

use bluegreen::db_plan;
use bluegreen::record::{ApprovalState, Deployment, LogLocation, Status};
use bluegreen::steps::registry;
use maud::{DOCTYPE, Markup, PreEscaped, html};

const STYLE: &str = "
body{font:16px/1.45 system-ui,sans-serif;margin:0;background:#f5f6f8;color:#1c2330}
header{background:#1f3b57;color:#fff;padding:.8rem 1rem}header a{color:#fff;text-decoration:none;font-weight:600}
main{max-width:52rem;margin:0 auto;padding:1rem}
section{background:#fff;border-radius:.5rem;padding:1rem;margin:0 0 1rem;box-shadow:0 1px 2px #0002}
h1{font-size:1.3rem;margin:.2rem 0 1rem}h2{font-size:1.05rem;margin:0 0 .6rem}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.3rem .8rem;margin:0}dt{color:#5a6472}dd{margin:0;overflow-wrap:anywhere}
code{font-size:.85em;overflow-wrap:anywhere}
table{width:100%;border-collapse:collapse;font-size:.9rem}td,th{text-align:left;padding:.35rem .3rem;border-bottom:1px solid #e3e6ea;vertical-align:top}
.status{display:inline-block;padding:.05rem .5rem;border-radius:1rem;font-size:.85rem;background:#e3e6ea}
.awaiting_approval{background:#ffe8a3}.succeeded{background:#c9f0d3}.aborted,.rolled_back{background:#f8cdcd}
.actions{display:flex;flex-wrap:wrap;gap:.8rem;align-items:flex-end}
.actions form{flex:1 1 14rem}
button{font:inherit;padding:.7rem 1.2rem;border:0;border-radius:.4rem;color:#fff;cursor:pointer;width:100%}
.approve{background:#1a7f37}.reject{background:#b42318}
textarea{font:inherit;width:100%;box-sizing:border-box;min-height:4rem;margin:.3rem 0}
.notice{border-left:4px solid #1f3b57}.refused{border-left:4px solid #b42318}
svg.chart{width:100%;height:auto;display:block;margin:0 0 1rem}
.legend{display:flex;flex-wrap:wrap;gap:.3rem 1rem;list-style:none;padding:0;margin:0 0 1rem;font-size:.85rem}
.swatch{display:inline-block;width:.8rem;height:.8rem;margin-right:.3rem;border-radius:.15rem;vertical-align:middle}
@media(max-width:30rem){dl{grid-template-columns:1fr}dt{font-weight:600}}
";

/// Every page, whole. maud escapes markup in every value; what it passes through (controls,
/// bidi overrides, invisible characters a record may quote) is then shown escaped
/// ([`bluegreen::text::lines`]): the page's own markup holds none of them, so only values
/// change, and the escapes hold no markup characters.
pub(crate) fn page(title: &str, body: Markup) -> Markup {
    let markup = page_markup(title, body).into_string();
    PreEscaped(bluegreen::text::lines(&markup).into_owned())
}

fn page_markup(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · bluegreen" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header { a href="/" { "bluegreen" } " · approval console" }
                main { (body) }
            }
        }
    }
}

pub(crate) fn status(status: Status) -> Markup {
    let name = serde_json::to_value(status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    html! { span class={ "status " (name) } { (name.replace('_', " ")) } }
}

pub(crate) fn time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// Pending and recent deployments (for an AWS-authenticated viewer; link holders only ever
/// see their own deployment).
pub fn list(pending: &[Deployment], recent: &[Deployment]) -> Markup {
    let row = |d: &Deployment| {
        html! {
            tr {
                td { a href={ "/deployments/" (d.deployment_id) } { (d.service) } }
                td { code { (d.image.tag) } }
                td { (status(d.status)) }
                td { (time(d.updated_at)) }
            }
        }
    };
    page(
        "Deployments",
        html! {
            section {
                h1 { "Awaiting approval" }
                @if pending.is_empty() {
                    p { "Nothing is waiting for a decision." }
                } @else {
                    table { tr { th { "Service" } th { "Tag" } th { "Status" } th { "Updated" } }
                        @for d in pending { (row(d)) } }
                }
            }
            section {
                p { a href="/metrics" { "Delivery metrics" } ": deployment frequency, lead time, change failure rate and time to restore, per service." }
            }
            section {
                h2 { "Recent deployments" }
                table { tr { th { "Service" } th { "Tag" } th { "Status" } th { "Updated" } }
                    @for d in recent { (row(d)) } }
            }
        },
    )
}

/// The CloudWatch console URL of a log group (and stream).
fn log_url(region: &str, log: &LogLocation) -> String {
    // The console's fragment wants each name URL-encoded twice; `/` is the only character of
    // ECS log names that needs it.
    let encode = |s: &str| s.replace('/', "$252F");
    let mut url = format!(
        "https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#logsV2:log-groups/log-group/{}",
        encode(&log.group)
    );
    if let Some(stream) = &log.stream {
        url.push_str(&format!("/log-events/{}", encode(stream)));
    }
    url
}

fn log_name(log: &LogLocation) -> String {
    match &log.stream {
        Some(stream) => format!("{}/{stream}", log.group),
        None => log.group.clone(),
    }
}

/// The hidden fields a decision form carries back: the link that authenticates it, and the
/// local console's CSRF token.
#[derive(Debug, Clone, Copy)]
pub struct FormFields<'a> {
    /// The signed link the page was opened with.
    pub link: Option<&'a str>,
    /// The local console's per-process token.
    pub csrf: Option<&'a str>,
}

/// One deployment's evidence, and the decision forms when it awaits one and this console takes
/// decisions (`form`); otherwise the CLI command that decides. An `operator` (an AWS
/// identity, who may call the operator API — never a link holder) is shown, on a deployment
/// that succeeded, the commands that deploy it again or roll back to it.
pub fn detail(
    d: &Deployment,
    viewer: &str,
    operator: bool,
    form: Option<FormFields<'_>>,
    region: Option<&str>,
) -> Markup {
    page(
        &format!("{} {}", d.service, d.image.tag),
        html! {
            (summary_section(d))
            (evidence_section(d, region))
            @if let Some(a) = &d.approval {
                (approval_section(d, a, viewer, form.as_ref()))
            }
            @if operator && d.status == Status::Succeeded {
                (release_actions(d))
            }
            (timeline_section(d))
        },
    )
}

/// The deployment at a glance: image, digest, the switch it makes, pre-prod's test URL.
fn summary_section(d: &Deployment) -> Markup {
    let test_url = d
        .target_slot()
        .ok()
        .and_then(|slot| d.config.slots.get(slot).test_url.clone())
        .or_else(|| d.config.health.test_url.clone());
    html! {
        section {
            h1 { (d.service) " → " code { (d.image.tag) } " " (status(d.status)) }
            dl {
                dt { "Deployment" } dd { code { (d.deployment_id) } }
                dt { "Image" } dd { code { (d.image.repository) ":" (d.image.tag) } }
                dt { "Digest" } dd { code { (d.image.digest) } }
                dt { "Pushed" } dd { (time(d.pushed_at)) }
                @if let (Some(live), Ok(target)) = (d.live_slot, d.target_slot()) {
                    dt { "Switch" } dd { (live) " (live) → " (target) " (pre-prod)" }
                }
                dt { "Test URL" } dd {
                    @if let Some(url) = &test_url { a href=(url) rel="noreferrer" { (url) } } @else { "—" }
                }
            }
        }
    }
}

/// What approvers decide on: health checks, the migration (and its log), the clone, what the
/// database plan does next.
fn evidence_section(d: &Deployment, region: Option<&str>) -> Markup {
    let migration = d
        .timeline
        .iter()
        .rev()
        .find(|e| e.step == registry::MIGRATE.name);
    html! {
        section {
            h2 { "Evidence" }
            dl {
                dt { "Health checks" } dd { (d.health_evidence.as_deref().unwrap_or("not recorded")) }
                dt { "Migration" } dd {
                    @match migration {
                        Some(e) => { (e.outcome.words()) ": " (e.detail) }
                        None => { "not run" }
                    }
                    @if let Some(log) = &d.migration_log {
                        br;
                        @match region {
                            Some(region) => { a href=(log_url(region, log)) rel="noreferrer" { "log: " (log_name(log)) } }
                            None => { "log: " code { (log_name(log)) } }
                        }
                    }
                }
                @if let Some(clone) = d.clones.first() {
                    dt { "Clone" } dd { (clone.purpose) ": " code { (clone.identifier) } }
                }
                dt { "Database" } dd class="database" { (db_plan::approver_note(d)) }
            }
        }
    }
}

/// The approval: its window, its decision, and (to a viewer who may decide) the form.
fn approval_section(
    d: &Deployment,
    a: &ApprovalState,
    viewer: &str,
    form: Option<&FormFields<'_>>,
) -> Markup {
    let hidden = |fields: &FormFields<'_>| {
        html! {
            @if let Some(link) = fields.link { input type="hidden" name="link" value=(link); }
            @if let Some(csrf) = fields.csrf { input type="hidden" name="csrf" value=(csrf); }
        }
    };
    let awaiting = d.status == Status::AwaitingApproval && a.decision.is_none();
    html! {
        section class="notice" {
            h2 { "Approval" }
            dl {
                dt { "Requested" } dd { (time(a.requested_at)) }
                dt { "Decide before" } dd { (time(a.expires_at)) }
                dt { "Approvers" } dd { (d.config.approval.approvers.join(", ")) }
                @if let Some(decision) = &a.decision {
                    dt { "Decision" } dd {
                        (decision) " by " (a.approver.as_deref().unwrap_or("?"))
                        " via " (a.channel.as_deref().unwrap_or("?"))
                        @if let Some(at) = a.decided_at { " at " (time(at)) }
                        @if let Some(reason) = &a.reason { ": " (reason) }
                    }
                }
            }
            @if let (true, Some(fields)) = (awaiting, form) {
                p { "You are deciding as " strong { (viewer) } "." }
                div class="actions" {
                    form method="post" action={ "/deployments/" (d.deployment_id) "/decision" } {
                        input type="hidden" name="decision" value="approve";
                        (hidden(fields))
                        button class="approve" type="submit" { "Approve and switch" }
                    }
                    form method="post" action={ "/deployments/" (d.deployment_id) "/decision" } {
                        input type="hidden" name="decision" value="reject";
                        (hidden(fields))
                        label for="reason" { "Reason for rejecting (required)" }
                        textarea id="reason" name="reason" required {}
                        button class="reject" type="submit" { "Reject" }
                    }
                }
            } @else if awaiting {
                p { "Decide with " code { "bluegreen approve " (d.deployment_id) } " or "
                    code { "bluegreen reject " (d.deployment_id) " --reason …" }
                    ": against AWS, decisions go through the operator API." }
            }
        }
    }
}

/// Every step the deployment went through, in order.
fn timeline_section(d: &Deployment) -> Markup {
    html! {
        section {
            h2 { "Timeline" }
            table {
                tr { th { "When" } th { "Step" } th { "Outcome" } th { "Detail" } }
                @for e in &d.timeline {
                    tr { td { (time(e.at)) } td { (registry::label(&e.step)) } td { (e.outcome.words()) } td { (e.detail) } }
                }
            }
        }
    }
}

/// What an operator can do with a deployment that succeeded: send it through the full flow
/// again (a rollback to it, any time after the warm window), or deploy its image on the
/// service's current task definition. Commands, not buttons: they go through the operator API
/// as the person who runs them.
fn release_actions(d: &Deployment) -> Markup {
    html! {
        section class="release" {
            h2 { "Deploy again or roll back to this" }
            p { "Its image and task definition, through pre-prod, approval and the switch:" }
            p { code { "bluegreen rollback " (d.service) " --to " (d.deployment_id) } }
            p { "Its image on the service's current task definition:" }
            p { code { "bluegreen deploy " (d.service) " --digest " (d.image.digest) } }
        }
    }
}

/// The answer to a decision.
pub fn decided(d: &Deployment, approved: bool, sent_to_step_functions: bool) -> Markup {
    let next = if approved {
        match db_plan::plan(&d.config).after_approval {
            Some(_) => "The deployment continues: the new slot is made ready on production's \
                        database, then traffic switches."
                .to_owned(),
            None => "The deployment continues to the switch.".to_owned(),
        }
    } else {
        format!(
            "The deployment will be aborted; production traffic stays where it is. {}",
            db_plan::rejection_effect(d)
        )
    };
    page(
        "Decision recorded",
        html! {
            section class="notice" {
                h1 { @if approved { "Approved" } @else { "Rejected" } }
                p { (d.service) " " code { (d.image.tag) } " — " (next) }
                p { "Recorded for "
                    (d.approval.as_ref().and_then(|a| a.approver.as_deref()).unwrap_or("?"))
                    @if sent_to_step_functions { "; Step Functions has been told." } @else { "; the local runner picks it up." }
                }
                p { a href={ "/deployments/" (d.deployment_id) } { "Deployment page" } }
            }
        },
    )
}

/// Why a request changed nothing.
pub fn refusal(title: &str, message: &str) -> Markup {
    page(
        title,
        html! {
            section class="refused" {
                h1 { (title) }
                p { (message) }
                p { "Nothing was changed." }
            }
        },
    )
}
