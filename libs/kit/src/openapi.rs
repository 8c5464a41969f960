//! Keeps each service's OpenAPI document honest (api.md §8.3): a route table that remembers the
//! paths it serves, and the checks its test runs — the document describes exactly the served
//! public routes, and over HTTP every documented operation is routed while every other method
//! on a documented path answers 405. Also the `bearerAuth` scheme every document declares, and
//! [`FieldRules`]: the request rules the handlers enforce (lengths, patterns, formats, enums,
//! bounds), patched into the document from the same constants the validators use, because
//! utoipa's derive attributes only take literals. And what every service's document module
//! and document test would otherwise each write: [`crate::openapi_document!`],
//! [`crate::openapi_vocabulary!`], [`crate::openapi_envelope!`], [`check_served`]. No I/O.

use std::{borrow::Cow, collections::BTreeSet, future::Future};

use axum::{Router, routing::MethodRouter};
use http::{Method, StatusCode};
use serde_json::Value;
use utoipa::openapi::{
    RefOr,
    schema::{ObjectBuilder, Schema, Type},
};

/// Declares the `bearerAuth` security scheme (an EdDSA-signed JWT access token, api.md §2) that
/// every service's operations name in `security(("bearerAuth" = []))`.
pub struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearerAuth",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// Makes every `operationId` unique: an operation documented once for several methods (`PUT`
/// and `PATCH` of one change) gets the method appended on all but the first, since generated
/// clients and fuzzers key operations by it.
pub struct UniqueOperationIds;

impl utoipa::Modify for UniqueOperationIds {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let mut seen = BTreeSet::new();
        for item in openapi.paths.paths.values_mut() {
            let ops = [
                ("get", &mut item.get),
                ("put", &mut item.put),
                ("post", &mut item.post),
                ("delete", &mut item.delete),
                ("patch", &mut item.patch),
            ];
            for (method, op) in ops {
                let Some(op) = op.as_mut() else { continue };
                if let Some(id) = op.operation_id.as_mut()
                    && !seen.insert(id.clone())
                {
                    id.push('_');
                    id.push_str(method);
                    seen.insert(id.clone());
                }
            }
        }
    }
}

/// One rule a handler enforces on a value, in JSON Schema terms.
#[derive(Debug, Clone)]
pub enum Rule {
    /// `minLength`/`maxLength`, counted in Unicode scalar values as `validate::check_len` does.
    Length { min: usize, max: usize },
    /// `pattern` (ECMA-262, as JSON Schema reads it).
    Pattern(Cow<'static, str>),
    /// `format` (`email`, `uuid`, `date-time`, `password`, …).
    Format(&'static str),
    /// `enum`: the canonical spellings (input matching is case-insensitive, api.md §1.5).
    OneOf(&'static [&'static str]),
    /// Inclusive integer bounds (`minimum`/`maximum`).
    Range { min: i64, max: i64 },
    /// Any other keywords, merged into the schema as written (decimal bounds, `multipleOf`,
    /// `anyOf` of required members, …).
    Keywords(Value),
    /// `null` is not accepted: removed from the schema's `type`.
    NotNull,
    /// A property: listed in its object's `required`. A parameter or a body: `required: true`.
    Required,
    /// A property: not in `required`. A parameter or a body: `required: false` (a body that may
    /// be empty, which api.md §1.1 reads as `{}`).
    Optional,
}

impl Rule {
    /// `Rule::Pattern` of a fixed pattern.
    pub const fn pattern(p: &'static str) -> Self {
        Self::Pattern(Cow::Borrowed(p))
    }
}

/// What a [`FieldRule`] applies to.
#[derive(Debug, Clone)]
pub enum Target {
    /// A property of a component schema.
    Property {
        schema: &'static str,
        property: &'static str,
    },
    /// A whole component schema.
    Schema(&'static str),
    /// A parameter (path, query or header) of every operation on `path` that declares it.
    Param {
        path: &'static str,
        name: &'static str,
    },
    /// The request body of one operation (`method` lower-case).
    Body {
        path: &'static str,
        method: &'static str,
    },
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Property { schema, property } => write!(f, "property {schema}.{property}"),
            Self::Schema(schema) => write!(f, "schema {schema}"),
            Self::Param { path, name } => write!(f, "parameter {name} of {path}"),
            Self::Body { path, method } => write!(f, "request body of {method} {path}"),
        }
    }
}

/// Rules for one target.
#[derive(Debug, Clone)]
pub struct FieldRule {
    pub target: Target,
    pub rules: Vec<Rule>,
}

impl FieldRule {
    pub fn property(
        schema: &'static str,
        property: &'static str,
        rules: impl Into<Vec<Rule>>,
    ) -> Self {
        Self {
            target: Target::Property { schema, property },
            rules: rules.into(),
        }
    }

    pub fn schema(schema: &'static str, rules: impl Into<Vec<Rule>>) -> Self {
        Self {
            target: Target::Schema(schema),
            rules: rules.into(),
        }
    }

    pub fn param(path: &'static str, name: &'static str, rules: impl Into<Vec<Rule>>) -> Self {
        Self {
            target: Target::Param { path, name },
            rules: rules.into(),
        }
    }

