//! Finds the control-plane binaries that `tests/control-plane/build.sh` builds into its cache.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// Overrides where the binaries are looked up (a directory holding all five); otherwise the build
/// script says where the binaries of the current Go sources belong.
pub const BIN_DIR_ENV: &str = "PAYPLANE_CONTROL_PLANE_BIN_DIR";

/// The build script, relative to the repository root, as named in error messages.
pub const BUILD_SCRIPT: &str = "tests/control-plane/build.sh";

/// Absolute paths of the five binaries.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub etcd: PathBuf,
    pub kube_apiserver: PathBuf,
    pub kube_controller_manager: PathBuf,
    pub kube_scheduler: PathBuf,
    pub kwok: PathBuf,
}

impl Binaries {
    /// Locates the binaries, with an error that names the build script when any is missing.
    pub fn locate() -> Result<Self> {
        let dir = match std::env::var_os(BIN_DIR_ENV) {
            Some(dir) => PathBuf::from(dir),
            None => stamped_bin_dir()?,
        };
        let bins = Self {
            etcd: dir.join("etcd"),
            kube_apiserver: dir.join("kube-apiserver"),
            kube_controller_manager: dir.join("kube-controller-manager"),
            kube_scheduler: dir.join("kube-scheduler"),
            kwok: dir.join("kwok"),
        };
        let missing: Vec<&Path> = [
            &bins.etcd,
            &bins.kube_apiserver,
            &bins.kube_controller_manager,
            &bins.kube_scheduler,
            &bins.kwok,
        ]
        .into_iter()
        .map(PathBuf::as_path)
        .filter(|p| !p.is_file())
        .collect();
        if !missing.is_empty() {
            bail!(
                "control-plane binaries missing: {}. Build them with `{BUILD_SCRIPT}` (from the \
                 repository root; the first build compiles Kubernetes: about 9 minutes on 2 cores, see \
                 tests/control-plane/README.md), or point {BIN_DIR_ENV} at a directory holding \
                 etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok",
                missing
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        Ok(bins)
    }
}

/// Asks the build script for the bin directory of the current Go sources, so that the version
/// stamp is computed in one place only and a changed go.mod can never run stale binaries.
fn stamped_bin_dir() -> Result<PathBuf> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("build.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg("--print-bin-dir")
        .output()
        .with_context(|| format!("running {} --print-bin-dir", script.display()))?;
    if !out.status.success() {
        bail!(
            "{} --print-bin-dir failed ({}): {}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let dir = String::from_utf8(out.stdout).context("bin dir is not UTF-8")?;
    Ok(PathBuf::from(dir.trim()))
}
