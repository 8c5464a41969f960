//! Blue/green credential rotation shared by `Database` and `Queue`: two logins (PostgreSQL
//! roles acting as the owner role, or RabbitMQ users with the same permissions) take turns.
//! A new value of the annotation [`ROTATE`] enables the idle one with a new password and
//! points the Secret at it; the old one keeps working until every AppService using the
//! Secret has rolled onto it, then it is disabled. The decisions ([`Logins::decide`],
//! [`rotate`]) and the reports are pure; reading the Secret, AppServices and Deployments and
//! publishing the Secret is I/O (Kubernetes API).

use std::collections::BTreeMap;
use std::fmt::{Debug, Display};
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams};
use kube::core::ApiResource;
use kube::runtime::controller::Action;
use kube::{Client, Resource, ResourceExt};

use super::finalizer::Finalized;
use super::{
    Ctx, Error, Reconciled, Report, Result, Stop, WAIT, get, reading, sync_children, write_status,
};
use serde_json::Value;

use crate::conditions::{Observed, external_conditions, is_ready};
use crate::crd::database::Credentials;
use crate::crd::{AppService, ReclaimPolicy, RecordsLogins};
use crate::external::LoginChange;
use crate::meta::{Child, OWNER_UID_LABEL, SECRETS_CHECKSUM};