    pub fn body(path: &'static str, method: &'static str, rules: impl Into<Vec<Rule>>) -> Self {
        Self {
            target: Target::Body { path, method },
            rules: rules.into(),
        }
    }
}

/// C0 and C1 control characters and DEL, which free text refuses (api.md §1.5:
/// `validate::normalize_text` refuses every `char::is_control`).
const CONTROLS: &str = r"\u0000-\u001f\u007f-\u009f";
/// The same, less tab, LF and CR, which multi-line fields accept.
const CONTROLS_MULTILINE: &str = r"\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f";

/// The rules of a free-text field read with `validate::Fields::text` and `rule`: its length, no
/// control characters, and, when it may not be empty, something that is left after trimming.
pub fn text(rule: crate::validate::Text) -> Vec<Rule> {
    let controls = if rule.multiline {
        CONTROLS_MULTILINE
    } else {
        CONTROLS
    };
    let pattern = if rule.min > 0 {
        format!(r"^[^{controls}]*[^\s{CONTROLS}][^{controls}]*$")
    } else {
        format!("^[^{controls}]*$")
    };
    vec![
        Rule::Length {
            min: rule.min,
            max: rule.max,
        },
        Rule::Pattern(pattern.into()),
    ]
}

/// The email rule of api.md §1.5 (`validate::email`), for its canonical (trimmed) form.
pub fn email() -> Vec<Rule> {
    use crate::validate::{EMAIL_LOCAL_MAX, EMAIL_MAX};
    vec![
        Rule::Format("email"),
        Rule::Length {
            min: 1,
            max: EMAIL_MAX,
        },
        Rule::Pattern(
            format!(r"^[^\s@{CONTROLS}]{{1,{EMAIL_LOCAL_MAX}}}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
                .into(),
        ),
    ]
}

/// RFC 3339 date-times whose every match parses (days up to 28, years from 1000): `format`
/// alone is an annotation in JSON Schema 2020-12, which validators and fuzzers do not check.
pub const DATE_TIME_PATTERN: &str = r"^[1-9][0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$";
/// Plain dates `YYYY-MM-DD` whose every match parses.
pub const DATE_PATTERN: &str = r"^[1-9][0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])$";
/// A hyphenated UUID in either letter case (api.md §1.5).
pub const UUID_PATTERN: &str =
    "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";

/// A date-time (api.md §1.6).
pub fn date_time() -> Vec<Rule> {
    vec![Rule::Format("date-time"), Rule::pattern(DATE_TIME_PATTERN)]
}

/// A query date: RFC 3339 date-time or a plain date (api.md §1.5).
pub fn date_or_date_time() -> Vec<Rule> {
    vec![Rule::Keywords(serde_json::json!({"anyOf": [
        {"format": "date-time", "pattern": DATE_TIME_PATTERN},
        {"format": "date", "pattern": DATE_PATTERN},
    ]}))]
}

/// A UUID.
pub fn uuid() -> Vec<Rule> {
    vec![Rule::Format("uuid"), Rule::pattern(UUID_PATTERN)]
}

/// A `validate::token_like` value of at most `max` characters (device ids).
pub fn token(max: usize) -> Vec<Rule> {
    vec![
        Rule::Length { min: 1, max },
        Rule::pattern(crate::validate::TOKEN_PATTERN),
    ]
}

/// A secret taken verbatim (`validate::Fields::secret`).
pub fn secret(min: usize, max: usize) -> Vec<Rule> {
    vec![Rule::Format("password"), Rule::Length { min, max }]
}

/// Concatenates rule lists: `rules([text(NAME), vec![Rule::NotNull]])`.
pub fn rules<const N: usize>(parts: [Vec<Rule>; N]) -> Vec<Rule> {
    parts.into_iter().flatten().collect()
}

/// A service's rule table: patched into its document, so generated clients and fuzzers know
/// what the handlers accept. A rule that names a schema, property, parameter or body the
/// document lacks is a problem [`FieldRules::apply`] reports (each service's document test
/// asserts there is none), so tables cannot rot.
///
/// The rules patch the document as JSON, and services serve that JSON: utoipa 6 cannot read
/// its own output back (a `serde_json::Value` field's schema has no `type`, which its
/// `Schema` refuses) and has no place for keywords such as `allowEmptyValue` or an `anyOf`
/// beside an object's properties, so a round trip through its types would fail or drop rules.
#[derive(Debug, Clone, Default)]
pub struct FieldRules(pub Vec<FieldRule>);

impl FieldRules {
    /// Patches the document; returns what could not be applied (the document is patched with
    /// everything else either way).
    pub fn apply(&self, doc: &mut Value) -> Result<(), Vec<String>> {
        let problems: Vec<String> = self
            .0
            .iter()
            .filter_map(|rule| apply_rule(doc, rule).err())
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

/// api.md §1.5: a query parameter given with an empty value is treated as absent, so every
/// optional query parameter is marked `allowEmptyValue` and a generated `?status=` is not
/// "schema-valid but rejected".
pub fn allow_empty_query_values(doc: &mut Value) {
    for_each_operation(doc, |_, _, op| {
        let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) else {
            return;
        };
        for p in params {
            if p["in"] == "query" && p["required"] != true {
                p["allowEmptyValue"] = Value::Bool(true);
            }
        }
    });
}

/// The error answers every operation of a kind can give, added where an operation does not
/// already document them (with its own wording), so documents list them consistently:
/// - a request body: 400 `VALIDATION_ERROR`/`INVALID_JSON`, 413, 415 (api.md §1.1, §3.6);
/// - query or header parameters: 400 `VALIDATION_ERROR` (api.md §1.5);
/// - a bearer token required: 401 (api.md §2.5), and 403 with `forbidden`'s wording where the
///   service serves one role only;
/// - a bearer token or a body (the handler reads a database or Redis): 503;
/// - every operation not in `rate_limit_exempt`: 429 `RATE_LIMIT_EXCEEDED`, answered by the
///   gateway whose merged document this becomes (api.md §3.3).
pub struct StandardResponses {
    pub rate_limit_exempt: &'static [&'static str],
    /// The wording of the 403 every bearer-token operation answers, in a service for one role.
    pub forbidden: Option<&'static str>,
}

impl StandardResponses {
    /// Every route counts against the gateway's rate limit (api.md §3.3).
    pub const RATE_LIMITED: Self = Self {
        rate_limit_exempt: &[],
        forbidden: None,
    };

    /// Every bearer-token operation also answers 403 `description` (a service for one role).
    #[must_use]
    pub const fn with_forbidden(self, description: &'static str) -> Self {
        Self {
            forbidden: Some(description),
            ..self
        }
    }

    pub fn apply(&self, doc: &mut Value) {
        for_each_operation(doc, |path, _, op| {
            let has_body = op.get("requestBody").is_some();
            let has_params = op["parameters"]
                .as_array()
                .is_some_and(|p| p.iter().any(|p| p["in"] == "query" || p["in"] == "header"));
            let security = op["security"].as_array();
            let bearer = security
                .is_some_and(|s| !s.is_empty() && s.iter().all(|r| r.get("bearerAuth").is_some()));
            let secured = security.is_some_and(|s| !s.is_empty());
            let mut add = |status: &str, description: &str| {
                if let Some(responses) = op["responses"].as_object_mut() {
                    responses.entry(status).or_insert_with(|| {
                        serde_json::json!({
                            "description": description,
                            "content": {"application/json": {"schema": {"$ref": ERROR_ENVELOPE}}}
                        })
                    });
                }
            };
            if has_body {
                add("400", "VALIDATION_ERROR or INVALID_JSON");
                add("413", "PAYLOAD_TOO_LARGE");
                add("415", "UNSUPPORTED_MEDIA_TYPE");
            } else if has_params {
                add("400", "VALIDATION_ERROR");
            }
            if bearer {
                add(
                    "401",
                    "UNAUTHORIZED, TOKEN_EXPIRED, TOKEN_INVALID or SESSION_REVOKED",
                );
                if let Some(forbidden) = self.forbidden {
                    add("403", forbidden);
                }
            }
            if secured || has_body {
                add("503", "SERVICE_UNAVAILABLE: a required dependency is down");
            }
            if !self.rate_limit_exempt.contains(&path) {
                add("429", "RATE_LIMIT_EXCEEDED (gateway; Retry-After header)");
            }
        });
    }
}

/// [`describe`] as served at `/openapi.json` (and merged by the gateway): problems with the
/// field rules are logged, and the document is served regardless.
pub fn document(
    openapi: &utoipa::openapi::OpenApi,
    rules: &FieldRules,
    responses: &StandardResponses,
) -> Value {
    let (doc, result) = describe(openapi, rules, responses);
    if let Err(problems) = result {
        tracing::error!(
            ?problems,
            "the OpenAPI field rules do not match the document"
        );
    }
    doc
}

/// Ends each service's `openapi` module, which defines `field_rules()`: declares `RESPONSES`
/// (`$responses`), `openapi()`, the document as served and merged by the gateway ([`document`]
/// of the utoipa `$api`), `serve()`, its `GET /openapi.json` handler (raw, not enveloped: api.md
/// §1.3), and the unit test that every field rule applies. A macro because these are items of
/// the service's module.
#[macro_export]
macro_rules! openapi_document {
    ($api:ty, $responses:expr) => {
        /// The standard error answers of every operation.
        const RESPONSES: $crate::openapi::StandardResponses = $responses;

        /// The service's OpenAPI document as served (also what the gateway merges).
        pub fn openapi() -> ::serde_json::Value {
            $crate::openapi::document(
                &<$api as ::utoipa::OpenApi>::openapi(),
                &field_rules(),
                &RESPONSES,
            )
        }

        /// `GET /openapi.json` (raw, not enveloped: api.md §1.3).
        pub async fn serve() -> ::axum::Json<::serde_json::Value> {
            ::axum::Json(openapi())
        }

        #[cfg(test)]
        #[test]
        fn every_field_rule_applies() {
            let api = <$api as ::utoipa::OpenApi>::openapi();
            let (_, result) = $crate::openapi::describe(&api, &field_rules(), &RESPONSES);
            assert_eq!(result, Ok(()));
        }
    };
}

/// A service's served document: the generated one with its field rules, empty query values
/// allowed and the standard responses, in that order. Problems with the rules are returned
/// beside the document: a service logs them when serving and its test asserts there are none.
pub fn describe(
    openapi: &utoipa::openapi::OpenApi,
    rules: &FieldRules,
    responses: &StandardResponses,
) -> (Value, Result<(), Vec<String>>) {
    let mut doc = match serde_json::to_value(openapi) {
        Ok(doc) => doc,
        Err(e) => return (Value::Null, Err(vec![e.to_string()])),
    };
    let result = rules.apply(&mut doc);
    allow_empty_query_values(&mut doc);
    responses.apply(&mut doc);
    (doc, result)
}

fn for_each_operation(doc: &mut Value, mut f: impl FnMut(&str, &str, &mut Value)) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, item) in paths {
        for method in &METHODS {
            let method = method.as_str().to_lowercase();
            if let Some(op) = item.get_mut(&method) {
                f(path, &method, op);
            }
        }
    }
}

