//! `validate` of a `Database` (pure): the names its reconcile works with. The CRD's schema
//! already refuses what could not work (identifiers outside `^[a-z_][a-z0-9_]*$`), so nothing
//! is refused here.

use kube::{Resource, ResourceExt};

use super::build::{second_login, secret_name};
use crate::crd::Database;

/// What the rest of the pipeline reads of the spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    /// The resource's uid, its mark on the server.
    pub uid: String,
    /// The blue/green login pair: the owner role and `<owner>_b`.
    pub pair: (String, String),
    /// The connection Secret.
    pub secret: String,
}

/// The input of `db`'s reconcile.
pub fn validate(db: &Database) -> Input {
    let owner = db.spec.owner.clone();
    Input {
        uid: db.meta().uid.clone().unwrap_or_default(),
        pair: (owner.clone(), second_login(&owner)),
        secret: secret_name(&db.name_any()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_input_names_the_pair_and_the_secret() {
        let spec =
            json!({"clusterRef": {"name": "pg"}, "databaseName": "pay", "owner": "payments"});
        let input = validate(&crate::fixtures::stored::<Database>("pay-db", spec));
        assert_eq!(input.uid, "uid-pay-db");
        assert_eq!(input.pair, ("payments".into(), "payments_b".into()));
        assert_eq!(input.secret, "pay-db-credentials");
    }
}
