//! `bluegreen init --local`: the stack's tables, secret and topic in a local emulator (see
//! `bluegreen_ops::install`), printed as `export` lines so `eval "$(bluegreen init --local)"`
//! points the next commands at them.

use std::process::ExitCode;

use bluegreen::Context;
use bluegreen_ops::install;

use crate::output::Output;

/// `bluegreen init --local`.
pub async fn run(out: Output, local: bool) -> ExitCode {
    if !local {
        return crate::usage(
            "init creates resources only with --local (a local emulator); in an AWS account, \
             deploy the stack (docs/deploy.md)",
        );
    }
    let ctx = Context::from_env().await;
    match install::init_local(&ctx).await {
        Ok(installed) => out.show(&installed, |i| {
            for (table, created) in &i.tables {
                let what = if *created { "created" } else { "already there" };
                errln!("table {table}: {what}");
            }
            errln!("topic {}", i.topic_arn);
            let what = if i.link_secret.1 {
                "created"
            } else {
                "already there"
            };
            errln!("link secret {}: {what}", i.link_secret.0);
            for (name, value) in &i.environment {
                outln!("export {name}={value}");
            }
        }),
        Err(e) => out.error(&e),
    }
}