fn apply_rule(doc: &mut Value, rule: &FieldRule) -> Result<(), String> {
    let missing = || format!("{} does not exist", rule.target);
    match &rule.target {
        Target::Property { schema, property } => {
            let object = doc
                .pointer_mut(&format!("/components/schemas/{schema}"))
                .filter(|o| o["properties"].get(property).is_some())
                .ok_or_else(missing)?;
            for r in &rule.rules {
                match r {
                    Rule::Required | Rule::Optional => {
                        set_required(object, property, matches!(r, Rule::Required));
                    }
                    other => patch_schema(&mut object["properties"][property], other)
                        .map_err(|e| format!("{}: {e}", rule.target))?,
                }
            }
        }
        Target::Schema(schema) => {
            let node = doc
                .pointer_mut(&format!("/components/schemas/{schema}"))
                .ok_or_else(missing)?;
            for r in &rule.rules {
                patch_schema(node, r).map_err(|e| format!("{}: {e}", rule.target))?;
            }
        }
        Target::Param { path, name } => {
            let item = doc
                .pointer_mut(&format!("/paths/{}", pointer_token(path)))
                .ok_or_else(missing)?;
            let mut found = false;
            for method in &METHODS {
                let Some(params) = item
                    .get_mut(method.as_str().to_lowercase())
                    .and_then(|op| op.get_mut("parameters"))
                    .and_then(Value::as_array_mut)
                else {
                    continue;
                };
                for p in params.iter_mut().filter(|p| p["name"] == *name) {
                    found = true;
                    for r in &rule.rules {
                        match r {
                            Rule::Required => p["required"] = Value::Bool(true),
                            Rule::Optional => p["required"] = Value::Bool(false),
                            other => patch_schema(&mut p["schema"], other)
                                .map_err(|e| format!("{}: {e}", rule.target))?,
                        }
                    }
                }
            }
            if !found {
                return Err(missing());
            }
        }
        Target::Body { path, method } => {
            let body = doc
                .pointer_mut(&format!(
                    "/paths/{}/{method}/requestBody",
                    pointer_token(path)
                ))
                .ok_or_else(missing)?;
            for r in &rule.rules {
                match r {
                    Rule::Required => body["required"] = Value::Bool(true),
                    Rule::Optional => body["required"] = Value::Bool(false),
                    other => return Err(format!("{}: {other:?} does not apply", rule.target)),
                }
            }
        }
    }
    Ok(())
}

