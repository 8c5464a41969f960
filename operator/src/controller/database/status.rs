//! `status` of a `Database` (pure): the conditions of what its reconcile found, with the
//! Secret name and the credentials record beside them.

use std::time::Duration;

use serde_json::Value;

use super::super::credentials::{self, Rotation, Unready, status_extra};
use super::super::{Report, Stop};
use super::validate::Input;
use crate::crd::Database;
use crate::crd::database::Credentials;

/// The status fields: the Secret name and the credentials record, the new ones or else the
/// ones the status has.
fn fields(db: &Database, secret: Option<&str>, creds: Option<&Credentials>) -> Value {
    let prev = db.status.clone().unwrap_or_default();
    status_extra(secret, creds, prev.secret_name, prev.credentials)
}

/// The PostgresCluster it names does not exist (only a spec change helps) or is not ready
/// yet.
pub fn unready(db: &Database, u: Unready) -> Stop {
    let cluster = format!("PostgresCluster {}", db.spec.cluster_ref.name);
    let reasons = ("ClusterNotFound", "WaitingForCluster");
    u.stop(&cluster, reasons, fields(db, None, None))
}

/// The server failed: unreachable, or it refused a statement.
pub fn unavailable(db: &Database, e: &impl std::fmt::Display, resync: Duration) -> Report {
    credentials::unavailable("PostgresUnavailable", e, fields(db, None, None), resync)
}

/// The role or database is another's: nothing was touched.
pub fn conflict(db: &Database, e: &impl std::fmt::Display, resync: Duration) -> Report {
    credentials::conflict(e, fields(db, None, None), resync)
}

/// The role and database exist and the Secret holds the active login.
pub fn ready(db: &Database, input: &Input, rotation: &Rotation, resync: Duration) -> Report {
    let message = format!(
        "database {} owned by {}, login {}",
        db.spec.database_name, db.spec.owner, rotation.creds.active
    );
    let fields = fields(db, Some(&input.secret), Some(&rotation.creds));
    credentials::ready(message, rotation, fields, resync)
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
        let resync = Duration::from_secs(300);
        let table = [
            (
                unready(&db(), Unready::Missing).into_report(),
                "ClusterNotFound",
                Action::await_change(),
            ),
            (
                unready(&db(), Unready::NotReady("not ready".into())).into_report(),
                "WaitingForCluster",
                Action::requeue(super::super::super::WAIT),
            ),
            (
                unavailable(&db(), &"refused", resync),
                "PostgresUnavailable",
                Action::requeue(super::super::super::WAIT),
            ),
            (
                conflict(&db(), &"role x is another's", resync),
                "Conflict",
                Action::requeue(resync),
            ),
        ];
        for (report, reason, action) in table {
            assert_eq!(report.cond("Ready").reason, reason);
            assert!(!report.cond("Ready").status);
            assert_eq!(report.action, action, "{reason}");
            assert_eq!(
                report.extra,
                json!({"secretName": "old-secret"}),
                "{reason}"
            );
        }
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
