//! Blue/green credential rotation shared by `Database` and `Queue`: two logins (PostgreSQL
//! roles acting as the owner role, or RabbitMQ users with the same permissions) take turns.
//! A new value of the annotation [`ROTATE`] enables the idle one with a new password and
//! points the Secret at it; the old one keeps working until every AppService using the
//! Secret has rolled onto it, then it is disabled. The decisions are pure; reading the
//! AppServices and Deployments is I/O (Kubernetes API).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams};
use kube::{Client, Resource, ResourceExt};

use super::Result;
use crate::crd::AppService;
use crate::crd::database::Credentials;
use crate::meta::{OWNER_UID_LABEL, SECRETS_CHECKSUM};

/// Annotation whose every new value starts one rotation (`kubectl annotate pgdb/x
/// payplane.dev/rotate-credentials=$(date +%s) --overwrite`).
pub const ROTATE: &str = "payplane.dev/rotate-credentials";
/// Annotation `"true"`: take over an existing role, user or database that carries no owner
/// mark (one made by hand or by an operator before ownership marks).
pub const ADOPT: &str = "payplane.dev/adopt";

/// The value of annotation `key` of `obj`.
pub fn annotation<'a, K: Resource>(obj: &'a K, key: &str) -> Option<&'a str> {
    obj.meta()
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
}

/// What to do about the credentials in this reconcile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Keep the active login.
    Steady,
    /// Enable the idle login `to` and move the Secret onto it.
    Start {
        /// The login taking over.
        to: String,
    },
    /// A rotation waits for the AppServices to roll before `old` is disabled.
    Retiring {
        /// The login being retired.
        old: String,
    },
}

/// The other login of the pair `(first, second)`.
pub fn other(active: &str, first: &str, second: &str) -> String {
    if active == first {
        second.to_owned()
    } else {
        first.to_owned()
    }
}

/// Decides the step from the recorded credentials and the annotation (pure). A resource
/// without recorded credentials only records the annotation: it has nothing to rotate yet.
/// A new token during a rotation waits until that one finished.
pub fn step(recorded: Option<&Credentials>, token: Option<&str>, pair: (&str, &str)) -> Step {
    match recorded {
        None => Step::Steady,
        Some(c) => match &c.retiring {
            Some(old) => Step::Retiring { old: old.clone() },
            None if token.is_some() && token != c.rotation.as_deref() => Step::Start {
                to: other(&c.active, pair.0, pair.1),
            },
            None => Step::Steady,
        },
    }
}

/// Whether the second login of the pair takes part (pure): it is recorded as active or
/// retiring, the Secret holds it, or this step rotates onto it.
pub fn uses_second(
    recorded: Option<&Credentials>,
    next: &Step,
    secret_user: Option<&str>,
    second: &str,
) -> bool {
    recorded.is_some_and(|c| c.active == second || c.retiring.as_deref() == Some(second))
        || matches!(next, Step::Start { to } if to == second)
        || secret_user == Some(second)
}

/// Whether a Deployment runs a pod template other than the one with checksum `from`, with
/// that rollout finished: every replica updated and available, no old pod left (pure).
pub fn rolled(from: &str, d: &Deployment) -> bool {
    let now = d
        .spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.annotations.as_ref())
        .and_then(|a| a.get(SECRETS_CHECKSUM));
    let want = i64::from(d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1));
    let Some(st) = &d.status else {
        return false;
    };
    let n = |v: Option<i32>| i64::from(v.unwrap_or(0));
    now.is_some_and(|c| c != from)
        && st.observed_generation >= d.metadata.generation
        && n(st.updated_replicas) >= want
        && n(st.available_replicas) >= want
        && n(st.replicas) == n(st.updated_replicas)
}

/// The checksum of each Deployment of an AppService for which `uses` holds, by name. An
/// AppService that reloads `secret` itself, or has no Deployment yet, has no pod to wait for.
pub async fn rollout_checksums(
    client: &Client,
    ns: &str,
    secret: &str,
    uses: impl Fn(&AppService) -> bool,
) -> Result<BTreeMap<String, String>> {
    let apps = Api::<AppService>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await?;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let mut out = BTreeMap::new();
    for app in apps.items.iter().filter(|a| uses(a)) {
        if app.spec.reloads.iter().any(|r| r == secret) {
            continue;
        }
        let name = app.name_any();
        if let Some(d) = deployments.get_opt(&name).await? {
            let checksum = d
                .spec
                .as_ref()
                .and_then(|s| s.template.metadata.as_ref())
                .and_then(|m| m.annotations.as_ref())
                .and_then(|a| a.get(SECRETS_CHECKSUM))
                .cloned()
                .unwrap_or_default();
            out.insert(name, checksum);
        }
    }
    Ok(out)
}

/// The AppServices of `from` whose Deployment has not rolled yet (a deleted one has).
pub async fn pending(
    client: &Client,
    ns: &str,
    from: &BTreeMap<String, String>,
) -> Result<Vec<String>> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let mut out = Vec::new();
    for (name, checksum) in from {
        if let Some(d) = deployments.get_opt(name).await?
            && !rolled(checksum, &d)
        {
            out.push(name.clone());
        }
    }
    Ok(out)
}