/// `key` as one reference token of a JSON pointer (RFC 6901: `~` → `~0`, `/` → `~1`).
fn pointer_token(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn set_required(object: &mut Value, property: &str, required: bool) {
    let mut list: Vec<Value> = object["required"].as_array().cloned().unwrap_or_default();
    list.retain(|p| p != property);
    if required {
        list.push(Value::String(property.to_owned()));
    }
    if let Some(map) = object.as_object_mut() {
        if list.is_empty() {
            map.remove("required");
        } else {
            map.insert("required".into(), Value::Array(list));
        }
    }
}

/// Whether a schema admits `null` (`type: [.., "null"]`).
fn nullable(schema: &Value) -> bool {
    schema["type"]
        .as_array()
        .is_some_and(|t| t.iter().any(|x| x == "null"))
}

fn patch_schema(schema: &mut Value, rule: &Rule) -> Result<(), String> {
    let is_null_or = |s: &Value| {
        s["oneOf"]
            .as_array()
            .is_some_and(|b| b.len() == 2 && b.iter().any(|x| x["type"] == "null"))
    };
    // `Option<Ref>` is `oneOf: [null, $ref]`: only NotNull applies to the wrapper.
    if is_null_or(schema) {
        if matches!(rule, Rule::NotNull) {
            let inner = schema["oneOf"]
                .as_array()
                .and_then(|b| b.iter().find(|x| x["type"] != "null"))
                .cloned()
                .unwrap_or(Value::Null);
            *schema = inner;
            return Ok(());
        }
        return Err(format!(
            "{rule:?} on a nullable reference: patch the referenced schema"
        ));
    }
    let Some(map) = schema.as_object_mut() else {
        return Err("not a schema object".into());
    };
    let null = nullable(&Value::Object(map.clone()));
    match rule {
        Rule::Length { min, max } => {
            if *min > 0 {
                map.insert("minLength".into(), (*min).into());
            }
            map.insert("maxLength".into(), (*max).into());
        }
        Rule::Pattern(p) => {
            map.insert("pattern".into(), Value::String(p.to_string()));
        }
        Rule::Format(f) => {
            map.insert("format".into(), Value::String((*f).to_owned()));
        }
        Rule::OneOf(values) => {
            let mut list: Vec<Value> = values.iter().map(|v| Value::String((*v).into())).collect();
            if null {
                list.push(Value::Null);
            }
            map.insert("enum".into(), Value::Array(list));
        }
        Rule::Range { min, max } => {
            map.insert("minimum".into(), (*min).into());
            map.insert("maximum".into(), (*max).into());
        }
        Rule::Keywords(Value::Object(k)) => {
            for (key, value) in k {
                map.insert(key.clone(), value.clone());
            }
        }
        Rule::Keywords(other) => return Err(format!("keywords must be an object, not {other}")),
        Rule::NotNull => {
            if let Some(types) = map.get("type").and_then(Value::as_array) {
                let kept: Vec<Value> = types.iter().filter(|t| *t != "null").cloned().collect();
                let kept = if kept.len() == 1 {
                    kept[0].clone()
                } else {
                    Value::Array(kept)
                };
                map.insert("type".into(), kept);
            }
            if let Some(Value::Array(values)) = map.get_mut("enum") {
                values.retain(|v| !v.is_null());
            }
        }
        Rule::Required | Rule::Optional => {
            return Err(format!("{rule:?} applies to a property, parameter or body"));
        }
    }
    Ok(())
}

/// The `pagination` object of every list answer (api.md §1.6), as the services' documents
/// describe it (documentation only: handlers build their JSON directly).
#[derive(utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[expect(dead_code, reason = "documentation only")]
pub struct Pagination {
    page: i64,
    limit: i64,
    total: i64,
    total_pages: i64,
}

/// One violated rule in a `VALIDATION_ERROR`'s `details` (api.md §1.5), as the services'
/// documents describe it (documentation only).
#[derive(utoipa::ToSchema)]
#[expect(dead_code, reason = "documentation only")]
pub struct FieldError {
    field: String,
    message: String,
}

/// A string schema limited to `values` (see [`crate::openapi_vocabulary!`]).
pub fn vocabulary(values: &[&str], description: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values.iter().copied()))
        .description(Some(description))
        .into()
}

