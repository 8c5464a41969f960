//! Fuzzing in the suite: schemathesis (PyPI; `.ci/setup tests` installs it into
//! `~/.cache/payplane-venv`) generates requests from each service's own OpenAPI document and
//! sends them through the gateway of a whole platform, anonymously and with a token, checking
//! that no answer is a 5xx and that every answer matches the documented schema. Bounded: a few
//! dozen examples per operation, about a minute and a half in all. Its binary holds this one
//! test, so the fuzzing's load does not slow other tests' deadlines.

use std::{path::Path, process::Command, time::Instant};

use payplane_e2e::Platform;

const NODE: &str = env!("CARGO_BIN_EXE_payplane-e2e-node");
/// Examples per operation and phase: enough to hit every documented rule, small enough for CI.
const MAX_EXAMPLES: &str = "15";

fn schemathesis() -> String {
    std::env::var("SCHEMATHESIS").unwrap_or_else(|_| {
        let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
        format!("{home}/.cache/payplane-venv/bin/schemathesis")
    })
}

/// `positive_data_acceptance` holds a schema-valid request to be accepted (no 400/422). These
/// operations have rules JSON Schema cannot state, which the documents give in words; a
/// schema-valid request may still break them, and is then answered 400 or 422 as the contract
/// says:
/// - `POST /api/auth/password`: 400 `INVALID_PASSWORD` is the answer to a wrong current password
///   (a credential, not a shape; api.md §4.9);
/// - `POST`/`PUT /api/payments…`: `scheduledFor` must lie in the next 365 days (it moves with the
///   clock), and 422 `IDEMPOTENCY_KEY_REUSED` answers a key reused with another body (§5.8);
/// - `GET /api/payments`, `/reports`, `/api/admin/audit-logs`: a range start after its end, or
///   `minAmount` above `maxAmount`, compares two parameters (§1.5, §5.4, §5.6);
/// - `POST`/`PUT /api/admin/config…`: a `value`'s numbers must read back exactly from `jsonb`
///   (`payplane_kit::storable`, at most 40 characters in plain decimal form), which no JSON
///   Schema bound on an arbitrary JSON value can say.
const CONTRACT_REJECTIONS: [(&str, &str); 8] = [
    ("POST /api/auth/password", "400"),
    ("POST /api/payments", "400, 422"),
    ("PUT /api/payments/{id}", "400"),
    ("GET /api/payments", "400"),
    ("GET /api/payments/reports", "400"),
    ("GET /api/admin/audit-logs", "400"),
    ("POST /api/admin/config", "400"),
    ("PUT /api/admin/config/{key}", "400"),
];

/// schemathesis' configuration: the committed file plus the per-operation statuses above.
fn config_file() -> std::path::PathBuf {
    use std::fmt::Write as _;
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemathesis.toml");
    let mut text = std::fs::read_to_string(&base)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", base.display()));
    for (name, extra) in CONTRACT_REJECTIONS {
        let extra: Vec<String> = extra.split(", ").map(|s| format!("\"{s}\"")).collect();
        let _ = write!(
            text,
            "\n[[operations]]\ninclude-name = \"{name}\"\n\
             checks.positive_data_acceptance.expected-statuses = \
             [\"2xx\", \"3xx\", \"401\", \"403\", \"404\", \"409\", \"429\", \"5xx\", {}]\n",
            extra.join(", ")
        );
    }
    let path = std::env::temp_dir().join(format!("payplane-fuzz-{}.toml", std::process::id()));
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    path
}

/// One bounded run; returns schemathesis' summary line ("N generated, M passed[, K failed]").
fn fuzz(schema_url: &str, gateway: &str, token: Option<&str>) -> (bool, String, String) {
    let config = config_file();
    let mut cmd = Command::new(schemathesis());
    cmd.arg("--config-file")
        .arg(&config)
        .args(["run", schema_url, "--url", gateway])
        .args([
            "--checks",
            "not_a_server_error,response_schema_conformance,positive_data_acceptance",
        ])
        .args(["--max-examples", MAX_EXAMPLES, "--seed", "20261206"])
        // One worker: hypothesis compiling patterns on two threads at once hits a CPython 3.11
        // race (`AST constructor recursion depth mismatch`).
        .args(["--workers", "1", "--no-color"]);
    if let Some(t) = token {
        // Logging out would end the very session the run authenticates with.
        cmd.args(["-H", &format!("Authorization: Bearer {t}")])
            .args(["--exclude-path-regex", "logout"]);
    }
    let out = cmd.output().unwrap_or_else(|e| {
        panic!(
            "cannot run {} ({e}): `.ci/setup tests` installs schemathesis",
            schemathesis()
        )
    });
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let summary = stdout
        .lines()
        .rev()
        .find(|l| l.contains(" generated"))
        .unwrap_or("no summary")
        .trim()
        .to_owned();
    (out.status.success(), summary, stdout)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_schema_violation() {
    let (platform, api) = Platform::start_default(Path::new(NODE)).await.unwrap();
    let run = platform.run_id.clone();
    let started = Instant::now();
    let mut failed = Vec::new();
    // The admin document goes last: its runs may change the admin account they use.
    for service in ["auth", "payments", "profile", "admin"] {
        let schema = format!("{}/openapi.json", platform.service_url(service));
        let user = if service == "admin" {
            api.login(&platform.admin_email, "fuzz").await.unwrap()
        } else {
            api.register(
                &format!("fz-{service}-{run}@example.com"),
                "Fuzz User",
                "CUSTOMER",
                "fuzz",
            )
            .await
            .unwrap()
        };
        for (mode, token) in [
            ("anonymous", None),
            ("authenticated", Some(user.access_token.as_str())),
        ] {
            let gateway = platform.gateway_url.clone();
            let schema = schema.clone();
            let token = token.map(str::to_owned);
            let (ok, summary, output) =
                tokio::task::spawn_blocking(move || fuzz(&schema, &gateway, token.as_deref()))
                    .await
                    .unwrap();
            println!("fuzz {service} {mode}: {summary}");
            if !ok {
                println!("{output}");
                failed.push(format!("{service} {mode}: {summary}"));
            }
        }
    }
    println!("fuzzing took {:?}", started.elapsed());
    assert!(failed.is_empty(), "schemathesis failures: {failed:#?}");
}
