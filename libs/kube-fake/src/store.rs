//! The object store behind the fake API server: objects as JSON, one global resourceVersion,
//! a bounded watch history, generation, status subresource, finalizers, owner-reference garbage
//! collection and server-side apply for one field manager. No network I/O; watchers are fed
//! through a broadcast channel.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::merge::server_side_apply;
use crate::selector::{FieldSelector, LabelSelector};

/// An error answered as a Kubernetes `Status` body.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{code} {reason}: {message}")]
pub struct ApiError {
    /// HTTP status code.
    pub code: u16,
    /// Machine-readable reason (`NotFound`, `AlreadyExists`, `Conflict`, `Gone`, …).
    pub reason: &'static str,
    /// Human-readable message.
    pub message: String,
}

impl ApiError {
    pub(crate) fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
        }
    }

    fn not_found(rt: &ResourceType, name: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{}.{} \"{name}\" not found", rt.plural, rt.group),
        )
    }

    /// The `Status` object the real API server sends for this error.
    pub fn to_status(&self) -> Value {
        json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        })
    }
}

/// A resource type as addressed in URLs: group, version and plural name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceType {
    /// API group, empty for the core group.
    pub group: String,
    /// API version (`v1`, `v1alpha1`).
    pub version: String,
    /// Lower-case plural (`deployments`).
    pub plural: String,
}

impl ResourceType {
    /// From an `apiVersion` (`apps/v1` or `v1`) and a plural.
    pub fn new(api_version: &str, plural: &str) -> Self {
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        Self {
            group: group.to_owned(),
            version: version.to_owned(),
            plural: plural.to_owned(),
        }
    }

    /// `group/version`, or just `version` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

/// How a PATCH body is to be applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatchKind {
    /// `application/apply-patch+yaml` (server-side apply) by this field manager.
    Apply(String),
    /// `application/merge-patch+json` and `application/strategic-merge-patch+json`.
    Merge,
    /// `application/json-patch+json`.
    Json,
}

/// One change as sent on watch streams, pre-serialised once for all watchers.
#[derive(Debug)]
pub struct WatchRecord {
    /// resourceVersion of the change.
    pub rv: u64,
    /// Resource type of the object.
    pub resource: ResourceType,
    /// Name, namespace and labels of the object, for filtering.
    pub meta: Value,
    /// `{"type": …, "object": …}` followed by a newline.
    pub line: Bytes,
}

impl WatchRecord {
    /// Whether a watch on `rt` (in `ns`, with these selectors) should see this record.
    pub fn matches(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
    ) -> bool {
        &self.resource == rt
            && ns.is_none_or(|ns| {
                self.meta
                    .pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    == Some(ns)
            })
            && labels.matches(&self.meta)
            && fields.matches(&self.meta)
    }
}

struct Entry {
    obj: Value,
    /// Last configuration applied per field manager (`<manager>` or `<manager>/status`).
    applied: BTreeMap<String, Value>,
}

type Key = (ResourceType, String, String);

/// All objects and the watch history.
pub struct Store {
    rv: u64,
    uid: u64,
    objects: BTreeMap<Key, Entry>,
    history: VecDeque<Arc<WatchRecord>>,
    history_cap: usize,
    /// Highest resourceVersion dropped from the history: watches from before it get 410.
    compacted_rv: u64,
    kinds: BTreeMap<ResourceType, String>,
    tx: broadcast::Sender<Arc<WatchRecord>>,
}

fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
}

/// `obj.metadata`, created empty when missing. `obj` is a JSON object (checked on entry).
fn metadata_mut(obj: &mut Value) -> &mut Value {
    let meta = &mut obj["metadata"];
    if !meta.is_object() {
        *meta = json!({});
    }
    meta
}

fn unset(meta: &mut Value, field: &str) {
    if let Some(m) = meta.as_object_mut() {
        m.remove(field);
    }
}

/// The object without metadata and status: what `generation` tracks.
fn spec_part(obj: &Value) -> Value {
    let mut v = obj.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove("metadata");
        m.remove("status");
    }
    v
}