/// Declares documentation types of string vocabularies whose values are the constants the
/// handlers validate with (runtime values, which a derive cannot take), one a line:
/// `openapi_vocabulary! { PaymentStatus = STATUSES, "A payment status."; }` (the description is
/// the schema's).
#[macro_export]
macro_rules! openapi_vocabulary {
    ($($name:ident = $values:expr, $description:literal;)+) => {$(
        #[doc = $description]
        pub struct $name;

        impl ::utoipa::PartialSchema for $name {
            fn schema() -> ::utoipa::openapi::RefOr<::utoipa::openapi::schema::Schema> {
                $crate::openapi::vocabulary(&$values, $description)
            }
        }

        impl ::utoipa::ToSchema for $name {}
    )+};
}

/// Declares the documentation type of a success envelope `{success: true, data: <$data>}`
/// (api.md §1.3) for a service's utoipa document: `openapi_envelope!(UserEnvelope, User, "…");`.
#[macro_export]
macro_rules! openapi_envelope {
    ($name:ident, $data:ty, $doc:literal) => {
        #[doc = $doc]
        #[derive(::utoipa::ToSchema)]
        pub struct $name {
            /// Always `true`.
            success: bool,
            data: $data,
        }
    };
}

/// The methods an operation may use; a path item's other keys (`parameters`, `summary`) are not
/// operations.
pub const METHODS: [Method; 5] = [
    Method::GET,
    Method::PUT,
    Method::POST,
    Method::PATCH,
    Method::DELETE,
];

/// A router under construction together with every path registered on it, so the OpenAPI test
/// compares the document with what is actually served instead of a hand-kept list.
pub struct RouteTable<S> {
    router: Router<S>,
    paths: Vec<&'static str>,
}

impl<S: Clone + Send + Sync + 'static> Default for RouteTable<S> {
    fn default() -> Self {
        Self {
            router: Router::new(),
            paths: Vec::new(),
        }
    }
}

impl<S: Clone + Send + Sync + 'static> RouteTable<S> {
    #[must_use]
    pub fn route(mut self, path: &'static str, method_router: MethodRouter<S>) -> Self {
        self.router = self.router.route(path, method_router);
        self.paths.push(path);
        self
    }

    pub fn into_router(self) -> Router<S> {
        self.router
    }

    /// Every registered path, internal ones and `/openapi.json` included.
    #[must_use]
    pub fn paths(&self) -> &[&'static str] {
        &self.paths
    }

    /// The paths the public document must describe: not `/internal/*` (never routed by the
    /// gateway) and not the document itself.
    #[must_use]
    pub fn public_paths(&self) -> BTreeSet<String> {
        self.paths
            .iter()
            .filter(|p| !p.starts_with("/internal") && **p != "/openapi.json")
            .map(|p| shape(p))
            .collect()
    }
}

