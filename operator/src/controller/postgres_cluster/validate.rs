//! `validate` of a `PostgresCluster` (pure): the provider, with the settings it needs.

use super::super::InvalidSpec;
use crate::crd::PostgresCluster;
use crate::crd::postgres_cluster::{ExternalPostgres, PostgresProvider};

/// The provider of a valid spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input<'a> {
    /// The operator's own StatefulSet.
    Builtin,
    /// An existing server.
    External(&'a ExternalPostgres),
    /// A CloudNativePG `Cluster`.
    CloudNativePg,
}

/// The provider of `pg`, or why the spec cannot work.
pub fn validate(pg: &PostgresCluster) -> Result<Input<'_>, InvalidSpec> {
    match (&pg.spec.provider, &pg.spec.external) {
        (PostgresProvider::Builtin, _) => Ok(Input::Builtin),
        (PostgresProvider::CloudNativePg, _) => Ok(Input::CloudNativePg),
        (PostgresProvider::External, Some(ext)) => Ok(Input::External(ext)),
        (PostgresProvider::External, None) => {
            Err(InvalidSpec("provider external needs spec.external".into()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn external_needs_its_settings() {
        let pg = |spec| crate::fixtures::stored::<PostgresCluster>("pg", spec);
        let ext = json!({"host": "db", "superuserSecretRef": {"name": "s", "key": "k"}});
        let table = [
            (json!({"provider": "builtin"}), Ok("builtin")),
            (json!({"provider": "cloudnative-pg"}), Ok("cnpg")),
            (
                json!({"provider": "external", "external": ext}),
                Ok("external db"),
            ),
            (
                json!({"provider": "external"}),
                Err("provider external needs spec.external"),
            ),
        ];
        for (spec, want) in table {
            let got = pg(spec.clone());
            let got = validate(&got).map(|input| match input {
                Input::Builtin => "builtin".to_owned(),
                Input::CloudNativePg => "cnpg".to_owned(),
                Input::External(e) => format!("external {}", e.host),
            });
            let want = want.map(str::to_owned).map_err(|e| InvalidSpec(e.into()));
            assert_eq!(got, want, "{spec}");
        }
    }
}
