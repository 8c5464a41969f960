//! The service's OpenAPI 3.1 document (api.md §8.3: public routes only), served raw at
//! `GET /openapi.json` and merged by the gateway. Written as data: the handlers build their
//! JSON directly, so the document describes the wire shapes of api.md §6. No I/O.

use axum::{Json, response::IntoResponse};
use serde_json::{Value, json};

use crate::audit::{ACTIONS, RESOURCE_TYPES};

fn op(summary: &str, ok: &str, schema: Option<&str>, body: Option<&str>) -> Value {
    let mut responses = json!({
        "400": {"$ref": "#/components/responses/Error"},
        "401": {"$ref": "#/components/responses/Error"},
        "403": {"$ref": "#/components/responses/Error"},
    });
    let content = schema.map_or(json!({"description": "No content"}), |s| {
        json!({"description": "OK", "content": {"application/json": {"schema": {
            "type": "object",
            "properties": {"success": {"const": true}, "data": {"$ref": format!("#/components/schemas/{s}")}}
        }}}})
    });
    responses[ok] = content;
    let mut o = json!({
        "tags": ["admin"],
        "summary": summary,
        "security": [{"bearerAuth": []}],
        "responses": responses,
    });
    if let Some(b) = body {
        o["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{b}")}}}});
    }
    o
}

fn param(name: &str, location: &str, schema: &Value) -> Value {
    json!({"name": name, "in": location, "required": location == "path", "schema": schema})
}

