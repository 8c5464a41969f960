//! Files shipped inside Go modules (other projects' CRDs), fetched with the machine's `go`
//! from the Go module proxy into the module cache, which lives outside the clone and is reused.
//!
//! Projects such as CloudNativePG, the RabbitMQ cluster operator and the Gateway API publish
//! their CRDs in their Go modules; tests install those real schemas instead of hand-written
//! copies, so an object we build is validated exactly as in a cluster running that project.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};

/// A Go module at a pinned version and the files of it a test needs.
#[derive(Debug, Clone, Copy)]
pub struct GoModuleFiles {
    pub module: &'static str,
    pub version: &'static str,
    /// Paths inside the module.
    pub files: &'static [&'static str],
}

/// CloudNativePG's `Cluster` CRD (postgresql.cnpg.io/v1).
pub const CLOUDNATIVE_PG: GoModuleFiles = GoModuleFiles {
    module: "github.com/cloudnative-pg/cloudnative-pg",
    version: "v1.28.0",
    files: &["config/crd/bases/postgresql.cnpg.io_clusters.yaml"],
};

/// The RabbitMQ cluster operator's `RabbitmqCluster` CRD (rabbitmq.com/v1beta1).
pub const RABBITMQ_CLUSTER_OPERATOR: GoModuleFiles = GoModuleFiles {
    module: "github.com/rabbitmq/cluster-operator/v2",
    version: "v2.17.0",
    files: &["config/crd/bases/rabbitmq.com_rabbitmqclusters.yaml"],
};

/// The Gateway API's standard channel: GatewayClass, Gateway, HTTPRoute, ReferenceGrant.
pub const GATEWAY_API: GoModuleFiles = GoModuleFiles {
    module: "sigs.k8s.io/gateway-api",
    version: "v1.6.3",
    files: &[
        "config/crd/standard/gateway.networking.k8s.io_gatewayclasses.yaml",
        "config/crd/standard/gateway.networking.k8s.io_gateways.yaml",
        "config/crd/standard/gateway.networking.k8s.io_httproutes.yaml",
        "config/crd/standard/gateway.networking.k8s.io_referencegrants.yaml",
    ],
};

impl GoModuleFiles {
    /// Downloads the module (a no-op when cached) and returns each file's path and text.
    pub fn read(&self) -> Result<Vec<(PathBuf, String)>> {
        let dir = self.download()?;
        self.files
            .iter()
            .map(|file| {
                let path = dir.join(file);
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("reading {} from {}", file, self.module))?;
                Ok((path, text))
            })
            .collect()
    }

    /// `go mod download -json module@version`: the module cache directory holding it.
    fn download(&self) -> Result<PathBuf> {
        let at = format!("{}@{}", self.module, self.version);
        // Outside any Go module, so the command neither reads nor writes a go.mod.
        let output = Command::new("go")
            .args(["mod", "download", "-json", &at])
            .current_dir(std::env::temp_dir())
            .env("GOFLAGS", "-mod=mod")
            .env("GO111MODULE", "on")
            .output()
            .context("running `go mod download` (Go is on every machine of this kind)")?;
        let json: serde_json::Value = serde_json::from_slice(&output.stdout)
            .with_context(|| format!("`go mod download -json {at}` printed no JSON"))?;
        if let Some(error) = json.get("Error").and_then(|e| e.as_str()) {
            bail!("go mod download {at}: {error}");
        }
        match json.get("Dir").and_then(|d| d.as_str()) {
            Some(dir) => Ok(PathBuf::from(dir)),
            None => bail!("go mod download {at}: no Dir in its answer"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pinned_crd_file_is_fetched_and_is_a_crd() {
        for module in [CLOUDNATIVE_PG, RABBITMQ_CLUSTER_OPERATOR, GATEWAY_API] {
            let files = module.read().unwrap();
            assert_eq!(files.len(), module.files.len());
            for (path, text) in files {
                assert!(
                    text.contains("kind: CustomResourceDefinition"),
                    "{} is not a CRD",
                    path.display()
                );
            }
        }
    }
}
