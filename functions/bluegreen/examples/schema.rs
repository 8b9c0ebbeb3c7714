//! Prints the JSON Schema of service configs (kept in `docs/service-config.schema.json`).

fn main() {
    println!(
        "{}",
        serde_json::to_string_pretty(&bluegreen::config::json_schema()).expect("schema serialises")
    );
}
