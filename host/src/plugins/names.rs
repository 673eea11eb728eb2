//! Plugin names: the only strings from a request that become part of a path
//! under the plugin tree, so they are parsed once into a type that cannot
//! hold a separator, `..`, or anything but `[a-z0-9_-]`.

use std::fmt;

use super::RegistryError;
use crate::runtime::Stage;

/// The built-in plugins, shipped inside the binary: their names are
/// reserved.
pub const BUILTINS: [(Stage, &str); 4] = [
    (Stage::Parser, "json-parser"),
    (Stage::Parser, "line-parser"),
    (Stage::Enricher, "default-enricher"),
    (Stage::Router, "default-router"),
];

/// `^[a-z][a-z0-9_-]{0,62}$`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PluginName(String);

impl PluginName {
    pub fn parse(s: &str) -> Result<PluginName, RegistryError> {
        let b = s.as_bytes();
        let ok = (1..=63).contains(&b.len())
            && b[0].is_ascii_lowercase()
            && b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_' || *c == b'-');
        if ok {
            Ok(PluginName(s.to_string()))
        } else {
            Err(RegistryError::BadName(s.chars().take(100).collect()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_builtin(&self) -> bool {
        is_builtin(&self.0)
    }
}

impl fmt::Display for PluginName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub fn is_builtin(name: &str) -> bool {
    BUILTINS.iter().any(|(_, b)| *b == name)
}

/// The name of a compiled plugin as the runtime reports it in errors:
/// `pii@v3` for version 3 of `pii`, or a built-in's bare name.
pub fn base_name(plugin: &str) -> &str {
    plugin.split('@').next().unwrap_or(plugin)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names() {
        for ok in ["pii", "a", "json-parser", "my_plugin-2", &"a".repeat(63)] {
            assert!(PluginName::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Pii",
            "1pii",
            "-pii",
            "..",
            "a/b",
            "a\\b",
            "/etc",
            "a\0",
            "a.b",
            "pii@v1",
            &"a".repeat(64),
        ] {
            assert!(
                matches!(PluginName::parse(bad), Err(RegistryError::BadName(_))),
                "{bad:?}"
            );
        }
        assert!(PluginName::parse("default-router").expect("valid").is_builtin());
        assert_eq!(base_name("pii@v3"), "pii");
        assert_eq!(base_name("json-parser"), "json-parser");
    }

    proptest! {
        // Whatever the string, a name that parses is one plain path
        // component of the allowed bytes.
        #[test]
        fn parsed_names_are_single_safe_components(s in "\\PC{0,80}|[a-z./\\\\%_-]{0,12}") {
            if let Ok(n) = PluginName::parse(&s) {
                let mut parts = std::path::Path::new(n.as_str()).components();
                prop_assert!(matches!(parts.next(), Some(std::path::Component::Normal(_))));
                prop_assert!(parts.next().is_none());
                prop_assert!(!n.as_str().contains(".."));
                prop_assert!(n.as_str().bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_' || c == b'-'));
            }
        }
    }
}
