//! `validate` of a `Platform` (pure): the checks of its spec that the CRD's schema cannot
//! make, refused before anything is applied so the children already running keep their spec.

use std::net::IpAddr;

pub use super::super::InvalidSpec;
use crate::crd::Platform;
use crate::crd::platform::{Profile, PspMode};

/// Why a Platform spec cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// A CIDR list holds something that is not an address or `address/prefix`.
    #[error("spec.network.{field}: {value:?} is not a CIDR")]
    InvalidCidr { field: &'static str, value: String },
    /// The `prod` profile without a real payment provider (the simulator completes every
    /// payment by itself).
    #[error(
        "profile prod needs spec.psp.mode external with spec.psp.webhookSecretsRef: the PSP simulator completes payments by itself"
    )]
    ProductionNeedsPsp,
}

fn is_cidr(s: &str) -> bool {
    let (ip, prefix) = s.split_once('/').unwrap_or((s, ""));
    let Ok(ip) = ip.trim().parse::<IpAddr>() else {
        return false;
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    prefix.is_empty() || prefix.parse::<u8>().is_ok_and(|p| p <= max)
}

/// The spec's security settings are usable: every CIDR parses and `prod` has a real PSP.
pub fn validate(platform: &Platform) -> Result<(), SpecError> {
    if let Some(n) = &platform.spec.network {
        let lists: [(&'static str, Option<&Vec<String>>); 3] = [
            ("podCidrs", Some(&n.pod_cidrs)),
            ("trustedProxies", n.trusted_proxies.as_ref()),
            ("metricsAllowedCidrs", n.metrics_allowed_cidrs.as_ref()),
        ];
        for (field, list) in lists {
            if let Some(bad) = list.into_iter().flatten().find(|c| !is_cidr(c)) {
                return Err(SpecError::InvalidCidr {
                    field,
                    value: bad.clone(),
                });
            }
        }
    }
    let psp = platform.spec.psp.clone().unwrap_or_default();
    // An override of the payments environment would win over the wired `PSP_MODE`.
    let overridden = platform
        .spec
        .components
        .as_ref()
        .and_then(|c| c.payments.as_ref())
        .and_then(|o| o.env.iter().find(|e| e.name == "PSP_MODE"))
        .is_some_and(|e| {
            !e.value
                .as_deref()
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("external"))
        });
    if platform.spec.profile == Profile::Prod
        && (psp.mode != PspMode::External || psp.webhook_secrets_ref.is_none() || overridden)
    {
        return Err(SpecError::ProductionNeedsPsp);
    }
    Ok(())
}

impl From<SpecError> for InvalidSpec {
    fn from(e: SpecError) -> Self {
        Self(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::platform::{PlatformNetwork, PlatformPsp};

    #[test]
    fn validation_refuses_bad_cidrs_and_prod_without_an_external_psp() {
        let mut p = Platform::example();
        assert_eq!(validate(&p), Ok(()));
        let bad_cidrs = [
            (
                PlatformNetwork {
                    trusted_proxies: Some(vec!["10.0.0.0/33".into()]),
                    ..PlatformNetwork::default()
                },
                "trustedProxies",
            ),
            (
                PlatformNetwork {
                    pod_cidrs: vec!["10.0.0.1".into(), "fd00::/8".into()],
                    metrics_allowed_cidrs: Some(vec!["nope".into()]),
                    ..PlatformNetwork::default()
                },
                "metricsAllowedCidrs",
            ),
        ];
        for (network, refused) in bad_cidrs {
            p.spec.network = Some(network);
            assert!(
                matches!(validate(&p), Err(SpecError::InvalidCidr { field, .. }) if field == refused),
                "{refused}"
            );
        }
        p.spec.network = None;
        p.spec.profile = Profile::Prod;
        assert_eq!(validate(&p), Err(SpecError::ProductionNeedsPsp));
        p.spec.psp = Some(PlatformPsp {
            mode: PspMode::External,
            webhook_secrets_ref: None,
        });
        assert_eq!(validate(&p), Err(SpecError::ProductionNeedsPsp));
        assert_eq!(validate(&Platform::prod_with_psp()), Ok(()));
        // The example's payments override sets PSP_MODE=simulator: refused in prod.
        let mut q = Platform::prod_with_psp();
        q.spec.components = Platform::example().spec.components;
        assert_eq!(validate(&q), Err(SpecError::ProductionNeedsPsp));
    }
}
