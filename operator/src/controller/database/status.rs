//! `status` of a `Database` (pure): the conditions of what its reconcile found, with the
//! Secret name and the credentials record beside them.

use std::time::Duration;

use super::super::Report;
use super::super::credentials::{self, KeepsLogins, Reasons, Rotation};
use super::validate::Input;
use crate::crd::Database;

impl KeepsLogins for Database {
    const REASONS: Reasons = (
        "ClusterNotFound",
        "WaitingForCluster",
        "PostgresUnavailable",
    );
}

/// The role and database exist and the Secret holds the active login.
pub fn ready(db: &Database, input: &Input, rotation: &Rotation, resync: Duration) -> Report {
    let message = format!(
        "database {} owned by {}, login {}",
        db.spec.database_name, db.spec.owner, rotation.creds.active
    );
    credentials::ready((db, &input.secret), message, rotation, resync)
}

/// The note of the Event of a finished rotation.
pub fn rotated(rotation: &Rotation) -> Option<String> {
    let active = &rotation.creds.active;
    (rotation.finished.as_ref())
        .map(|old| format!("login {old} disabled; the Secret holds {active}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::database::Credentials;
    use kube::runtime::controller::Action;
    use serde_json::json;

    fn db() -> Database {
        let spec =
            json!({"clusterRef": {"name": "pg"}, "databaseName": "pay", "owner": "payments"});
        let mut db: Database = crate::fixtures::stored("pay-db", spec);
        db.status = serde_json::from_value(json!({"secretName": "old-secret"})).ok();
        db
    }

    #[test]
    fn reports_before_the_server_keep_the_previous_fields() {
        let reasons = (
            "ClusterNotFound",
            "WaitingForCluster",
            "PostgresUnavailable",
        );
        assert_eq!(Database::REASONS, reasons);
        let kept = json!({"secretName": "old-secret"});
        credentials::check_reports_before_the_server(&db(), [], &kept);
    }

    #[test]
    fn ready_names_the_login_and_polls_while_rotating() {
        let input = super::super::validate::validate(&db());
        let mut rotation = Rotation {
            creds: Credentials {
                active: "payments_b".into(),
                ..Credentials::default()
            },
            password: "pw".into(),
            changes: Vec::new(),
            rotating: None,
            started: false,
            finished: Some("payments".into()),
        };
        let resync = Duration::from_secs(300);
        let r = ready(&db(), &input, &rotation, resync);
        assert!(r.cond("Ready").status);
        assert_eq!(
            r.cond("Ready").message,
            "database pay owned by payments, login payments_b"
        );
        assert_eq!(r.extra["secretName"], "pay-db-credentials");
        assert_eq!(r.extra["credentials"]["active"], "payments_b");
        assert_eq!(r.action, Action::requeue(resync));
        assert_eq!(
            rotated(&rotation).as_deref(),
            Some("login payments disabled; the Secret holds payments_b")
        );
        rotation.rotating = Some("waiting for pay".into());
        let r = ready(&db(), &input, &rotation, resync);
        assert_eq!(r.action, Action::requeue(credentials::ROTATION_POLL));
    }
}
