//! The JSON Schema of topology files, for editors and CI linting
//! (`warren schema topology`). Generated from the raw structs, so it cannot
//! drift from what the loader accepts; their doc comments are its descriptions.

use super::raw::RawTopology;

/// The JSON Schema (draft 2020-12) of a topology file.
pub fn json_schema() -> serde_json::Value {
    schemars::schema_for!(RawTopology).to_value()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_every_top_level_key_and_rejects_others() {
        let schema = json_schema();
        assert_eq!(schema["title"], "warren topology");
        assert_eq!(schema["additionalProperties"], false);
        let properties = schema["properties"].as_object().expect("properties");
        assert_eq!(properties.keys().collect::<Vec<_>>(), ["vhosts", "users"]);
    }
}