/// The document.
pub fn openapi() -> Value {
    let id = param("id", "path", &json!({"type": "string", "format": "uuid"}));
    let key = param(
        "key",
        "path",
        &json!({"type": "string", "pattern": "^[a-z0-9]+([._-][a-z0-9]+)*$", "maxLength": 128}),
    );
    let page = param("page", "query", &json!({"type": "integer", "minimum": 1}));
    let limit = param(
        "limit",
        "query",
        &json!({"type": "integer", "minimum": 1, "maximum": 100}),
    );
    let role = json!({"type": "string", "enum": ["ADMIN", "CUSTOMER", "VENDOR"]});
    let mut list_users = op(
        "List, search and filter users",
        "200",
        Some("UserPage"),
        None,
    );
    list_users["parameters"] = json!([
        page,
        limit,
        param(
            "sort",
            "query",
            &json!({"type": "string", "enum": ["createdAt", "email", "name", "role"]})
        ),
        param(
            "order",
            "query",
            &json!({"type": "string", "enum": ["asc", "desc"]})
        ),
        param("role", "query", &role),
        param(
            "search",
            "query",
            &json!({"type": "string", "minLength": 1, "maxLength": 255})
        ),
        param("isActive", "query", &json!({"type": "boolean"})),
    ]);
    let mut audit = op("Audit log, newest first", "200", Some("AuditPage"), None);
    audit["parameters"] = json!([
        page,
        limit,
        param(
            "action",
            "query",
            &json!({"type": "string", "enum": ACTIONS})
        ),
        param(
            "userId",
            "query",
            &json!({"type": "string", "format": "uuid"})
        ),
        param(
            "resourceType",
            "query",
            &json!({"type": "string", "enum": RESOURCE_TYPES})
        ),
        param(
            "resourceId",
            "query",
            &json!({"type": "string", "minLength": 1, "maxLength": 255})
        ),
        param("startDate", "query", &json!({"type": "string"})),
        param("endDate", "query", &json!({"type": "string"})),
    ]);
    let with = |mut o: Value, p: &Value| {
        o["parameters"] = json!([p]);
        o
    };
    let role_op = op(
        "Change a user's role",
        "200",
        Some("ManagedUser"),
        Some("RoleChange"),
    );
    let mut put_config = with(
        op(
            "Create or replace a config entry",
            "200",
            Some("ConfigEntry"),
            Some("ConfigPut"),
        ),
        &key,
    );
    put_config["responses"]["201"] = put_config["responses"]["200"].clone();
    json!({
        "openapi": "3.1.0",
        "info": {"title": "payplane admin", "version": env!("CARGO_PKG_VERSION")},
        "tags": [{"name": "admin", "description": "User management, audit log, system config, health (ADMIN only)"}],
        "paths": {
            "/api/admin/users": {
                "get": list_users,
                "post": op("Create a user (any role)", "201", Some("ManagedUser"), Some("UserCreate")),
            },
            "/api/admin/users/{id}": {
                "get": with(op("One user", "200", Some("ManagedUser"), None), &id),
                "put": with(op("Change name and/or email", "200", Some("ManagedUser"), Some("UserUpdate")), &id),
                "delete": with(op("Delete a user", "204", None, None), &id),
            },
            "/api/admin/users/{id}/role": {"put": with(role_op.clone(), &id), "patch": with(role_op, &id)},
            "/api/admin/users/{id}/status": {
                "patch": with(op("Activate or deactivate", "200", Some("ManagedUser"), Some("StatusChange")), &id),
            },
            "/api/admin/audit-logs": {"get": audit},
            "/api/admin/audit-logs/actions": {"get": op("Known audit actions", "200", Some("Actions"), None)},
            "/api/admin/config": {
                "get": op("All config entries", "200", Some("ConfigList"), None),
                "post": op("Create a config entry", "201", Some("ConfigEntry"), Some("ConfigCreate")),
            },
            "/api/admin/config/{key}": {
                "get": with(op("One config entry", "200", Some("ConfigEntry"), None), &key),
                "put": put_config,
                "delete": with(op("Delete a config entry", "204", None, None), &key),
            },
            "/api/admin/health": {"get": op("System health", "200", Some("SystemHealth"), None)},
            "/api/admin/dashboard": {"get": op("Dashboard totals", "200", Some("Dashboard"), None)},
        },
        "components": {
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
            "responses": {"Error": {"description": "Error envelope", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/AdminError"}}}}},
            "schemas": {
                "AdminError": {"type": "object", "properties": {"success": {"const": false}, "error": {"type": "object",
                    "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "details": {}, "requestId": {"type": "string"}}}}},
                "ManagedUser": {"type": "object", "properties": {
                    "id": {"type": "string", "format": "uuid"}, "email": {"type": "string"}, "name": {"type": "string"},
                    "role": role, "isActive": {"type": "boolean"}, "emailVerified": {"type": "boolean"},
                    "lastLoginAt": {"type": ["string", "null"], "format": "date-time"},
                    "createdAt": {"type": "string", "format": "date-time"}, "updatedAt": {"type": "string", "format": "date-time"}}},
                "Pagination": {"type": "object", "properties": {"page": {"type": "integer"}, "limit": {"type": "integer"},
                    "total": {"type": "integer"}, "totalPages": {"type": "integer"}}},
                "UserPage": {"type": "object", "properties": {"users": {"type": "array", "items": {"$ref": "#/components/schemas/ManagedUser"}},
                    "pagination": {"$ref": "#/components/schemas/Pagination"}}},
                "UserCreate": {"type": "object", "required": ["email", "password", "name", "role"], "properties": {
                    "email": {"type": "string"}, "password": {"type": "string", "minLength": 12, "maxLength": 255},
                    "name": {"type": "string", "minLength": 1, "maxLength": 255}, "role": role}},
                "UserUpdate": {"type": "object", "properties": {"email": {"type": "string"}, "name": {"type": "string", "minLength": 1, "maxLength": 255}}},
                "RoleChange": {"type": "object", "required": ["role"], "properties": {"role": role}},
                "StatusChange": {"type": "object", "required": ["isActive"], "properties": {"isActive": {"type": "boolean"},
                    "reason": {"type": "string", "minLength": 1, "maxLength": 500}}},
                "AuditEntry": {"type": "object", "properties": {
                    "id": {"type": "string", "format": "uuid"}, "userId": {"type": "string"}, "userName": {"type": "string"},
                    "userEmail": {"type": "string"}, "action": {"type": "string", "enum": ACTIONS},
                    "resourceType": {"type": "string"}, "resourceId": {"type": "string"}, "details": {"type": "object"},
                    "ipAddress": {"type": "string"}, "userAgent": {"type": "string"}, "timestamp": {"type": "string", "format": "date-time"}}},
                "AuditPage": {"type": "object", "properties": {"data": {"type": "array", "items": {"$ref": "#/components/schemas/AuditEntry"}},
                    "pagination": {"$ref": "#/components/schemas/Pagination"}}},
                "Actions": {"type": "array", "items": {"type": "string", "enum": ACTIONS}},
                "ConfigEntry": {"type": "object", "properties": {"key": {"type": "string"}, "value": {},
                    "description": {"type": ["string", "null"]}, "updatedBy": {"type": ["string", "null"], "format": "uuid"},
                    "createdAt": {"type": "string", "format": "date-time"}, "updatedAt": {"type": "string", "format": "date-time"}}},
                "ConfigList": {"type": "array", "items": {"$ref": "#/components/schemas/ConfigEntry"}},
                "ConfigCreate": {"type": "object", "required": ["key", "value"], "properties": {"key": {"type": "string"}, "value": {},
                    "description": {"type": ["string", "null"], "maxLength": 500}}},
                "ConfigPut": {"type": "object", "required": ["value"], "properties": {"value": {},
                    "description": {"type": ["string", "null"], "maxLength": 500}}},
                "SystemHealth": {"type": "object", "properties": {"status": {"type": "string", "enum": ["healthy", "degraded", "unhealthy"]},
                    "timestamp": {"type": "string"}, "version": {"type": "string"}, "uptime": {"type": "number"},
                    "responseTime": {"type": "integer"}, "services": {"type": "object"}, "checks": {"type": "object"}}},
                "Dashboard": {"type": "object", "properties": {"generatedAt": {"type": "string"}, "users": {"type": "object"},
                    "payments": {"type": ["object", "null"]}, "audit": {"type": "object"}, "warnings": {"type": "array", "items": {"type": "string"}}}},
            }
        }
    })
}

pub async fn serve() -> impl IntoResponse {
    Json(openapi())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_documented_and_references_resolve() {
        let doc = openapi();
        let (_, problems) =
            payplane_kit::openapi::check_document(&doc, &crate::routes::table().public_paths());
        assert!(problems.is_empty(), "{problems:#?}");
        let text = doc.to_string();
        for reference in text.split("\"$ref\":\"").skip(1) {
            let target = reference.split('"').next().unwrap();
            let path: Vec<&str> = target.trim_start_matches("#/").split('/').collect();
            let mut node = &doc;
            for part in path {
                node = &node[part];
            }
            assert!(!node.is_null(), "{target}");
        }
    }
}
