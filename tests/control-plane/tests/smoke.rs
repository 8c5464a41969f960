//! The control plane behaves like a cluster: real controllers, scheduler, RBAC and garbage
//! collection, with kwok playing the kubelets.
#![expect(clippy::unwrap_used, reason = "tests")]

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::batch::v1::{Job, JobStatus};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::config::KubeConfigOptions;
use payplane_control_plane::{ControlPlane, FAILING_IMAGE_SUFFIX, TestNamespace, eventually};
use serde_json::json;

/// Generous for 2 shared cores; the happy path takes about a second.
const TIMEOUT: Duration = Duration::from_secs(60);

fn deployment(name: &str, replicas: i32) -> Deployment {
    serde_json::from_value(json!({
        "metadata": { "name": name },
        "spec": {
            "replicas": replicas,
            "selector": { "matchLabels": { "app": name } },
            "template": {
                "metadata": { "labels": { "app": name } },
                // kwok never pulls or runs the image: any name will do.
                "spec": { "containers": [{ "name": "app", "image": "example.invalid/app:1" }] },
            },
        },
    }))
    .unwrap()
}

/// A one-pod Job `migrate` that is not retried.
fn job(image: &str) -> Job {
    serde_json::from_value(json!({
        "metadata": { "name": "migrate" },
        "spec": {
            "backoffLimit": 0,
            "template": { "spec": {
                "restartPolicy": "Never",
                "containers": [{ "name": "migrate", "image": image }],
            }},
        },
    }))
    .unwrap()
}

fn pod_ready(pod: &Pod) -> bool {
    let status = pod.status.as_ref();
    status.and_then(|s| s.phase.as_deref()) == Some("Running")
        && status
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn api_status(result: Result<impl Sized, kube::Error>) -> Option<u16> {
    match result {
        Ok(_) => None,
        Err(kube::Error::Api(status)) => Some(status.code),
        Err(other) => panic!("not an API error: {other}"),
    }
}

/// A fresh namespace `<prefix>-…` on the shared control plane with a Deployment of `replicas`
/// pods labelled `app=<name>` in it, and the admin's client.
async fn with_deployment(
    prefix: &str,
    name: &str,
    replicas: i32,
) -> (TestNamespace, kube::Client, Api<Deployment>) {
    let cp = ControlPlane::shared().await.unwrap();
    let ns = cp.namespace(prefix).await.unwrap();
    let client = cp.admin_client().unwrap();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns.name());
    deployments
        .create(&PostParams::default(), &deployment(name, replicas))
        .await
        .unwrap();
    (ns, client, deployments)
}

