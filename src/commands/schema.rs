//! `warren schema topology|scenario`: a JSON Schema for editors and CI linting.

use anyhow::Context;

use super::print_stdout;
use crate::bench::scenario;
use crate::cli::{SchemaArgs, SchemaKind};
use crate::outcome::Outcome;

/// `warren schema topology|scenario`: the JSON Schema on stdout.
pub fn run(args: SchemaArgs) -> anyhow::Result<Outcome> {
    let schema = match args.kind {
        SchemaKind::Topology => crate::topology::schema::json_schema(),
        SchemaKind::Scenario => schemars::schema_for!(scenario::raw::RawScenario).to_value(),
    };
    let text = serde_json::to_string_pretty(&readable_order(schema)).context("writing the schema as JSON")?;
    print_stdout(&text)?;
    Ok(Outcome::Success)
}

/// `$schema`, `title` and `description` first, as a reader expects them.
fn readable_order(schema: serde_json::Value) -> serde_json::Value {
    let serde_json::Value::Object(mut object) = schema else { return schema };
    let mut ordered = serde_json::Map::new();
    for key in ["$schema", "title", "description"] {
        if let Some(value) = object.remove(key) {
            ordered.insert(key.to_owned(), value);
        }
    }
    ordered.extend(object);
    serde_json::Value::Object(ordered)
}
