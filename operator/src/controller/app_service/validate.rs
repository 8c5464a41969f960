//! `validate` of an `AppService` (pure): the checks the CRD's schema cannot make, and the
//! Secrets its spec references.

use super::super::InvalidSpec;
use crate::crd::AppService;

/// Refuses a spec that cannot roll out: no image, or autoscaling with its bounds reversed.
pub fn validate(app: &AppService) -> Result<(), InvalidSpec> {
    if app.spec.image.is_empty() {
        return Err(InvalidSpec("spec.image is empty".into()));
    }
    if let Some(a) = &app.spec.autoscaling
        && a.min_replicas > a.max_replicas
    {
        return Err(InvalidSpec(format!(
            "autoscaling.minReplicas {} exceeds maxReplicas {}",
            a.min_replicas, a.max_replicas
        )));
    }
    Ok(())
}

/// Every Secret name the pods read, for waiting and for the rollout checksum.
pub fn referenced_secrets(app: &AppService) -> Vec<String> {
    let mut names = Vec::new();
    if let Some(c) = &app.spec.cache {
        names.push(c.url_secret_ref.name.clone());
    }
    names.extend(app.spec.files.iter().map(|f| f.secret_name.clone()));
    for e in &app.spec.env {
        if let Some(r) = e
            .value_from
            .as_ref()
            .and_then(|v| v.secret_key_ref.as_ref())
        {
            names.push(r.name.clone());
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_empty_image_or_reversed_bounds_are_refused() {
        let table = [
            (AppService::test("pay"), Ok(())),
            (AppService::test("pay").with_autoscaling(2, 2), Ok(())),
            (
                AppService::test("pay").with_autoscaling(3, 2),
                Err("autoscaling.minReplicas 3 exceeds maxReplicas 2"),
            ),
            (
                {
                    let mut app = AppService::test("pay");
                    app.spec.image.clear();
                    app
                },
                Err("spec.image is empty"),
            ),
        ];
        for (app, want) in table {
            assert_eq!(validate(&app), want.map_err(|e| InvalidSpec(e.into())));
        }
    }

    #[test]
    fn referenced_secrets_are_the_cache_files_and_env() {
        let mut app = AppService::test("pay");
        app.spec = serde_json::from_value(json!({
            "image": "pay:1", "port": 8080,
            "cache": {"urlSecretRef": {"name": "redis", "key": "url"}},
            "files": [{"secretName": "psp-keys", "mountPath": "/keys"}],
            "env": [{"name": "A", "value": "1"},
                {"name": "B", "valueFrom": {"secretKeyRef": {"name": "b-secret", "key": "k"}}}],
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(referenced_secrets(&app), ["redis", "psp-keys", "b-secret"]);
    }
}