/// Waits until `n` pods labelled `app=<app>` are Running and Ready; returns them.
async fn ready_pods(pods: &Api<Pod>, app: &str, n: usize) -> Vec<Pod> {
    let selector = format!("app={app}");
    eventually(TIMEOUT, &format!("{n} Running+Ready pods"), || {
        let (pods, selector) = (pods.clone(), selector.clone());
        async move {
            let list = pods.list(&ListParams::default().labels(&selector)).await?;
            let ready: Vec<Pod> = list.items.into_iter().filter(pod_ready).collect();
            Ok(if ready.len() == n {
                Ok(ready)
            } else {
                Err(format!("{} ready", ready.len()))
            })
        }
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn shared_control_plane_is_started_once() {
    let first = ControlPlane::shared().await.unwrap();
    let second = ControlPlane::shared().await.unwrap();
    assert!(std::ptr::eq(first, second));
    eprintln!("control plane ready in {:?}", first.ready_in());
    assert!(
        first.dead_components().is_empty(),
        "{}",
        first.dead_components()
    );
}

#[tokio::test]
async fn deployment_gets_two_running_ready_pods_on_kwok_nodes() {
    let cp = ControlPlane::shared().await.unwrap();
    let (ns, client, deployments) = with_deployment("deploy", "web", 2).await;
    let pods: Api<Pod> = Api::namespaced(client, ns.name());

    for pod in &ready_pods(&pods, "web", 2).await {
        // Placed by the real scheduler on a kwok node, owned by the ReplicaSet the Deployment
        // controller made.
        let node = pod.spec.as_ref().unwrap().node_name.as_deref().unwrap();
        assert!(cp.node_names().contains(&node), "{node}");
        let owner = &pod.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(owner.kind, "ReplicaSet");
    }

    eventually(TIMEOUT, "Deployment status readyReplicas=2", || {
        let deployments = deployments.clone();
        async move {
            let d = deployments.get("web").await?;
            let ready = d.status.and_then(|s| s.ready_replicas).unwrap_or(0);
            Ok(if ready == 2 {
                Ok(())
            } else {
                Err(format!("readyReplicas {ready}"))
            })
        }
    })
    .await
    .unwrap();
}

/// Runs `job(image)` in a fresh namespace until its condition `condition` is True; its status.
async fn job_until(prefix: &str, image: &str, condition: &str) -> JobStatus {
    let cp = ControlPlane::shared().await.unwrap();
    let ns = cp.namespace(prefix).await.unwrap();
    let jobs: Api<Job> = Api::namespaced(cp.admin_client().unwrap(), ns.name());
    jobs.create(&PostParams::default(), &job(image))
        .await
        .unwrap();
    eventually(TIMEOUT, &format!("Job with condition {condition}"), || {
        let jobs = jobs.clone();
        async move {
            let status = jobs.get("migrate").await?.status.unwrap_or_default();
            let reached = status
                .conditions
                .as_ref()
                .is_some_and(|c| c.iter().any(|c| c.type_ == condition && c.status == "True"));
            Ok(if reached {
                Ok(status)
            } else {
                Err(format!(
                    "succeeded {:?}, active {:?}, failed {:?}",
                    status.succeeded, status.active, status.failed
                ))
            })
        }
    })
    .await
    .unwrap()
}

/// kwok's extra stage: a pod whose image ends in FAILING_IMAGE_SUFFIX fails, so the real Job
/// controller marks its Job Failed.
#[tokio::test]
async fn job_with_a_failing_image_fails() {
    let image = format!("example.invalid/migrate:2{FAILING_IMAGE_SUFFIX}");
    let status = job_until("job-fails", &image, "Failed").await;
    assert_eq!(status.succeeded.unwrap_or(0), 0, "{status:?}");
}

#[tokio::test]
async fn job_completes() {
    let status = job_until("job", "example.invalid/migrate:1", "Complete").await;
    assert_eq!(status.succeeded, Some(1), "{status:?}");
}

#[tokio::test]
async fn deleting_a_deployment_garbage_collects_its_replicaset_and_pods() {
    let (ns, client, deployments) = with_deployment("gc", "api", 2).await;
    let replicasets: Api<ReplicaSet> = Api::namespaced(client.clone(), ns.name());
    let pods: Api<Pod> = Api::namespaced(client, ns.name());
    until_counts(&replicasets, &pods, (1, 2), "a ReplicaSet with 2 pods").await;

    // Background propagation: the Deployment goes at once, and the garbage collector removes
    // the dependents after it.
    deployments
        .delete("api", &DeleteParams::background())
        .await
        .unwrap();
    let what = "ReplicaSets and pods garbage-collected";
    until_counts(&replicasets, &pods, (0, 0), what).await;
}

/// Waits until the namespace holds `want`: (ReplicaSets, pods).
async fn until_counts(
    replicasets: &Api<ReplicaSet>,
    pods: &Api<Pod>,
    want: (usize, usize),
    what: &str,
) {
    eventually(TIMEOUT, what, || {
        let (replicasets, pods) = (replicasets.clone(), pods.clone());
        async move {
            let rs = replicasets.list(&ListParams::default()).await?.items.len();
            let left = pods.list(&ListParams::default()).await?.items.len();
            Ok(if (rs, left) == want {
                Ok(())
            } else {
                Err(format!("{rs} ReplicaSets, {left} pods"))
            })
        }
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn service_account_client_is_bound_by_rbac() {
    let cp = ControlPlane::shared().await.unwrap();
    let ns = cp.namespace("rbac").await.unwrap();
    let other = cp.namespace("rbac-other").await.unwrap();
    let admin = cp.admin_client().unwrap();
    Api::<Secret>::namespaced(admin.clone(), ns.name())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": { "name": "db" },
                "stringData": { "password": "hunter2" },
            }))
            .unwrap(),
        )
        .await
        .unwrap();

    let reader = cp
        .client_as_service_account(ns.name(), "reader")
        .await
        .unwrap();
    let secrets: Api<Secret> = Api::namespaced(reader.clone(), ns.name());
    assert_eq!(
        api_status(secrets.list(&ListParams::default()).await),
        Some(403),
        "no RBAC yet: listing secrets must be forbidden"
    );

    let role: Role = serde_json::from_value(json!({
        "metadata": { "name": "secret-reader" },
        "rules": [{ "apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"] }],
    }))
    .unwrap();
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": { "name": "secret-reader" },
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "secret-reader" },
        "subjects": [{ "kind": "ServiceAccount", "name": "reader", "namespace": ns.name() }],
    }))
    .unwrap();
    Api::<Role>::namespaced(admin.clone(), ns.name())
        .create(&PostParams::default(), &role)
        .await
        .unwrap();
    Api::<RoleBinding>::namespaced(admin.clone(), ns.name())
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();

    // The authorizer works from an informer cache: the grant lands within moments, not at once.
    let names = eventually(TIMEOUT, "the Role to allow listing secrets", || {
        let secrets = secrets.clone();
        async move {
            Ok(match secrets.list(&ListParams::default()).await {
                Ok(list) => Ok(list
                    .items
                    .into_iter()
                    .filter_map(|s| s.metadata.name)
                    .collect::<Vec<_>>()),
                Err(kube::Error::Api(s)) if s.code == 403 => Err(String::from("still 403")),
                Err(e) => return Err(e.into()),
            })
        }
    })
    .await
    .unwrap();
    assert_eq!(names, ["db"]);

    // Only what the Role names: no create verb, and nothing in another namespace.
    let secret: Secret =
        serde_json::from_value(json!({ "metadata": { "name": "sneaky" } })).unwrap();
    assert_eq!(
        api_status(secrets.create(&PostParams::default(), &secret).await),
        Some(403)
    );
    assert_eq!(
        api_status(
            Api::<Secret>::namespaced(reader.clone(), other.name())
                .list(&ListParams::default())
                .await
        ),
        Some(403)
    );
    assert_eq!(
        api_status(
            Api::<ServiceAccount>::namespaced(reader, ns.name())
                .list(&ListParams::default())
                .await
        ),
        Some(403)
    );
}