/// The login (under `user_key`) and `password` of the Secret `name` when it is this resource's
/// (labelled with its uid): a Secret someone else wrote never lets a resource adopt a login.
pub async fn own_secret(
    client: &Client,
    ns: &str,
    name: &str,
    uid: &str,
    user_key: &str,
) -> Result<Option<(String, String)>> {
    let Some(secret) = Api::<Secret>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await?
    else {
        return Ok(None);
    };
    if secret.labels().get(OWNER_UID_LABEL).map(String::as_str) != Some(uid) {
        return Ok(None);
    }
    let data = secret.data.unwrap_or_default();
    let get = |k: &str| {
        data.get(k)
            .map(|v| String::from_utf8_lossy(&v.0).into_owned())
    };
    Ok(get(user_key).zip(get("password")))
}

/// The status fields beside the conditions: the Secret name and the credentials record, the
/// new ones or else the previous ones (a status apply without them would remove them).
pub fn status_extra(
    secret: Option<&str>,
    creds: Option<&Credentials>,
    prev_secret: Option<String>,
    prev_creds: Option<Credentials>,
) -> serde_json::Value {
    let mut extra = serde_json::Map::new();
    if let Some(s) = secret.map(str::to_owned).or(prev_secret) {
        extra.insert("secretName".into(), serde_json::json!(s));
    }
    if let Some(c) = creds.cloned().or(prev_creds) {
        extra.insert(
            "credentials".into(),
            serde_json::to_value(c).unwrap_or_default(),
        );
    }
    serde_json::Value::Object(extra)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn creds(active: &str, retiring: Option<&str>, rotation: Option<&str>) -> Credentials {
        Credentials {
            active: active.into(),
            retiring: retiring.map(Into::into),
            rotation: rotation.map(Into::into),
            rollout_from: BTreeMap::new(),
        }
    }

    #[test]
    fn a_new_token_starts_a_rotation_to_the_idle_login() {
        let pair = ("app", "app_b");
        assert_eq!(step(None, Some("1"), pair), Step::Steady);
        let c = creds("app", None, Some("1"));
        assert_eq!(step(Some(&c), Some("1"), pair), Step::Steady);
        assert_eq!(step(Some(&c), None, pair), Step::Steady);
        assert_eq!(
            step(Some(&c), Some("2"), pair),
            Step::Start { to: "app_b".into() }
        );
        let c = creds("app_b", None, Some("2"));
        assert_eq!(
            step(Some(&c), Some("3"), pair),
            Step::Start { to: "app".into() }
        );
    }

    #[test]
    fn the_second_login_counts_only_once_a_rotation_uses_it() {
        let c = creds("app", None, Some("1"));
        assert!(!uses_second(Some(&c), &Step::Steady, Some("app"), "app_b"));
        assert!(!uses_second(None, &Step::Steady, None, "app_b"));
        let start = Step::Start { to: "app_b".into() };
        assert!(uses_second(Some(&c), &start, Some("app"), "app_b"));
        let c = creds("app_b", Some("app"), Some("2"));
        assert!(uses_second(Some(&c), &Step::Steady, None, "app_b"));
        assert!(uses_second(None, &Step::Steady, Some("app_b"), "app_b"));
    }

    #[test]
    fn a_rotation_in_progress_finishes_before_the_next() {
        let c = creds("app_b", Some("app"), Some("2"));
        assert_eq!(
            step(Some(&c), Some("3"), ("app", "app_b")),
            Step::Retiring { old: "app".into() }
        );
    }

    fn deployment(checksum: &str, generation: i64, status: &serde_json::Value) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "pay", "generation": generation},
            "spec": {"replicas": 2, "selector": {},
                "template": {"metadata": {"annotations": {SECRETS_CHECKSUM: checksum}}}},
            "status": status,
        }))
        .unwrap()
    }

    #[test]
    fn rolled_needs_a_new_template_fully_rolled_out() {
        let done = json!({"observedGeneration": 3, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2});
        assert!(rolled("old", &deployment("new", 3, &done)));
        assert!(
            !rolled("new", &deployment("new", 3, &done)),
            "same template"
        );
        let old_pods_left = json!({"observedGeneration": 3, "replicas": 3, "updatedReplicas": 2, "availableReplicas": 2});
        assert!(!rolled("old", &deployment("new", 3, &old_pods_left)));
        let not_observed = json!({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2});
        assert!(!rolled("old", &deployment("new", 3, &not_observed)));
        let pending = json!({"observedGeneration": 3, "replicas": 3, "updatedReplicas": 1, "availableReplicas": 2});
        assert!(!rolled("old", &deployment("new", 3, &pending)));
    }

    #[test]
    fn status_extra_keeps_what_it_is_not_given() {
        let creds = Credentials::default();
        let fresh = status_extra(Some("s-new"), Some(&creds), Some("s-old".into()), None);
        assert_eq!(fresh["secretName"], "s-new");
        assert!(fresh.get("credentials").is_some());
        let kept = status_extra(None, None, Some("s-old".into()), Some(creds));
        assert_eq!(kept["secretName"], "s-old");
        assert!(kept.get("credentials").is_some());
        assert_eq!(status_extra(None, None, None, None), serde_json::json!({}));
    }
}
