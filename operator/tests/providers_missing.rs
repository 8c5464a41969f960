//! Providers whose CRDs are not installed, on a real control plane: this test binary never
//! installs CloudNativePG's or the RabbitMQ cluster operator's CRDs (`providers.rs` does), so
//! the API server does not serve their kinds, and the resources say so instead of failing in a
//! loop — under the chart's RBAC, without a forbidden call.

use anyhow::Result;
use payplane_operator::crd::{MessageBroker, PostgresCluster};
use payplane_operator::external::Externals;
use payplane_operator::testing::{Operator, condition, not_ready_because};
use serde_json::json;

/// `Ready=False` and `Degraded=True`, reason `ProviderMissing`, the message naming `crd`.
fn provider_missing<K: payplane_operator::crd::HasConditions>(
    obj: Option<&K>,
    crd: &str,
) -> Result<(), String> {
    let obj = obj.ok_or("absent")?;
    let ready = condition(obj, "Ready").ok_or("no Ready")?;
    let degraded = condition(obj, "Degraded").ok_or("no Degraded")?;
    let ok = ready.status == "False"
        && ready.reason == "ProviderMissing"
        && ready.message.contains(crd)
        && degraded.status == "True"
        && degraded.reason == "ProviderMissing";
    ok.then_some(())
        .ok_or_else(|| format!("Ready {ready:?}, Degraded {degraded:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_without_its_crd_is_degraded_with_provider_missing() -> Result<()> {
    let op = Operator::start("providers-missing", Externals::simulated()).await?;
    op.create(
        "PostgresCluster",
        "pg",
        json!({"provider": "cloudnative-pg", "cloudnativePg": {"instances": 3}}),
    )
    .await?;
    op.create(
        "MessageBroker",
        "rmq",
        json!({"provider": "rabbitmq-cluster-operator"}),
    )
    .await?;
    op.wait_for::<PostgresCluster>("PostgresCluster ProviderMissing", "pg", |pg| {
        provider_missing(pg, "clusters.postgresql.cnpg.io")
    })
    .await?;
    op.wait_for::<MessageBroker>("MessageBroker ProviderMissing", "rmq", |mb| {
        provider_missing(mb, "rabbitmqclusters.rabbitmq.com")
    })
    .await?;
    // A Database on the cluster waits for it rather than failing.
    op.create(
        "Database",
        "orders",
        json!({"clusterRef": {"name": "pg"}, "databaseName": "orders", "owner": "orders"}),
    )
    .await?;
    let waits = not_ready_because("", &["PostgresCluster pg"]);
    op.wait_for::<payplane_operator::crd::Database>("Database waits", "orders", waits)
        .await?;
    op.stop().await
}
