//! `validate` of a `MessageBroker` (pure): the provider, with the settings it needs, and the
//! parsing of the administrator URIs its Secrets hold.

use super::super::{InvalidSpec, provider};
use crate::crd::MessageBroker;
use crate::crd::message_broker::{BrokerProvider, ExternalBroker};

/// The provider of a valid spec.
pub type Input<'a> = provider::Input<'a, ExternalBroker>;

/// The provider of `mb`, or why the spec cannot work.
pub fn validate(mb: &MessageBroker) -> Result<Input<'_>, InvalidSpec> {
    let wanted = mb.spec.provider;
    let operator = wanted == BrokerProvider::RabbitmqClusterOperator;
    provider::input(
        (wanted == BrokerProvider::External, operator),
        mb.spec.external.as_ref(),
    )
}

/// User, password and `host:port` of an `amqp://user:pass@host:port/vhost` URI.
pub fn amqp_host_port(uri: &str) -> Option<(String, String, String)> {
    let rest = uri
        .strip_prefix("amqps://")
        .or_else(|| uri.strip_prefix("amqp://"))?;
    let (auth, host) = rest.split_once('@')?;
    let (user, pass) = auth.split_once(':')?;
    let host_port = host.split('/').next()?.to_owned();
    let host_port = if host_port.contains(':') {
        host_port
    } else {
        format!("{host_port}:5672")
    };
    Some((user.to_owned(), pass.to_owned(), host_port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn amqp_uri_parts() {
        assert_eq!(
            amqp_host_port("amqp://guest:guest@127.0.0.1:5672/%2f"),
            Some(("guest".into(), "guest".into(), "127.0.0.1:5672".into()))
        );
        assert_eq!(
            amqp_host_port("amqp://a:b@rmq/").map(|p| p.2),
            Some("rmq:5672".into())
        );
        assert_eq!(amqp_host_port("http://x"), None);
    }

    #[test]
    fn external_needs_its_settings() {
        let ext = json!({"amqpUrlSecretRef": {"name": "s", "key": "uri"},
            "managementUrl": "https://rmq:15671"});
        let table = [
            (json!({"provider": "builtin"}), Ok("builtin")),
            (
                json!({"provider": "rabbitmq-cluster-operator"}),
                Ok("operator"),
            ),
            (
                json!({"provider": "external", "external": ext}),
                Ok("external https://rmq:15671"),
            ),
            (
                json!({"provider": "external"}),
                Err("provider external needs spec.external"),
            ),
        ];
        for (spec, want) in table {
            let mb: MessageBroker = crate::fixtures::stored("rmq", spec.clone());
            let got = provider::described(validate(&mb), |e| &e.management_url);
            let want = want.map(str::to_owned).map_err(|e| InvalidSpec(e.into()));
            assert_eq!(got, want, "{spec}");
        }
    }
}
