//! `validate` of an `IngressCert` (pure): the certificate's lifetime and renewal margin, and
//! the issuer with the settings it needs.

use jiff::SignedDuration;

use super::super::InvalidSpec;
use crate::crd::IngressCert;
use crate::crd::ingress_cert::Issuer;
use crate::tls::parse_duration;

/// Who signs, with what it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Issuing<'a> {
    /// The operator-managed CA.
    SelfSigned,
    /// The CA in the Secret `secret`.
    Ca {
        /// The CA Secret.
        secret: &'a str,
    },
    /// cert-manager, through a `Certificate`.
    CertManager,
}

/// What the rest of the pipeline reads of the spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Input<'a> {
    /// Validity of a leaf the operator issues (`spec.duration`, 2160h by default).
    pub lifetime: SignedDuration,
    /// How long before its end a leaf is renewed (`spec.renewBefore`).
    pub renew_before: Option<SignedDuration>,
    /// Who signs.
    pub issuing: Issuing<'a>,
}

/// The input of `ic`'s reconcile, or why the spec cannot work.
pub fn validate(ic: &IngressCert) -> Result<Input<'_>, InvalidSpec> {
    let invalid = |why: &str| InvalidSpec(why.to_owned());
    let lifetime = match ic.spec.duration.as_deref().map(parse_duration) {
        None => SignedDuration::from_hours(2160),
        Some(Some(d)) => d,
        Some(None) => return Err(invalid("duration is not like 2160h")),
    };
    let issuing = match (ic.spec.issuer, &ic.spec.ca, &ic.spec.cert_manager) {
        (Issuer::SelfSigned, ..) => Issuing::SelfSigned,
        (Issuer::Ca, Some(ca), _) => Issuing::Ca {
            secret: &ca.secret_ref.name,
        },
        (Issuer::Ca, None, _) => return Err(invalid("issuer ca needs spec.ca")),
        (Issuer::CertManager, _, Some(_)) => Issuing::CertManager,
        (Issuer::CertManager, _, None) => {
            return Err(invalid("issuer certManager needs spec.certManager"));
        }
    };
    Ok(Input {
        lifetime,
        renew_before: ic.spec.renew_before.as_deref().and_then(parse_duration),
        issuing,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn ic(extra: Value) -> IngressCert {
        let mut spec = json!({"hosts": ["pay.example.com"], "secretName": "pay-tls"});
        if let (Some(s), Value::Object(extra)) = (spec.as_object_mut(), extra) {
            s.extend(extra);
        }
        crate::fixtures::stored("pay", spec)
    }

    type Want = Result<(Issuing<'static>, i64), &'static str>;

    #[test]
    fn each_issuer_needs_its_settings_and_durations_parse() {
        let ca = json!({"secretRef": {"name": "my-ca"}});
        let cm = json!({"issuerRef": {"kind": "ClusterIssuer", "name": "le"}});
        let table: [(Value, Want); 7] = [
            (json!({}), Ok((Issuing::SelfSigned, 2160))),
            (json!({"duration": "24h"}), Ok((Issuing::SelfSigned, 24))),
            (
                json!({"issuer": "ca", "ca": ca}),
                Ok((Issuing::Ca { secret: "my-ca" }, 2160)),
            ),
            (
                json!({"issuer": "certManager", "certManager": cm}),
                Ok((Issuing::CertManager, 2160)),
            ),
            (
                json!({"duration": "soon"}),
                Err("duration is not like 2160h"),
            ),
            (json!({"issuer": "ca"}), Err("issuer ca needs spec.ca")),
            (
                json!({"issuer": "certManager"}),
                Err("issuer certManager needs spec.certManager"),
            ),
        ];
        for (extra, want) in table {
            let cert = ic(extra.clone());
            let got = validate(&cert).map(|i| (i.issuing, i.lifetime.as_hours()));
            let want = want.map_err(|e| InvalidSpec(e.into()));
            assert_eq!(got, want, "{extra}");
        }
        let cert = ic(json!({"renewBefore": "48h"}));
        let renew = validate(&cert).ok().and_then(|i| i.renew_before);
        assert_eq!(renew, Some(SignedDuration::from_hours(48)));
    }
}
