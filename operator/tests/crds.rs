//! The committed `crds/*.yaml` must equal what the Rust types generate (run
//! `cargo run -p payplane-operator -- crd` after changing a type).

use std::path::PathBuf;

fn crds_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../crds")
}

#[test]
fn committed_crds_match_the_types() -> anyhow::Result<()> {
    let rendered = payplane_operator::crd::render_all()?;
    assert_eq!(rendered.len(), 7);
    for (file, yaml) in &rendered {
        let committed = std::fs::read_to_string(crds_dir().join(file)).map_err(|e| {
            anyhow::anyhow!("crds/{file} is missing ({e}); run `payplane-operator crd`")
        })?;
        assert!(
            committed == *yaml,
            "crds/{file} drifted from the Rust types; run `cargo run -p payplane-operator -- crd`"
        );
    }
    let mut on_disk: Vec<String> = std::fs::read_dir(crds_dir())?
        .filter_map(Result::ok)
        .filter(|e| {
            e.path()
                .extension()
                .is_some_and(|x| x.eq_ignore_ascii_case("yaml"))
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let mut expected: Vec<String> = rendered.into_iter().map(|(f, _)| f).collect();
    expected.sort();
    assert_eq!(on_disk, expected, "crds/ holds a file no type generates");
    Ok(())
}

#[test]
fn crds_carry_short_names_columns_and_validation_rules() -> anyhow::Result<()> {
    for crd in payplane_operator::crd::all() {
        let name = crd.metadata.name.clone().unwrap_or_default();
        let version = &crd.spec.versions[0];
        assert!(
            crd.spec
                .names
                .short_names
                .as_ref()
                .is_some_and(|s| !s.is_empty()),
            "{name}: short name"
        );
        let columns: Vec<String> = version
            .additional_printer_columns
            .iter()
            .flatten()
            .map(|c| c.name.clone())
            .collect();
        for col in ["Ready", "Reason", "Age"] {
            assert!(
                columns.iter().any(|c| c == col),
                "{name}: printer column {col}"
            );
        }
        let schema = serde_json::to_value(&version.schema)?;
        let conditions = schema
            .pointer("/openAPIV3Schema/properties/status/properties/conditions")
            .ok_or_else(|| anyhow::anyhow!("{name}: no status.conditions"))?;
        assert_eq!(conditions["x-kubernetes-list-type"], "map", "{name}");
        assert_eq!(
            conditions["x-kubernetes-list-map-keys"],
            serde_json::json!(["type"]),
            "{name}"
        );
        let text = schema.to_string();
        assert!(
            text.contains("x-kubernetes-validations"),
            "{name}: CEL rules"
        );
        assert!(
            version
                .subresources
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .is_some(),
            "{name}: status subresource"
        );
    }
    Ok(())
}

#[test]
fn chart_ships_the_same_crds() -> anyhow::Result<()> {
    let chart = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../charts/payplane/crds");
    for (file, yaml) in payplane_operator::crd::render_all()? {
        let shipped = std::fs::read_to_string(chart.join(&file))?;
        assert!(
            shipped == yaml,
            "charts/payplane/crds/{file} drifted; run `payplane-operator crd`"
        );
    }
    Ok(())
}

#[test]
fn chart_rbac_has_no_wildcards_and_covers_every_kind() -> anyhow::Result<()> {
    let templates = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../charts/payplane/templates");
    let rbac = std::fs::read_to_string(templates.join("rbac.yaml"))?;
    let rules: Vec<&str> = rbac
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect();
    assert!(
        rules.iter().all(|l| !l.contains('*')),
        "RBAC must not use wildcards"
    );
    for kind in [
        "platforms",
        "appservices",
        "postgresclusters",
        "databases",
        "messagebrokers",
        "queues",
        "ingresscerts",
    ] {
        assert!(rbac.contains(&format!("{kind}/status")), "{kind}/status");
    }
    for needed in [
        "deployments",
        "statefulsets",
        "jobs",
        "secrets",
        "leases",
        "events",
        "ingresses",
    ] {
        assert!(rbac.contains(needed), "{needed}");
    }
    assert!(!rbac.contains("cluster-admin"));
    Ok(())
}
