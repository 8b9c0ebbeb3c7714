//! Writes `statemachine/deployment.asl.json` from the step registry (see
//! `bluegreen_statemachine::generate`). Run after changing the registry or the generator:
//! `cargo run -p bluegreen-statemachine --example generate`.

fn main() -> std::io::Result<()> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deployment.asl.json");
    std::fs::write(
        &path,
        bluegreen_statemachine::generate::deployment_definition(),
    )?;
    println!("wrote {}", path.display());
    Ok(())
}
