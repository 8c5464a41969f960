//! The fake API server through a real `kube::Client`: typed CRUD, `Status` error bodies,
//! list + watch from a resourceVersion, server-side apply without a watch event when nothing
//! changes, and 410 Gone after compaction.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use payplane_kube_fake::FakeApiServer;
use serde_json::json;

fn cm(name: &str, value: &str) -> ConfigMap {
    let mut c = ConfigMap::default();
    c.metadata.name = Some(name.into());
    c.metadata.labels = Some([("app".to_owned(), "x".to_owned())].into());
    c.data = Some([("k".to_owned(), value.to_owned())].into());
    c
}

#[tokio::test]
async fn crud_errors_watch_and_gone_through_kube() -> anyhow::Result<()> {
    let fake = FakeApiServer::start().await?;
    let api: Api<ConfigMap> = Api::namespaced(fake.client()?, "ns");
    api.create(&PostParams::default(), &cm("a", "1")).await?;
    match api.create(&PostParams::default(), &cm("a", "1")).await {
        Err(kube::Error::Api(s)) => assert_eq!((s.code, s.reason.as_str()), (409, "AlreadyExists")),
        other => anyhow::bail!("expected AlreadyExists, got {other:?}"),
    }
    match api.get("missing").await {
        Err(kube::Error::Api(s)) => assert_eq!((s.code, s.reason.as_str()), (404, "NotFound")),
        other => anyhow::bail!("expected NotFound, got {other:?}"),
    }
    let list = api.list(&ListParams::default().labels("app=x")).await?;
    assert_eq!(list.items.len(), 1);
    let rv = list.metadata.resource_version.clone().unwrap_or_default();
    assert!(
        api.list(&ListParams::default().labels("app!=x"))
            .await?
            .items
            .is_empty()
    );

    let mut stream = api.watch(&WatchParams::default(), &rv).await?.boxed();
    let params = PatchParams::apply("test").force();
    let applied = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "2"}});
    let first = api.patch("a", &params, &Patch::Apply(&applied)).await?;
    let again = api.patch("a", &params, &Patch::Apply(&applied)).await?;
    assert_eq!(
        first.metadata.resource_version, again.metadata.resource_version,
        "no-op apply keeps the version"
    );
    match tokio::time::timeout(Duration::from_secs(2), stream.next()).await? {
        Some(Ok(WatchEvent::Modified(c))) => {
            assert_eq!(c.data.and_then(|d| d.get("k").cloned()), Some("2".into()));
        }
        other => anyhow::bail!("expected one Modified event, got {other:?}"),
    }
    assert!(
        tokio::time::timeout(Duration::from_millis(300), stream.next())
            .await
            .is_err(),
        "a no-op apply must not send a watch event"
    );

    fake.compact();
    let mut stale = api.watch(&WatchParams::default(), &rv).await?.boxed();
    match tokio::time::timeout(Duration::from_secs(2), stale.next()).await? {
        Some(Ok(WatchEvent::Error(e))) => assert_eq!(e.code, 410),
        other => anyhow::bail!("expected 410 Gone, got {other:?}"),
    }
    Ok(())
}
