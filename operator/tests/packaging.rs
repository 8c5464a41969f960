//! The packaging agrees with what the operator builds: the image's user is numeric and the
//! same the chart and the operator's pods run as, and the Tiltfile builds every image without
//! a live update that would need a shell. Pure file checks, no I/O beyond reading them.

use std::path::PathBuf;

use payplane_operator::controller::platform::build::COMPONENTS;
use payplane_operator::meta::PAYPLANE_USER;

fn read(file: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Issue 13: `USER nonroot:nonroot` (a name) with pods that set `runAsNonRoot` made the
/// kubelet refuse to start the operator and every service.
#[test]
fn image_user_is_numeric_and_matches_the_pods() {
    let dockerfile = read("Dockerfile");
    let users: Vec<&str> = dockerfile
        .lines()
        .filter_map(|l| l.trim().strip_prefix("USER "))
        .collect();
    let expected = format!("{}:{}", PAYPLANE_USER.user, PAYPLANE_USER.group);
    assert_eq!(users, [expected.as_str()], "the final image's USER");

    let chart = read("charts/payplane/templates/deployment.yaml");
    for line in [
        format!("runAsUser: {}", PAYPLANE_USER.user),
        format!("runAsGroup: {}", PAYPLANE_USER.group),
        "runAsNonRoot: true".to_owned(),
    ] {
        assert!(
            chart.contains(&line),
            "the chart's operator pod lacks `{line}`"
        );
    }
}

/// Issue 13: the Tiltfile built only the operator, on a root base image, with a live update
/// that needs a shell the distroless image lacks.
#[test]
fn tiltfile_builds_all_images_on_the_non_root_base_without_live_update() {
    let tiltfile = read("Tiltfile");
    // The operator and every component of the platform.
    let components = COMPONENTS.map(|(component, _)| component);
    for binary in ["operator"].iter().chain(&components) {
        let binary = format!("payplane-{binary}");
        assert!(
            tiltfile.contains(&format!("'{binary}'")),
            "{binary} is not built"
        );
    }
    let code: Vec<&str> = tiltfile
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect();
    let code = code.join("\n");
    assert!(code.contains("gcr.io/distroless/cc-debian12:nonroot"));
    assert!(code.contains(&format!(
        "USER {}:{}",
        PAYPLANE_USER.user, PAYPLANE_USER.group
    )));
    for shell_based in [
        "live_update",
        "restart_process",
        "docker_build_with_restart",
        "run(",
    ] {
        assert!(
            !code.contains(shell_based),
            "{shell_based} needs a shell in the image"
        );
    }
}
