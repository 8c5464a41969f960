//! `validate` of a `PostgresCluster` (pure): the provider, with the settings it needs.

use super::super::{InvalidSpec, provider};
use crate::crd::PostgresCluster;
use crate::crd::postgres_cluster::{ExternalPostgres, PostgresProvider};

/// The provider of a valid spec.
pub type Input<'a> = provider::Input<'a, ExternalPostgres>;

/// The provider of `pg`, or why the spec cannot work.
pub fn validate(pg: &PostgresCluster) -> Result<Input<'_>, InvalidSpec> {
    let wanted = &pg.spec.provider;
    let asks = (
        *wanted == PostgresProvider::External,
        *wanted == PostgresProvider::CloudNativePg,
    );
    provider::input(asks, pg.spec.external.as_ref())
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
            (json!({"provider": "cloudnative-pg"}), Ok("operator")),
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
            let got = provider::described(validate(&pg(spec.clone())), |e| &e.host);
            let want = want.map(str::to_owned).map_err(|e| InvalidSpec(e.into()));
            assert_eq!(got, want, "{spec}");
        }
    }
}