/// `/a/{x}/b` → `/a/{}/b`: parameter names are not part of what is served.
#[must_use]
pub fn shape(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut in_param = false;
    for c in path.chars() {
        match c {
            '{' => {
                in_param = true;
                out.push_str("{}");
            }
            '}' => in_param = false,
            _ if !in_param => out.push(c),
            _ => {}
        }
    }
    out
}

/// A concrete URL path for a template: a value that passes routing, whatever the handler then
/// says about it.
#[must_use]
pub fn concrete(path: &str) -> String {
    shape(path).replace("{}", "probe-1")
}

/// Every error answer is the envelope of api.md §1.3, and each document names its schema so.
pub const ERROR_ENVELOPE: &str = "#/components/schemas/ErrorEnvelope";

/// The documented operations as `(method, shaped path)`.
pub type Operations = BTreeSet<(Method, String)>;

/// Reads a document's operations and lists what is wrong with it against the served public
/// paths: a path documented but not served or served but not documented, an undeclared or
/// extra path parameter, an operation without a success response, an error response that is not
/// the [`ERROR_ENVELOPE`], a `$ref` that points nowhere. An empty list means the document
/// matches.
#[must_use]
pub fn check_document(doc: &Value, served: &BTreeSet<String>) -> (Operations, Vec<String>) {
    let mut ops = Operations::new();
    let mut problems = Vec::new();
    let mut operation_ids = BTreeSet::new();
    if doc["openapi"] != "3.1.0" {
        problems.push(format!("openapi version {} is not 3.1.0", doc["openapi"]));
    }
    let empty = serde_json::Map::new();
    let paths = doc["paths"].as_object().unwrap_or(&empty);
    for (path, item) in paths {
        let templated: BTreeSet<&str> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        for method in &METHODS {
            let Some(op) = item.get(method.as_str().to_lowercase()) else {
                continue;
            };
            ops.insert((method.clone(), shape(path)));
            let declared: BTreeSet<&str> = op["parameters"]
                .as_array()
                .into_iter()
                .chain(item["parameters"].as_array())
                .flatten()
                .filter(|p| p["in"] == "path")
                .filter_map(|p| p["name"].as_str())
                .collect();
            if declared != templated {
                problems.push(format!(
                    "{method} {path}: path parameters {declared:?}, template has {templated:?}"
                ));
            }
            match op["operationId"].as_str() {
                None => problems.push(format!("{method} {path}: no operationId")),
                Some(id) if !operation_ids.insert(id.to_owned()) => {
                    problems.push(format!("{method} {path}: operationId {id} is used twice"));
                }
                Some(_) => {}
            }
            let responses = op["responses"].as_object().unwrap_or(&empty);
            if !responses.keys().any(|s| s.starts_with('2')) {
                problems.push(format!("{method} {path}: no success response"));
            }
            for (status, r) in responses {
                let is_error = status.starts_with('4') || status.starts_with('5');
                let schema = &r["content"]["application/json"]["schema"]["$ref"];
                if is_error && schema != ERROR_ENVELOPE {
                    problems.push(format!("{method} {path} {status}: not the error envelope"));
                }
            }
        }
    }
    let mut refs = Vec::new();
    collect_refs(doc, &mut refs);
    for r in refs {
        let target = r
            .strip_prefix("#/")
            .map(|path| path.split('/').fold(doc, |node, part| &node[part]));
        if target.is_none_or(Value::is_null) {
            problems.push(format!("{r} does not resolve"));
        }
    }
    let documented: BTreeSet<String> = ops.iter().map(|(_, p)| p.clone()).collect();
    for p in documented.difference(served) {
        problems.push(format!("{p} is documented but not served"));
    }
    for p in served.difference(&documented) {
        problems.push(format!("{p} is served but not documented"));
    }
    (ops, problems)
}

