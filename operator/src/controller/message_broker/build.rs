//! Pure builder of a built-in `MessageBroker`: admin and Erlang-cookie Secrets, config,
//! StatefulSet, client and headless Services, and (for 3 nodes) the RBAC of Kubernetes peer
//! discovery. A broker of another provider has none here (a `rabbitmq-cluster-operator` one
//! has its `RabbitmqCluster`, see [`super::rabbitmq_operator`]). No I/O.

use std::collections::BTreeMap;
use std::fmt::Write;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use serde_json::json;

use crate::crd::MessageBroker;
use crate::crd::message_broker::BrokerProvider;
use crate::meta::{Child, MetaError, Owner, secret_body};

/// Generated secrets of a built-in broker.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Resolved {
    /// Password of the `admin` user.
    pub admin_password: String,
    /// Erlang cookie shared by the nodes.
    pub erlang_cookie: String,
}

/// Name of the admin Secret (keys `username`, `password`, `uri`).
pub fn admin_secret(broker: &str) -> String {
    format!("{broker}-admin")
}

/// The children of `mb`, none unless it is built in.
#[expect(
    clippy::too_many_lines,
    reason = "a builder writes one object tree top to bottom, in the order of the YAML it produces"
)]
pub fn build(mb: &MessageBroker, resolved: &Resolved) -> Result<Vec<Child>, MetaError> {
    let owner = Owner::of(mb)?;
    if mb.spec.provider != BrokerProvider::Builtin {
        return Ok(Vec::new());
    }
    let name = owner.name().to_owned();
    let ns = owner.namespace().to_owned();
    let builtin = mb.spec.builtin.clone().unwrap_or_default();
    let replicas = builtin.replicas.max(1);
    let labels = json!({"app.kubernetes.io/name": "rabbitmq", "app.kubernetes.io/instance": name});
    let headless = format!("{name}-headless");
    let mut conf = String::from(
        "loopback_users.guest = false\nlisteners.tcp.default = 5672\nmanagement.tcp.port = 15672\n",
    );
    if replicas > 1 {
        let _ = write!(
            conf,
            "cluster_formation.peer_discovery_backend = rabbit_peer_discovery_k8s\ncluster_formation.k8s.host = kubernetes.default.svc\ncluster_formation.k8s.address_type = hostname\ncluster_formation.k8s.service_name = {headless}\ncluster_formation.k8s.hostname_suffix = .{headless}.{ns}.svc.cluster.local\nqueue_master_locator = min-masters\n"
        );
    }
    let plugins = if replicas > 1 {
        "[rabbitmq_management,rabbitmq_peer_discovery_k8s]."
    } else {
        "[rabbitmq_management]."
    };
    let storage = builtin
        .storage
        .clone()
        .map_or_else(|| "1Gi".to_owned(), |s| s.size);
    let admin = admin_secret(&name);
    let uri = format!(
        "amqp://admin:{}@{name}.{ns}.svc:5672/",
        resolved.admin_password
    );
    let mut children = vec![
        owner.child::<Secret>(
            &admin,
            "rabbitmq",
            secret_body(
                "Opaque",
                &BTreeMap::from([
                    ("username".to_owned(), "admin".to_owned()),
                    ("password".to_owned(), resolved.admin_password.clone()),
                    ("uri".to_owned(), uri),
                ]),
            ),
        ),
        owner.child::<Secret>(
            &format!("{name}-erlang-cookie"),
            "rabbitmq",
            secret_body("Opaque", &BTreeMap::from([("cookie".to_owned(), resolved.erlang_cookie.clone())])),
        ),
        owner.child::<ConfigMap>(
            &format!("{name}-config"),
            "rabbitmq",
            json!({"data": {"rabbitmq.conf": conf, "enabled_plugins": plugins}}),
        ),
        owner.child::<Service>(
            &name,
            "rabbitmq",
            json!({"spec": {"selector": labels, "ports": [
                {"name": "amqp", "port": 5672, "targetPort": 5672},
                {"name": "management", "port": 15672, "targetPort": 15672}]}}),
        ),
        owner.child::<Service>(
            &headless,
            "rabbitmq",
            json!({"spec": {"clusterIP": "None", "publishNotReadyAddresses": true, "selector": labels, "ports": [
                {"name": "epmd", "port": 4369}, {"name": "cluster", "port": 25672}]}}),
        ),
        owner.child::<StatefulSet>(
            &name,
            "rabbitmq",
            json!({"spec": {
                "serviceName": headless,
                "replicas": replicas,
                "podManagementPolicy": "Parallel",
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": {
                    "serviceAccountName": if replicas > 1 { name.clone() } else { "default".to_owned() },
                    "securityContext": crate::meta::RABBITMQ_USER.pod_security_context(),
                    "containers": [{
                        "name": "rabbitmq",
                        "image": builtin.image.as_deref().unwrap_or("rabbitmq:3.13-management"),
                        "env": [
                            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                            {"name": "RABBITMQ_USE_LONGNAME", "value": "true"},
                            {"name": "RABBITMQ_NODENAME", "value": format!("rabbit@$(POD_NAME).{headless}.{ns}.svc.cluster.local")},
                            {"name": "RABBITMQ_DEFAULT_USER", "value": "admin"},
                            {"name": "RABBITMQ_DEFAULT_PASS", "valueFrom": {"secretKeyRef": {"name": admin, "key": "password"}}},
                            {"name": "RABBITMQ_ERLANG_COOKIE", "valueFrom": {"secretKeyRef": {"name": format!("{name}-erlang-cookie"), "key": "cookie"}}}
                        ],
                        "ports": [{"name": "amqp", "containerPort": 5672}, {"name": "management", "containerPort": 15672},
                                  {"name": "epmd", "containerPort": 4369}, {"name": "cluster", "containerPort": 25672}],
                        "readinessProbe": {"exec": {"command": ["rabbitmq-diagnostics", "-q", "check_port_connectivity"]}, "periodSeconds": 10, "timeoutSeconds": 10},
                        "volumeMounts": [
                            {"name": "data", "mountPath": "/var/lib/rabbitmq/mnesia"},
                            {"name": "config", "mountPath": "/etc/rabbitmq/rabbitmq.conf", "subPath": "rabbitmq.conf"},
                            {"name": "config", "mountPath": "/etc/rabbitmq/enabled_plugins", "subPath": "enabled_plugins"}
                        ]
                    }],
                    "volumes": [{"name": "config", "configMap": {"name": format!("{name}-config")}}]
                }},
                "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": storage}}}}]
            }}),
        ),
    ];
    if replicas > 1 {
        // Kubernetes peer discovery reads the Endpoints of the headless Service.
        children.push(owner.child::<ServiceAccount>(&name, "rabbitmq", json!({})));
        children.push(owner.child::<Role>(
            &name,
            "rabbitmq",
            json!({"rules": [{"apiGroups": [""], "resources": ["endpoints"], "verbs": ["get"]}]}),
        ));
        children.push(owner.child::<RoleBinding>(
            &name,
            "rabbitmq",
            json!({"roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
                   "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": ns}]}),
        ));
    }
    Ok(children)
}