/// How often a rotation looks at the rollouts it waits for.
pub const ROTATION_POLL: Duration = Duration::from_secs(2);

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
        .await
        .map_err(reading(format!("the AppServices of {ns}")))?;
    let mut out = BTreeMap::new();
    for app in apps.items.iter().filter(|a| uses(a)) {
        if app.spec.reloads.iter().any(|r| r == secret) {
            continue;
        }
        let name = app.name_any();
        if let Some(d) = get::<Deployment>(client, ns, &name).await? {
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
    let mut out = Vec::new();
    for (name, checksum) in from {
        if let Some(d) = get::<Deployment>(client, ns, name).await?
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
    let Some(secret) = get::<Secret>(client, ns, name).await? else {
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

/// The logins of one reconcile, decided from the recorded credentials, the annotations and
/// the resource's own Secret (pure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logins {
    /// The pair `(first, second)` that takes turns.
    pub pair: (String, String),
    /// The value of [`ROTATE`].
    pub token: Option<String>,
    /// The credentials the status recorded.
    pub recorded: Option<Credentials>,
    /// The login and password the resource's own Secret holds.
    pub stored: Option<(String, String)>,
    /// What this reconcile does about the credentials.
    pub next: Step,
    /// Whether the second login takes part: until a rotation uses it, a resource whose own
    /// name it is (another's `<name>_b`) is no conflict, and it is not touched.
    pub uses_second: bool,
    /// Whether logins and objects without this resource's mark may be taken over: asked for
    /// with [`ADOPT`], or the Secret already holds one of the pair.
    pub adopt: bool,
}

impl Logins {
    /// Decides the logins of `obj` (pure).
    pub fn decide<K: Resource>(
        obj: &K,
        recorded: Option<Credentials>,
        pair: (String, String),
        stored: Option<(String, String)>,
    ) -> Self {
        let token = annotation(obj, ROTATE).map(str::to_owned);
        let next = step(recorded.as_ref(), token.as_deref(), (&pair.0, &pair.1));
        let secret_user = stored.as_ref().map(|(u, _)| u.as_str());
        let uses_second = uses_second(recorded.as_ref(), &next, secret_user, &pair.1);
        let adopt = annotation(obj, ADOPT) == Some("true")
            || secret_user.is_some_and(|u| u == pair.0 || u == pair.1);
        Self {
            pair,
            token,
            recorded,
            stored,
            next,
            uses_second,
            adopt,
        }
    }

    /// The credentials before this reconcile: the recorded ones, or a first record of the
    /// login the Secret holds.
    fn current(&self) -> Credentials {
        self.recorded.clone().unwrap_or_else(|| Credentials {
            active: self
                .stored
                .as_ref()
                .map(|(user, _)| user.clone())
                .filter(|u| *u == self.pair.1)
                .unwrap_or_else(|| self.pair.0.clone()),
            rotation: self.token.clone(),
            ..Credentials::default()
        })
    }
}

/// The step with what it waits for, read from the cluster ([`rollout`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rollout {
    /// Keep the active login.
    Steady,
    /// Rotate onto `to`; `from` holds the checksums of the Deployments that must roll.
    Start {
        /// The login taking over.
        to: String,
        /// Deployment name to its pod template's Secrets checksum.
        from: BTreeMap<String, String>,
    },
    /// Retire `old` once the AppServices in `left` have rolled.
    Retire {
        /// The login being retired.
        old: String,
        /// The AppServices that have not rolled yet.
        left: Vec<String>,
    },
}

/// Reads what the step of `logins` waits for (I/O): the rollouts a starting rotation will
/// wait for (recorded before the Secret changes, so a rollout it causes is never missed), or
/// those a retiring one still waits for.
pub async fn rollout(
    client: &Client,
    ns: &str,
    secret: &str,
    logins: &Logins,
    uses: impl Fn(&AppService) -> bool,
) -> Result<Rollout> {
    Ok(match &logins.next {
        Step::Steady => Rollout::Steady,
        Step::Start { to } => Rollout::Start {
            to: to.clone(),
            from: rollout_checksums(client, ns, secret, uses).await?,
        },
        Step::Retiring { old } => Rollout::Retire {
            old: old.clone(),
            left: pending(client, ns, &logins.current().rollout_from).await?,
        },
    })
}

/// The credentials after this reconcile and the login changes that get there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    /// The record to store in the status.
    pub creds: Credentials,
    /// The password of the active login, for the Secret.
    pub password: String,
    /// Logins to enable (with their new password) or disable on the server.
    pub changes: Vec<LoginChange>,
    /// A rotation starts in this reconcile.
    pub started: bool,
    /// What a rotation in progress waits for.
    pub rotating: Option<String>,
    /// The login a rotation retired in this reconcile.
    pub finished: Option<String>,
}

/// Decides the credentials (pure but for `new_password`). The password changes only when the
/// login is new or unusable (`usable` says whether the server has it enabled), the Secret was
/// lost, or a rotation starts. `noun` names a login in messages (`login`, `user`).
pub fn rotate(
    logins: &Logins,
    usable: impl Fn(&str) -> bool,
    rollout: Rollout,
    noun: &str,
    mut new_password: impl FnMut() -> String,
) -> Rotation {
    let mut creds = logins.current();
    let mut changes = Vec::new();
    let mut enable = |name: &str, changes: &mut Vec<LoginChange>| {
        let password = new_password();
        changes.push(LoginChange::Enable {
            name: name.to_owned(),
            password: password.clone(),
        });
        password
    };
    let mut password = match &logins.stored {
        Some((user, pw)) if *user == creds.active && usable(user) => pw.clone(),
        _ => enable(&creds.active, &mut changes),
    };
    let (mut rotating, mut started, mut finished) = (None, false, None);
    let waiting = |apps: Vec<&String>| {
        if apps.is_empty() {
            format!("retiring the old {noun}")
        } else {
            let names: Vec<&str> = apps.into_iter().map(String::as_str).collect();
            format!(
                "waiting for {} to roll onto the new credentials",
                names.join(", ")
            )
        }
    };
    match rollout {
        Rollout::Steady => {}
        Rollout::Start { to, from } => {
            password = enable(&to, &mut changes);
            rotating = Some(waiting(from.keys().collect()));
            creds = Credentials {
                retiring: Some(creds.active.clone()),
                active: to,
                rotation: logins.token.clone(),
                rollout_from: from,
            };
            started = true;
        }
        Rollout::Retire { old, left } if left.is_empty() => {
            changes.push(LoginChange::Disable { name: old.clone() });
            creds.retiring = None;
            creds.rollout_from.clear();
            finished = Some(old);
        }
        Rollout::Retire { left, .. } => rotating = Some(waiting(left.iter().collect())),
    }
    Rotation {
        creds,
        password,
        changes,
        started,
        rotating,
        finished,
    }
}

/// Moves the Secret onto the active login (I/O): a rotation that starts is recorded in the
/// status first (`started`), so a rollout the new Secret causes is never missed; then the
/// Secret is applied and the resource's other Secrets pruned, and a finished rotation is told
/// in an Event (`finished`).
pub async fn publish<K: super::Reconciled>(
    ctx: &Ctx,
    obj: &K,
    owner: (&str, &str),
    children: &[Child],
    started: Option<Report>,
    finished: Option<String>,
) -> Result<()> {
    if let Some(r) = started {
        write_status(ctx, obj, &r.conds, r.extra).await?;
    }
    let secrets = [ApiResource::erase::<Secret>(&())];
    sync_children(&ctx.client, owner, children, &secrets).await?;
    if let Some(note) = finished {
        ctx.event(obj, false, "CredentialsRotated", note).await;
    }
    Ok(())
}

/// Reasons of `Ready=False` when a server is missing (only a spec change helps), not ready
/// yet, or failing (unreachable, or refusing a request).
pub type Reasons = (&'static str, &'static str, &'static str);

/// A kind that keeps its logins on the server its spec names (`Database` on a
/// `PostgresCluster`, `Queue` on a `MessageBroker`): what its reports share.
pub trait KeepsLogins: Finalized + RecordsLogins {
    /// `(missing, waiting, unavailable)`, e.g. `ClusterNotFound`, `WaitingForCluster`,
    /// `PostgresUnavailable`.
    const REASONS: Reasons;
}

/// The status fields of `obj`: [`status_extra`] with the Secret name and credentials record
/// its status has.
pub fn fields<K: KeepsLogins>(obj: &K, secret: Option<&str>, creds: Option<&Credentials>) -> Value {
    let (prev_secret, prev_creds) = obj.recorded();
    status_extra(secret, creds, prev_secret, prev_creds)
}

/// One reconcile of a kind that keeps logins on a server, past finding the server: what each
/// of its steps (observe, ensure) reads.
pub struct Run<'a, K, I, S> {
    /// The object reconciled.
    pub obj: &'a K,
    /// The controller's context.
    pub ctx: &'a Ctx,
    /// Its namespace.
    pub ns: &'a str,
    /// Its validated spec.
    pub input: &'a I,
    /// Its server, ready.
    pub server: &'a S,
}

impl<'a, K, I, S> Run<'a, K, I, S> {
    /// The reconcile of `obj` in `ns` with its `input`, on its `server`.
    pub fn new(obj: &'a K, (ctx, ns): (&'a Ctx, &'a str), input: &'a I, server: &'a S) -> Self {
        Self {
            obj,
            ctx,
            ns,
            input,
            server,
        }
    }
}

/// How a pipeline that needs the server stops when it is [`Unready`]: `Ready=False` with the
/// reason `missing` (only a spec change helps) or `waiting`, keeping the status fields; or
/// failing.
pub fn unready<K: KeepsLogins>(obj: &K, u: Unready) -> Stop {
    let (missing, waiting, _) = K::REASONS;
    match u {
        Unready::Missing => {
            let message = format!("{} {} not found", K::Server::kind(&()), obj.server());
            let fields = fields(obj, None, None);
            Report::invalid(missing, message).with_extra(fields).into()
        }
        Unready::NotReady(why) => Report::waiting(waiting, why, fields(obj, None, None)).into(),
        Unready::Failed(e) => e.into(),
    }
}

/// `Ready=False`, `Degraded=True` with the server's error (reason `PostgresUnavailable` or
/// `BrokerUnavailable`); retried within [`WAIT`].
pub fn unavailable<K: KeepsLogins>(obj: &K, e: &impl Display, resync: Duration) -> Report {
    let observed = Observed::Unavailable {
        reason: K::REASONS.2,
        message: e.to_string(),
    };
    Report::new(
        external_conditions(&observed),
        fields(obj, None, None),
        Action::requeue(resync.min(WAIT)),
    )
}

/// `Ready=False`, reason `Conflict`: a login or object is another's; nothing was touched.
pub fn conflict<K: KeepsLogins>(obj: &K, e: &impl Display, resync: Duration) -> Report {
    let observed = Observed::Conflict(e.to_string());
    Report::new(
        external_conditions(&observed),
        fields(obj, None, None),
        Action::requeue(resync),
    )
}

/// `Ready=True` with `message`, and `Progressing=True` while `rotation` waits for rollouts,
/// which are then looked at every [`ROTATION_POLL`]; the status names the `secret`.
pub fn ready<K: KeepsLogins>(
    (obj, secret): (&K, &str),
    message: String,
    rotation: &Rotation,
    resync: Duration,
) -> Report {
    let fields = fields(obj, Some(secret), Some(&rotation.creds));
    let requeue = if rotation.rotating.is_some() {
        ROTATION_POLL
    } else {
        resync
    };
    let observed = Observed::Ready {
        message,
        rotating: rotation.rotating.clone(),
    };
    Report::new(
        external_conditions(&observed),
        fields,
        Action::requeue(requeue),
    )
}

/// Why the server a Database or Queue keeps its logins on cannot be used now.
#[derive(Debug)]
pub enum Unready {
    /// It does not exist.
    Missing,
    /// It is not ready, or not usable yet: why.
    NotReady(String),
    /// Reading it failed.
    Failed(Error),
}

impl From<Error> for Unready {
    fn from(e: Error) -> Self {
        Self::Failed(e)
    }
}

/// The server `name` (an `S`) in `ns`, once it exists and is ready.
pub async fn ready_server<S: Reconciled>(ctx: &Ctx, ns: &str, name: &str) -> Result<S, Unready> {
    let Some(server) = get::<S>(&ctx.client, ns, name).await? else {
        return Err(Unready::Missing);
    };
    if !is_ready(&server) {
        let why = format!("{} {name} is not ready", S::kind(&()));
        return Err(Unready::NotReady(why));
    }
    Ok(server)
}

/// Checks the reports before the server is used, for the kinds' status tests: `more` cases,
/// then `Missing`, `NotReady`, unavailable and conflict, with the kind's [`KeepsLogins::REASONS`]
/// and `Conflict`; each is `Ready=False`, with its action, and keeps the previous status
/// fields `kept` (tests).
#[cfg(test)]
pub fn check_reports_before_the_server<K: KeepsLogins>(
    obj: &K,
    more: impl IntoIterator<Item = (Report, &'static str, Action)>,
    kept: &Value,
) {
    let resync = Duration::from_secs(300);
    let (missing, waiting, failing) = K::REASONS;
    let not_ready = Unready::NotReady("not ready".into());
    let table = [
        (
            unready(obj, Unready::Missing).into_report(),
            missing,
            Action::await_change(),
        ),
        (
            unready(obj, not_ready).into_report(),
            waiting,
            Action::requeue(WAIT),
        ),
        (
            unavailable(obj, &"refused", resync),
            failing,
            Action::requeue(WAIT),
        ),
        (
            conflict(obj, &"x is another's", resync),
            "Conflict",
            Action::requeue(resync),
        ),
    ];
    for (report, reason, action) in more.into_iter().chain(table) {
        assert_eq!(report.cond("Ready").reason, reason);
        assert!(!report.cond("Ready").status, "{reason}");
        assert_eq!(report.action, action, "{reason}");
        assert_eq!(&report.extra, kept, "{reason}");
    }
}

/// On deletion of `obj`: keeps what it owns outside Kubernetes with `reclaimPolicy: Retain`
/// (`kept` names it), else runs `delete`, which says what it did (reason, warning, note);
/// either way says so in an Event.
pub async fn cleanup<K: Resource<DynamicType = ()>>(
    ctx: &Ctx,
    (obj, policy): (&K, &ReclaimPolicy),
    kept: String,
    delete: impl Future<Output = Result<(&'static str, bool, String)>>,
) -> Result<Action> {
    let (reason, warning, note) = match policy {
        ReclaimPolicy::Retain => (
            "Retained",
            false,
            format!("kept {kept} (reclaimPolicy Retain)"),
        ),
        ReclaimPolicy::Delete => delete.await?,
    };
    ctx.event(obj, warning, reason, note).await;
    Ok(Action::await_change())
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

    fn db(annotations: serde_json::Value) -> crate::crd::Database {
        let spec = json!({"clusterRef": {"name": "pg"}, "databaseName": "app", "owner": "app"});
        let mut db: crate::crd::Database = crate::fixtures::stored("app-db", spec);
        db.metadata.annotations = serde_json::from_value(annotations).ok();
        db
    }

    fn pair() -> (String, String) {
        ("app".into(), "app_b".into())
    }

    #[test]
    fn logins_follow_the_annotations_and_the_secret() {
        let stored = |u: &str| Some((u.to_owned(), "pw".to_owned()));
        let l = Logins::decide(&db(json!({})), None, pair(), None);
        assert_eq!(
            (l.next.clone(), l.uses_second, l.adopt),
            (Step::Steady, false, false)
        );
        let l = Logins::decide(&db(json!({ADOPT: "true"})), None, pair(), stored("other"));
        assert!(l.adopt && !l.uses_second);
        let l = Logins::decide(&db(json!({})), None, pair(), stored("app_b"));
        assert!(l.adopt && l.uses_second);
        assert_eq!(l.current().active, "app_b");
        let recorded = creds("app", None, Some("1"));
        let l = Logins::decide(
            &db(json!({ROTATE: "2"})),
            Some(recorded),
            pair(),
            stored("app"),
        );
        assert_eq!(l.next, Step::Start { to: "app_b".into() });
        assert!(l.uses_second && l.adopt);
        assert_eq!(l.token.as_deref(), Some("2"));
    }

    #[test]
    fn rotate_changes_passwords_only_when_needed() {
        let mut n = 0;
        let mut new_password = || {
            n += 1;
            format!("new{n}")
        };
        let enable = |name: &str, pw: &str| LoginChange::Enable {
            name: name.into(),
            password: pw.into(),
        };
        let fresh = Logins::decide(&db(json!({})), None, pair(), None);
        let r = rotate(
            &fresh,
            |_| true,
            Rollout::Steady,
            "login",
            &mut new_password,
        );
        assert_eq!(
            (r.creds.active.as_str(), r.password.as_str()),
            ("app", "new1")
        );
        assert_eq!(r.changes, [enable("app", "new1")]);
        let kept = Logins::decide(
            &db(json!({})),
            None,
            pair(),
            Some(("app".into(), "pw".into())),
        );
        let r = rotate(&kept, |_| true, Rollout::Steady, "login", &mut new_password);
        assert_eq!((r.password.as_str(), r.changes.len()), ("pw", 0));
        let r = rotate(
            &kept,
            |_| false,
            Rollout::Steady,
            "login",
            &mut new_password,
        );
        assert_eq!(
            r.changes,
            [enable("app", "new2")],
            "a disabled login gets a password"
        );

        let from = BTreeMap::from([("pay".to_owned(), "c1".to_owned())]);
        let start = Rollout::Start {
            to: "app_b".into(),
            from: from.clone(),
        };
        let r = rotate(&kept, |_| true, start, "login", &mut new_password);
        assert_eq!(r.changes, [enable("app_b", "new3")]);
        assert_eq!(
            (r.creds.active.as_str(), r.creds.retiring.as_deref()),
            ("app_b", Some("app"))
        );
        assert_eq!(r.creds.rollout_from, from);
        assert_eq!(
            r.rotating.as_deref(),
            Some("waiting for pay to roll onto the new credentials")
        );
        assert!(r.started && r.finished.is_none());
        let start = Rollout::Start {
            to: "app_b".into(),
            from: BTreeMap::new(),
        };
        let r = rotate(&kept, |_| true, start, "user", &mut new_password);
        assert_eq!(r.rotating.as_deref(), Some("retiring the old user"));

        let retiring = Logins::decide(
            &db(json!({})),
            Some(creds("app_b", Some("app"), Some("2"))),
            pair(),
            Some(("app_b".into(), "pw".into())),
        );
        let left = Rollout::Retire {
            old: "app".into(),
            left: vec!["pay".into()],
        };
        let r = rotate(&retiring, |_| true, left, "login", &mut new_password);
        assert!(r.changes.is_empty() && r.finished.is_none());
        assert_eq!(r.creds.retiring.as_deref(), Some("app"));
        assert_eq!(
            r.rotating.as_deref(),
            Some("waiting for pay to roll onto the new credentials")
        );
        let done = Rollout::Retire {
            old: "app".into(),
            left: Vec::new(),
        };
        let r = rotate(&retiring, |_| true, done, "login", &mut new_password);
        assert_eq!(r.changes, [LoginChange::Disable { name: "app".into() }]);
        assert_eq!(
            (r.creds.retiring, r.finished.as_deref()),
            (None, Some("app"))
        );
        assert_eq!(r.password, "pw");
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