#[tokio::test]
async fn namespace_deletion_finishes_with_workloads_inside() {
    let (ns, client, _) = with_deployment("teardown", "worker", 1).await;
    let name = ns.name().to_owned();
    Api::<ConfigMap>::namespaced(client.clone(), &name)
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({ "metadata": { "name": "settings" } })).unwrap(),
        )
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), &name);
    ready_pods(&pods, "worker", 1).await;

    // The namespace controller has to delete the Deployment, ReplicaSet, pod (kwok finishes the
    // pod's graceful deletion) and ConfigMap before it drops the finalizer.
    ns.delete(TIMEOUT).await.unwrap();
    assert!(
        Api::<Namespace>::all(client)
            .get_opt(&name)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn kubeconfig_file_works_for_other_clients() {
    let cp = ControlPlane::shared().await.unwrap();
    let kubeconfig = kube::config::Kubeconfig::read_from(cp.kubeconfig_path()).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    let client = kube::Client::try_from(config).unwrap();
    let version = client.apiserver_version().await.unwrap();
    assert_eq!(
        (version.major.as_str(), version.minor.as_str()),
        ("1", "36")
    );
    // The controller manager published the CA that signed the serving certificate.
    let root_ca = Api::<ConfigMap>::namespaced(client, "default")
        .get("kube-root-ca.crt")
        .await
        .unwrap();
    assert_eq!(root_ca.data.unwrap()["ca.crt"].trim(), cp.ca_pem().trim());
}