fn collect_refs<'a>(node: &'a Value, out: &mut Vec<&'a str>) {
    match node {
        Value::Object(map) => {
            for (key, value) in map {
                match value {
                    Value::String(r) if key == "$ref" => out.push(r),
                    _ => collect_refs(value, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

/// Calls every method of [`METHODS`] on every documented path through `call` (which answers the
/// status and the envelope's error code, empty when there is none) and lists the mismatches: a
/// documented operation that is not routed (405 or the router's `NOT_FOUND`), or a method the
/// document leaves out that does not answer 405.
pub async fn probe<F, Fut>(ops: &Operations, mut call: F) -> Vec<String>
where
    F: FnMut(Method, String) -> Fut,
    Fut: Future<Output = (StatusCode, String)>,
{
    let paths: BTreeSet<&String> = ops.iter().map(|(_, p)| p).collect();
    let mut problems = Vec::new();
    for path in paths {
        for method in &METHODS {
            let (status, code) = call(method.clone(), concrete(path)).await;
            if ops.contains(&(method.clone(), path.clone())) {
                if status == StatusCode::METHOD_NOT_ALLOWED || code == "NOT_FOUND" {
                    problems.push(format!(
                        "{method} {path} is documented but not served ({status} {code})"
                    ));
                }
            } else if status != StatusCode::METHOD_NOT_ALLOWED {
                problems.push(format!(
                    "{method} {path} is served but not documented ({status})"
                ));
            }
        }
    }
    problems
}

/// The body of each service's `tests/openapi.rs` (see [`crate::openapi_served_test!`]): `GET
/// /openapi.json` answers `expected` raw (not enveloped) with the `bearerAuth` scheme, it
/// describes exactly the table's public paths (the internal ones exist and are left out on
/// purpose), and [`probe`] finds every documented operation routed and every other method
/// answering 405. `call` sends a request with a `{}` JSON body and answers its status and JSON
/// body (`null` when there is none).
///
/// # Panics
/// When any of that does not hold: it is a test.
pub async fn check_served<S, F, Fut>(expected: &Value, table: &RouteTable<S>, mut call: F)
where
    S: Clone + Send + Sync + 'static,
    F: FnMut(Method, String) -> Fut,
    Fut: Future<Output = (StatusCode, Value)>,
{
    let (status, doc) = call(Method::GET, "/openapi.json".to_owned()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc.get("success").is_none(), "not enveloped");
    assert_eq!(&doc, expected);
    let bearer = &doc["components"]["securitySchemes"]["bearerAuth"];
    assert_eq!(bearer["type"], "http");
    assert_eq!(bearer["scheme"], "bearer");
    let (ops, problems) = check_document(&doc, &table.public_paths());
    assert!(problems.is_empty(), "{problems:#?}");
    assert!(
        table.paths().iter().any(|p| p.starts_with("/internal")),
        "the internal routes exist and are left out on purpose"
    );
    let problems = probe(&ops, |method, path| {
        let answer = call(method, path);
        async move {
            let (status, body) = answer.await;
            let code = body["error"]["code"].as_str().unwrap_or("").to_owned();
            (status, code)
        }
    })
    .await;
    assert!(problems.is_empty(), "{problems:#?}");
}

/// A service's `tests/openapi.rs`: `openapi_served_test!(payplane_auth);` spawns the service's
/// `testing::TestApp` and runs [`check_served`] over HTTP against its `openapi()` and
/// `routes::table()`. A macro because the HTTP client (`reqwest`) and the TLS provider
/// (`rustls`) are the service's test dependencies, not the kit's.
#[macro_export]
macro_rules! openapi_served_test {
    ($service:ident) => {
        #[::tokio::test]
        async fn openapi_document_describes_exactly_the_served_routes() {
            let _ = ::rustls::crypto::aws_lc_rs::default_provider().install_default();
            let app = $service::testing::TestApp::spawn()
                .await
                .expect(concat!("spawn ", stringify!($service)));
            let http = ::reqwest::Client::new();
            let (expected, table) = ($service::openapi(), $service::routes::table());
            $crate::openapi::check_served(&expected, &table, |method, path| {
                let request = http
                    .request(method, app.url(&path))
                    .json(&::serde_json::json!({}));
                async move {
                    let res = request.send().await.unwrap();
                    let status = res.status();
                    (
                        status,
                        res.json().await.unwrap_or(::serde_json::Value::Null),
                    )
                }
            })
            .await;
            app.stop().await;
        }
    };
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn served(paths: &[&str]) -> BTreeSet<String> {
        paths.iter().map(|p| shape(p)).collect()
    }

    fn doc() -> Value {
        json!({
            "openapi": "3.1.0",
            "components": {"schemas": {"ErrorEnvelope": {"type": "object"}}},
            "paths": {
                "/api/things/{id}": {
                    "get": {
                        "operationId": "get_thing",
                        "parameters": [{"in": "path", "name": "id"}],
                        "responses": {
                            "200": {"description": "ok"},
                            "404": {"description": "not found", "content": {"application/json":
                                {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}}
                        }
                    }
                }
            }
        })
    }

    /// A small utoipa document: one body schema, one operation with a query parameter.
    fn api() -> utoipa::openapi::OpenApi {
        #[derive(utoipa::ToSchema)]
        #[expect(dead_code, reason = "documentation only")]
        struct Thing {
            name: String,
            note: Option<String>,
        }
        #[utoipa::path(post, path = "/api/things", request_body = Thing,
            params(("mode" = Option<String>, Query)),
            responses((status = 201, description = "created")))]
        #[expect(dead_code, reason = "documentation only")]
        fn create() {}
        #[derive(utoipa::OpenApi)]
        #[openapi(paths(create))]
        struct Api;
        <Api as utoipa::OpenApi>::openapi()
    }

    fn rules() -> FieldRules {
        FieldRules(vec![
            FieldRule::property("Thing", "name", text(crate::validate::Text::len(1, 255))),
            FieldRule::property("Thing", "note", [Rule::OneOf(&["a", "b"]), Rule::NotNull]),
            FieldRule::param("/api/things", "mode", [Rule::OneOf(&["x"])]),
            FieldRule::body("/api/things", "post", [Rule::Optional]),
        ])
    }

    #[test]
    fn field_rules_patch_properties_parameters_and_bodies() {
        let (v, result) = describe(&api(), &rules(), &StandardResponses::RATE_LIMITED);
        assert_eq!(result, Ok(()));
        let name = &v["components"]["schemas"]["Thing"]["properties"]["name"];
        assert_eq!(
            (&name["minLength"], &name["maxLength"]),
            (&json!(1), &json!(255))
        );
        assert!(name["pattern"].as_str().unwrap().starts_with('^'));
        let note = &v["components"]["schemas"]["Thing"]["properties"]["note"];
        assert_eq!(note["type"], "string");
        assert_eq!(note["enum"], json!(["a", "b"]));
        let op = &v["paths"]["/api/things"]["post"];
        assert_eq!(op["requestBody"]["required"], false);
        assert_eq!(op["parameters"][0]["allowEmptyValue"], true);
        assert_eq!(op["parameters"][0]["schema"]["enum"], json!(["x"]));
        for status in ["400", "413", "415", "429", "503"] {
            assert_eq!(
                op["responses"][status]["content"]["application/json"]["schema"]["$ref"],
                ERROR_ENVELOPE,
                "{status}"
            );
        }
        assert!(op["responses"].get("401").is_none(), "not secured");
    }

    #[test]
    fn a_service_for_one_role_documents_403_on_secured_operations() {
        let mut doc = json!({"paths": {"/api/things": {
            "get": {"security": [{"bearerAuth": []}], "responses": {}},
            "post": {"responses": {}},
        }}});
        StandardResponses::RATE_LIMITED
            .with_forbidden("FORBIDDEN (not ADMIN)")
            .apply(&mut doc);
        let item = &doc["paths"]["/api/things"];
        let forbidden = &item["get"]["responses"]["403"];
        assert_eq!(forbidden["description"], "FORBIDDEN (not ADMIN)");
        assert_eq!(
            forbidden["content"]["application/json"]["schema"]["$ref"],
            ERROR_ENVELOPE
        );
        assert!(
            item["post"]["responses"].get("403").is_none(),
            "not secured"
        );
    }

    #[test]
    fn a_rule_on_something_missing_fails() {
        for rule in [
            FieldRule::property("Thing", "nmae", [Rule::NotNull]),
            FieldRule::property("Thang", "name", [Rule::NotNull]),
            FieldRule::schema("Thang", [Rule::NotNull]),
            FieldRule::param("/api/things", "mood", [Rule::NotNull]),
            FieldRule::param("/api/thongs", "mode", [Rule::NotNull]),
            FieldRule::body("/api/things", "put", [Rule::Optional]),
        ] {
            let target = rule.target.to_string();
            let mut doc = serde_json::to_value(api()).unwrap();
            let problems = FieldRules(vec![rule]).apply(&mut doc).unwrap_err();
            assert_eq!(problems.len(), 1, "{problems:?}");
            assert!(problems[0].contains(&target), "{problems:?}");
        }
    }

    #[test]
    fn shapes_ignore_parameter_names() {
        assert_eq!(shape("/a/{id}/b/{key}"), "/a/{}/b/{}");
        assert_eq!(concrete("/a/{id}"), "/a/probe-1");
    }

    #[test]
    fn table_keeps_public_paths_only() {
        let t: RouteTable<()> = RouteTable::default()
            .route("/openapi.json", axum::routing::get(|| async { "" }))
            .route("/api/x/{id}", axum::routing::get(|| async { "" }))
            .route("/internal/x", axum::routing::get(|| async { "" }));
        assert_eq!(t.paths().len(), 3);
        assert_eq!(t.public_paths(), served(&["/api/x/{other}"]));
    }

    #[test]
    fn a_matching_document_has_no_problems() {
        let (ops, problems) = check_document(&doc(), &served(&["/api/things/{thing}"]));
        assert!(problems.is_empty(), "{problems:?}");
        assert!(ops.contains(&(Method::GET, "/api/things/{}".to_owned())));
    }

    #[test]
    fn every_kind_of_drift_is_reported() {
        let mut d = doc();
        d["paths"]["/api/things/{id}"]["put"] = d["paths"]["/api/things/{id}"]["get"].clone();
        d["paths"]["/api/things/{id}"]["get"]["parameters"] = json!([]);
        d["paths"]["/api/things/{id}"]["get"]["responses"] = json!({"400": {"description": "bare"}, "409": {"content": {"application/json":
                {"schema": {"$ref": "#/components/schemas/Missing"}}}}});
        let (_, problems) = check_document(&d, &served(&["/api/other"]));
        let text = problems.join("\n");
        for needle in [
            "path parameters",
            "no success response",
            "400: not the error envelope",
            "#/components/schemas/Missing does not resolve",
            "/api/things/{} is documented but not served",
            "/api/other is served but not documented",
            "operationId get_thing is used twice",
        ] {
            assert!(text.contains(needle), "{needle} missing from {text}");
        }
    }

    #[tokio::test]
    async fn probe_reports_unrouted_and_undocumented_methods() {
        let (ops, _) = check_document(&doc(), &served(&["/api/things/{id}"]));
        // GET is routed; PUT is routed but undocumented; the rest answer 405.
        let problems = probe(&ops, |m, path| async move {
            assert_eq!(path, "/api/things/probe-1");
            match m {
                Method::GET | Method::PUT => (StatusCode::OK, String::new()),
                _ => (StatusCode::METHOD_NOT_ALLOWED, String::new()),
            }
        })
        .await;
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].starts_with("PUT /api/things/{} is served but not documented"));
        let problems = probe(&ops, |_, _| async {
            (StatusCode::NOT_FOUND, "NOT_FOUND".to_owned())
        })
        .await;
        assert!(
            problems[0].contains("documented but not served"),
            "{problems:?}"
        );
    }
}
