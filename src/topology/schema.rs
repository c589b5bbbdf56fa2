//! The JSON Schema of topology files, for editors and CI linting
//! (`warren schema topology`). Generated from the raw structs, so it cannot
//! drift from what the loader accepts; their doc comments are its descriptions.

use super::load::raw::RawTopology;

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

    fn yaml_as_json(text: &str) -> serde_json::Value {
        serde_yaml::from_str(text).expect("valid YAML")
    }

    #[test]
    fn the_examples_validate_against_the_schema() {
        let validator = jsonschema::validator_for(&json_schema()).expect("the schema is a valid JSON Schema");
        for name in ["seed", "registration", "orders"] {
            let path = format!("{}/topologies/{name}.yaml", env!("CARGO_MANIFEST_DIR"));
            let example = yaml_as_json(&std::fs::read_to_string(&path).expect("example exists"));
            let errors: Vec<String> = validator.iter_errors(&example).map(|e| e.to_string()).collect();
            assert!(errors.is_empty(), "{name}: {errors:?}");
        }
    }

    #[test]
    fn the_schema_rejects_what_the_loader_rejects() {
        let validator = jsonschema::validator_for(&json_schema()).expect("the schema is a valid JSON Schema");
        for bad in [
            "vhosts: { /: { queues: { q: { durabel: true } } } }",
            "vhosts: { /: { queues: { q: { durable: yes } } } }",
            "vhosts: { /: { bindings: [ { queue: q } ] } }",
            "users: { u: { permissions: { /: { configure: '.*' } } } }",
            "vhost: {}",
        ] {
            assert!(!validator.is_valid(&yaml_as_json(bad)), "{bad}");
        }
    }
}