fn has_finalizers(obj: &Value) -> bool {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| !f.is_empty())
}

fn owner_uids(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .map(|refs| {
            refs.iter()
                .filter_map(|r| r.get("uid").and_then(Value::as_str).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

impl Store {
    /// A store keeping `history_cap` watch events for watches that resume from a resourceVersion.
    pub fn new(history_cap: usize) -> Self {
        let (tx, _) = broadcast::channel(history_cap.max(16));
        Self {
            rv: 1,
            uid: 0,
            objects: BTreeMap::new(),
            history: VecDeque::new(),
            history_cap,
            compacted_rv: 0,
            kinds: BTreeMap::new(),
            tx,
        }
    }

    /// The current (latest) resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    /// Drops the whole watch history, so resuming from any earlier version answers 410 Gone.
    pub fn compact(&mut self) {
        self.history.clear();
        self.compacted_rv = self.rv;
    }

    fn emit(&mut self, event_type: &str, rt: &ResourceType, obj: &Value) {
        let line = match serde_json::to_vec(&json!({"type": event_type, "object": obj})) {
            Ok(mut v) => {
                v.push(b'\n');
                Bytes::from(v)
            }
            Err(_) => return,
        };
        let meta = json!({"metadata": {
            "name": obj.pointer("/metadata/name"),
            "namespace": obj.pointer("/metadata/namespace"),
            "labels": obj.pointer("/metadata/labels"),
        }});
        let record = Arc::new(WatchRecord {
            rv: self.rv,
            resource: rt.clone(),
            meta,
            line,
        });
        self.history.push_back(record.clone());
        while self.history.len() > self.history_cap {
            if let Some(dropped) = self.history.pop_front() {
                self.compacted_rv = dropped.rv;
            }
        }
        // No receivers is fine: nobody watches this yet.
        let _ = self.tx.send(record);
    }

    fn bump(&mut self, obj: &mut Value) {
        self.rv += 1;
        metadata_mut(obj)["resourceVersion"] = Value::String(self.rv.to_string());
    }

    /// Gets one object.
    pub fn get(&self, rt: &ResourceType, ns: &str, name: &str) -> Result<Value, ApiError> {
        self.objects
            .get(&(rt.clone(), ns.to_owned(), name.to_owned()))
            .map(|e| e.obj.clone())
            .ok_or_else(|| ApiError::not_found(rt, name))
    }

    fn iter_type<'a>(
        &'a self,
        rt: &'a ResourceType,
    ) -> impl Iterator<Item = (&'a Key, &'a Entry)> + 'a {
        self.objects
            .range((rt.clone(), String::new(), String::new())..)
            .take_while(move |(k, _)| &k.0 == rt)
    }

    /// Lists objects of a type (in one namespace or all) that match the selectors.
    pub fn list(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
    ) -> Value {
        let items: Vec<Value> = self
            .iter_type(rt)
            .filter(|(k, e)| {
                ns.is_none_or(|ns| k.1 == ns) && labels.matches(&e.obj) && fields.matches(&e.obj)
            })
            .map(|(_, e)| e.obj.clone())
            .collect();
        let kind = self
            .kinds
            .get(rt)
            .map_or_else(|| "List".to_owned(), |k| format!("{k}List"));
        json!({
            "kind": kind,
            "apiVersion": rt.api_version(),
            "metadata": {"resourceVersion": self.rv.to_string()},
            "items": items,
        })
    }

    /// Creates an object (POST).
    pub fn create(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        mut body: Value,
    ) -> Result<Value, ApiError> {
        if !body.is_object() || body.get("metadata").is_some_and(|m| !m.is_object()) {
            return Err(ApiError::new(400, "BadRequest", "body is not an object"));
        }
        let name = match (meta_str(&body, "name"), meta_str(&body, "generateName")) {
            (Some(n), _) if !n.is_empty() => n.to_owned(),
            (_, Some(prefix)) => format!("{prefix}{:05x}", self.uid + 1),
            _ => {
                return Err(ApiError::new(
                    422,
                    "Invalid",
                    "metadata.name: Required value",
                ));
            }
        };
        let key = (rt.clone(), ns.to_owned(), name.clone());
        if self.objects.contains_key(&key) {
            return Err(ApiError::new(
                409,
                "AlreadyExists",
                format!("{}.{} \"{name}\" already exists", rt.plural, rt.group),
            ));
        }
        if let Some(kind) = body.get("kind").and_then(Value::as_str) {
            self.kinds
                .entry(rt.clone())
                .or_insert_with(|| kind.to_owned());
        }
        self.uid += 1;
        let uid = format!("00000000-0000-4000-8000-{:012x}", self.uid);
        if let Some(m) = body.as_object_mut() {
            m.remove("status");
            m.entry("apiVersion")
                .or_insert_with(|| Value::String(rt.api_version()));
        }
        let meta = metadata_mut(&mut body);
        meta["name"] = Value::String(name.clone());
        if !ns.is_empty() {
            meta["namespace"] = Value::String(ns.to_owned());
        }
        meta["uid"] = Value::String(uid);
        meta["creationTimestamp"] = Value::String(now());
        meta["generation"] = json!(1);
        unset(meta, "deletionTimestamp");
        unset(meta, "managedFields");
        self.bump(&mut body);
        self.emit("ADDED", rt, &body);
        self.objects.insert(
            key,
            Entry {
                obj: body.clone(),
                applied: BTreeMap::new(),
            },
        );
        Ok(body)
    }

    /// Writes a new version of an existing object. `status_only` is the status subresource:
    /// only `.status` is taken from `new`; otherwise `.status` and server-owned metadata are
    /// kept from the stored object. A write that changes nothing changes no resourceVersion
    /// and sends no watch event.
    fn update(&mut self, key: &Key, new: Value, status_only: bool) -> Result<Value, ApiError> {
        if !new.is_object() || new.get("metadata").is_some_and(|m| !m.is_object()) {
            return Err(ApiError::new(400, "BadRequest", "body is not an object"));
        }
        let old = self
            .objects
            .get(key)
            .map(|e| e.obj.clone())
            .ok_or_else(|| ApiError::not_found(&key.0, &key.2))?;
        if let Some(rv) = meta_str(&new, "resourceVersion")
            && Some(rv) != meta_str(&old, "resourceVersion")
        {
            {
                return Err(ApiError::new(
                    409,
                    "Conflict",
                    format!(
                        "Operation cannot be fulfilled on {} \"{}\": the object has been modified; please apply your changes to the latest version and try again",
                        key.0.plural, key.2
                    ),
                ));
            }
        }
        let mut result = if status_only {
            let mut r = old.clone();
            if let Some(m) = r.as_object_mut() {
                match new.get("status") {
                    Some(s) => m.insert("status".into(), s.clone()),
                    None => m.remove("status"),
                };
            }
            r
        } else {
            let mut r = new;
            if let Some(m) = r.as_object_mut() {
                match old.get("status") {
                    Some(s) => m.insert("status".into(), s.clone()),
                    None => m.remove("status"),
                };
                m.insert(
                    "apiVersion".into(),
                    old.get("apiVersion").cloned().unwrap_or(Value::Null),
                );
                m.insert(
                    "kind".into(),
                    old.get("kind").cloned().unwrap_or(Value::Null),
                );
            }
            let old_meta = old.get("metadata").cloned().unwrap_or_else(|| json!({}));
            let meta = metadata_mut(&mut r);
            for field in [
                "name",
                "namespace",
                "uid",
                "creationTimestamp",
                "generation",
                "deletionTimestamp",
                "resourceVersion",
            ] {
                match old_meta.get(field) {
                    Some(v) => meta[field] = v.clone(),
                    None => unset(meta, field),
                }
            }
            unset(meta, "managedFields");
            // An object being deleted cannot gain new finalizers.
            r
        };
        if result == old {
            return Ok(old);
        }
        if spec_part(&result) != spec_part(&old) {
            let generation = old
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(0)
                + 1;
            metadata_mut(&mut result)["generation"] = json!(generation);
        }
        self.bump(&mut result);
        let deleting = result.pointer("/metadata/deletionTimestamp").is_some();
        if deleting && !has_finalizers(&result) {
            self.objects.remove(key);
            self.emit("DELETED", &key.0, &result);
            self.collect_garbage();
        } else {
            self.emit("MODIFIED", &key.0, &result);
            if let Some(e) = self.objects.get_mut(key) {
                e.obj = result.clone();
            }
        }
        Ok(result)
    }

    /// Replaces an object (PUT), or its status.
    pub fn replace(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        body: Value,
        status_only: bool,
    ) -> Result<Value, ApiError> {
        self.update(
            &(rt.clone(), ns.to_owned(), name.to_owned()),
            body,
            status_only,
        )
    }

    /// Patches an object (PATCH), or its status. Server-side apply creates a missing object.
    pub fn patch(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        kind: &PatchKind,
        body: &Value,
        status_only: bool,
    ) -> Result<Value, ApiError> {
        let key = (rt.clone(), ns.to_owned(), name.to_owned());
        let existing = self.objects.get(&key).map(|e| e.obj.clone());
        match kind {
            PatchKind::Apply(manager) => {
                let slot = if status_only {
                    format!("{manager}/status")
                } else {
                    manager.clone()
                };
                let mut applied = body.clone();
                if let Some(m) = applied.as_object_mut() {
                    if !status_only {
                        m.remove("status");
                    }
                    if let Some(Value::Object(meta)) = m.get_mut("metadata") {
                        meta.remove("resourceVersion");
                        meta.remove("managedFields");
                    }
                }
                let Some(live) = existing else {
                    if status_only {
                        return Err(ApiError::not_found(rt, name));
                    }
                    let mut created_body = applied.clone();
                    metadata_mut(&mut created_body)["name"] = Value::String(name.to_owned());
                    let created = self.create(rt, ns, created_body)?;
                    if let Some(e) = self.objects.get_mut(&key) {
                        e.applied.insert(slot, applied);
                    }
                    return Ok(created);
                };
                let previous = self
                    .objects
                    .get(&key)
                    .and_then(|e| e.applied.get(&slot))
                    .cloned();
                let merged = server_side_apply(&live, previous.as_ref(), &applied);
                let result = self.update(&key, merged, status_only)?;
                if let Some(e) = self.objects.get_mut(&key) {
                    e.applied.insert(slot, applied);
                }
                Ok(result)
            }
            PatchKind::Merge => {
                let mut doc = existing.ok_or_else(|| ApiError::not_found(rt, name))?;
                json_patch::merge(&mut doc, body);
                self.update(&key, doc, status_only)
            }
            PatchKind::Json => {
                let mut doc = existing.ok_or_else(|| ApiError::not_found(rt, name))?;
                let mut ops: json_patch::Patch =
                    serde_json::from_value(body.clone()).map_err(|e| {
                        ApiError::new(400, "BadRequest", format!("invalid JSON patch: {e}"))
                    })?;
                // Like the real server, `test` against null passes for a missing path.
                ops.0.retain(|op| match op {
                    json_patch::PatchOperation::Test(t) => {
                        !(t.value.is_null() && doc.pointer(t.path.as_str()).is_none())
                    }
                    _ => true,
                });
                json_patch::patch(&mut doc, &ops).map_err(|e| {
                    ApiError::new(422, "Invalid", format!("JSON patch failed: {e}"))
                })?;
                self.update(&key, doc, status_only)
            }
        }
    }

    /// Deletes an object: with finalizers it only gets a `deletionTimestamp`; without, it is
    /// removed and its dependents are garbage-collected.
    pub fn delete(&mut self, rt: &ResourceType, ns: &str, name: &str) -> Result<Value, ApiError> {
        let key = (rt.clone(), ns.to_owned(), name.to_owned());
        let mut obj = self.get(rt, ns, name)?;
        if has_finalizers(&obj) {
            if obj.pointer("/metadata/deletionTimestamp").is_some() {
                return Ok(obj);
            }
            let meta = metadata_mut(&mut obj);
            meta["deletionTimestamp"] = Value::String(now());
            meta["deletionGracePeriodSeconds"] = json!(0);
            self.bump(&mut obj);
            self.emit("MODIFIED", rt, &obj);
            if let Some(e) = self.objects.get_mut(&key) {
                e.obj = obj.clone();
            }
            return Ok(obj);
        }
        self.objects.remove(&key);
        self.bump(&mut obj);
        self.emit("DELETED", rt, &obj);
        self.collect_garbage();
        Ok(obj)
    }

    /// Deletes (in the background, like the garbage collector) every object whose owners are
    /// all gone, until nothing changes.
    fn collect_garbage(&mut self) {
        loop {
            let live: HashSet<String> = self
                .objects
                .values()
                .filter_map(|e| meta_str(&e.obj, "uid").map(str::to_owned))
                .collect();
            let orphans: Vec<Key> = self
                .objects
                .iter()
                .filter(|(_, e)| {
                    let owners = owner_uids(&e.obj);
                    !owners.is_empty()
                        && owners.iter().all(|u| !live.contains(u))
                        && e.obj.pointer("/metadata/deletionTimestamp").is_none()
                })
                .map(|(k, _)| k.clone())
                .collect();
            if orphans.is_empty() {
                return;
            }
            for (rt, ns, name) in orphans {
                // Already gone (a cascade got there first) is fine.
                let _ = self.delete(&rt, &ns, &name);
            }
        }
    }

    /// Starts a watch: the events after `from_rv` (or synthetic ADDED events for every current
    /// object when `from_rv` is `None`/0) plus a receiver for everything after. 410 Gone when
    /// the history no longer reaches back to `from_rv`.
    pub fn watch(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        from_rv: Option<u64>,
        labels: &LabelSelector,
        fields: &FieldSelector,
    ) -> Result<(Vec<Bytes>, broadcast::Receiver<Arc<WatchRecord>>), ApiError> {
        let rx = self.tx.subscribe();
        let backlog = match from_rv {
            None | Some(0) => self
                .iter_type(rt)
                .filter(|(k, e)| {
                    ns.is_none_or(|ns| k.1 == ns)
                        && labels.matches(&e.obj)
                        && fields.matches(&e.obj)
                })
                .filter_map(|(_, e)| {
                    let mut v =
                        serde_json::to_vec(&json!({"type": "ADDED", "object": e.obj})).ok()?;
                    v.push(b'\n');
                    Some(Bytes::from(v))
                })
                .collect(),
            Some(rv) => {
                if rv < self.compacted_rv {
                    return Err(ApiError::new(
                        410,
                        "Expired",
                        format!("too old resource version: {rv} ({})", self.compacted_rv),
                    ));
                }
                self.history
                    .iter()
                    .filter(|r| r.rv > rv && r.matches(rt, ns, labels, fields))
                    .map(|r| r.line.clone())
                    .collect()
            }
        };
        Ok((backlog, rx))
    }

    /// The objects of a type for which `keep` holds (cloning only those), for the helpers.
    pub fn select(&self, rt: &ResourceType, keep: impl Fn(&Value) -> bool) -> Vec<Value> {
        self.iter_type(rt)
            .filter(|(_, e)| keep(&e.obj))
            .map(|(_, e)| e.obj.clone())
            .collect()
    }

    /// All objects of a type, for the helpers.
    pub fn all(&self, rt: &ResourceType) -> Vec<Value> {
        self.iter_type(rt).map(|(_, e)| e.obj.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cm(name: &str, data: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": data}})
    }

    fn rt() -> ResourceType {
        ResourceType::new("v1", "configmaps")
    }

    fn rv(v: &Value) -> &str {
        meta_str(v, "resourceVersion").unwrap_or_default()
    }

    #[test]
    fn noop_apply_keeps_version_and_sends_nothing() -> Result<(), ApiError> {
        let mut s = Store::new(100);
        let apply = PatchKind::Apply("op".into());
        let a = s.patch(&rt(), "ns", "a", &apply, &cm("a", "1"), false)?;
        let (_, mut rx) = s.watch(
            &rt(),
            None,
            Some(s.resource_version()),
            &LabelSelector::default(),
            &FieldSelector::default(),
        )?;
        let b = s.patch(&rt(), "ns", "a", &apply, &cm("a", "1"), false)?;
        assert_eq!(rv(&a), rv(&b));
        assert!(rx.try_recv().is_err());
        let c = s.patch(&rt(), "ns", "a", &apply, &cm("a", "2"), false)?;
        assert_ne!(rv(&a), rv(&c));
        assert!(rx.try_recv().is_ok());
        Ok(())
    }

    #[test]
    fn generation_moves_only_on_spec_changes() -> Result<(), ApiError> {
        let mut s = Store::new(100);
        let rt = ResourceType::new("apps/v1", "deployments");
        let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {"replicas": 1}});
        s.create(&rt, "ns", d)?;
        let st = s.patch(
            &rt,
            "ns",
            "d",
            &PatchKind::Merge,
            &json!({"status": {"readyReplicas": 1}}),
            true,
        )?;
        assert_eq!(st.pointer("/metadata/generation"), Some(&json!(1)));
        assert_eq!(st.pointer("/status/readyReplicas"), Some(&json!(1)));
        let lab = s.patch(
            &rt,
            "ns",
            "d",
            &PatchKind::Merge,
            &json!({"metadata": {"labels": {"a": "b"}}}),
            false,
        )?;
        assert_eq!(lab.pointer("/metadata/generation"), Some(&json!(1)));
        let sp = s.patch(
            &rt,
            "ns",
            "d",
            &PatchKind::Merge,
            &json!({"spec": {"replicas": 2}, "status": {"readyReplicas": 9}}),
            false,
        )?;
        assert_eq!(sp.pointer("/metadata/generation"), Some(&json!(2)));
        assert_eq!(
            sp.pointer("/status/readyReplicas"),
            Some(&json!(1)),
            "main endpoint ignores status"
        );
        Ok(())
    }

    #[test]
    fn finalizers_hold_deletion_and_owners_cascade() -> Result<(), ApiError> {
        let mut s = Store::new(100);
        let mut parent = cm("p", "1");
        parent["metadata"]["finalizers"] = json!(["x/y"]);
        let p = s.create(&rt(), "ns", parent)?;
        let uid = meta_str(&p, "uid").unwrap_or_default().to_owned();
        let mut child = cm("c", "1");
        child["metadata"]["ownerReferences"] = json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": "p", "uid": uid, "controller": true}]);
        s.create(&rt(), "ns", child)?;
        let marked = s.delete(&rt(), "ns", "p")?;
        assert!(marked.pointer("/metadata/deletionTimestamp").is_some());
        assert!(
            s.get(&rt(), "ns", "c").is_ok(),
            "dependents stay while the owner is only marked"
        );
        s.patch(&rt(), "ns", "p", &PatchKind::Json, &json!([{"op": "test", "path": "/metadata/finalizers", "value": ["x/y"]}, {"op": "remove", "path": "/metadata/finalizers/0"}]), false)?;
        assert_eq!(s.get(&rt(), "ns", "p").map_err(|e| e.code), Err(404));
        assert_eq!(s.get(&rt(), "ns", "c").map_err(|e| e.code), Err(404));
        Ok(())
    }

    #[test]
    fn stale_watch_gets_gone_and_conflicts_are_reported() -> Result<(), ApiError> {
        let mut s = Store::new(2);
        for i in 0..5 {
            s.create(&rt(), "ns", cm(&format!("c{i}"), "x"))?;
        }
        let err = s
            .watch(
                &rt(),
                None,
                Some(2),
                &LabelSelector::default(),
                &FieldSelector::default(),
            )
            .err();
        assert_eq!(err.map(|e| e.code), Some(410));
        let mut stale = cm("c0", "y");
        stale["metadata"]["resourceVersion"] = json!("1");
        assert_eq!(
            s.replace(&rt(), "ns", "c0", stale, false)
                .map_err(|e| e.reason),
            Err("Conflict")
        );
        assert_eq!(
            s.create(&rt(), "ns", cm("c0", "x")).map_err(|e| e.code),
            Err(409)
        );
        Ok(())
    }
}
