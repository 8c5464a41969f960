//! Certificates with rcgen: the operator-managed CA and leaf certificates signed by a CA, and
//! the renewal arithmetic. No I/O (uses the system random generator for keys).

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SerialNumber,
};

/// Certificate generation failures.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// rcgen refused the parameters or key.
    #[error("certificate generation: {0}")]
    Rcgen(#[from] rcgen::Error),
    /// A time computation overflowed.
    #[error("certificate validity out of range: {0}")]
    Time(String),
}

/// A certificate and its key, PEM encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pem {
    /// Certificate PEM.
    pub cert: String,
    /// PKCS#8 private key PEM.
    pub key: String,
}

/// A signed leaf and its validity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leaf {
    /// Certificate and key.
    pub pem: Pem,
    /// Start of validity.
    pub not_before: jiff::Timestamp,
    /// End of validity.
    pub not_after: jiff::Timestamp,
    /// Serial number, hex.
    pub serial: String,
}

/// rcgen takes `time` types; this keeps the conversion in one place.
fn to_offset(ts: jiff::Timestamp) -> Result<time::OffsetDateTime, TlsError> {
    time::OffsetDateTime::from_unix_timestamp(ts.as_second())
        .map_err(|e| TlsError::Time(e.to_string()))
}

/// A new CA (ECDSA P-256) named after `name`, valid ten years.
pub fn generate_ca(name: &str) -> Result<Pem, TlsError> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, format!("payplane {name} CA"));
    dn.push(DnType::OrganizationName, "payplane");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = jiff::Timestamp::now();
    params.not_before = to_offset(now - jiff::SignedDuration::from_hours(1))?;
    params.not_after = to_offset(now + jiff::SignedDuration::from_hours(24 * 3650))?;
    let cert = params.self_signed(&key)?;
    Ok(Pem {
        cert: cert.pem(),
        key: key.serialize_pem(),
    })
}

/// A server certificate for `hosts`, valid `lifetime` from now, signed by `ca`.
pub fn issue_leaf(
    ca: &Pem,
    hosts: &[String],
    lifetime: jiff::SignedDuration,
) -> Result<Leaf, TlsError> {
    let ca_key = KeyPair::from_pem(&ca.key)?;
    let issuer = Issuer::from_ca_cert_pem(&ca.cert, ca_key)?;
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(hosts.to_vec())?;
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        hosts.first().cloned().unwrap_or_default(),
    );
    params.distinguished_name = dn;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let serial: [u8; 16] = *uuid::Uuid::new_v4().as_bytes();
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    let not_before = jiff::Timestamp::from_second(jiff::Timestamp::now().as_second())
        .map_err(|e| TlsError::Time(e.to_string()))?;
    let not_after = not_before
        .checked_add(lifetime)
        .map_err(|e| TlsError::Time(e.to_string()))?;
    params.not_before = to_offset(not_before)?;
    params.not_after = to_offset(not_after)?;
    let cert = params.signed_by(&key, &issuer)?;
    Ok(Leaf {
        pem: Pem {
            cert: cert.pem(),
            key: key.serialize_pem(),
        },
        not_before,
        not_after,
        serial: crate::meta::hex(&serial),
    })
}

/// Parses a Go-style duration of hours, minutes and seconds (`2160h`, `1h30m`).
pub fn parse_duration(s: &str) -> Option<jiff::SignedDuration> {
    let mut total = 0i64;
    let mut num = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            num.push(c);
        } else {
            let n: i64 = num.parse().ok()?;
            num.clear();
            total += n * match c {
                'h' => 3600,
                'm' => 60,
                's' => 1,
                _ => return None,
            };
        }
    }
    (num.is_empty() && total > 0).then(|| jiff::SignedDuration::from_secs(total))
}

/// When to renew: `renew_before` ahead of expiry, or at two thirds of the lifetime.
pub fn renewal_time(
    not_before: jiff::Timestamp,
    not_after: jiff::Timestamp,
    renew_before: Option<jiff::SignedDuration>,
) -> jiff::Timestamp {
    let lifetime = not_after.duration_since(not_before);
    let before = renew_before
        .filter(|b| *b < lifetime)
        .unwrap_or_else(|| lifetime / 3);
    not_after.checked_sub(before).unwrap_or(not_before)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_is_at_two_thirds_by_default() -> Result<(), jiff::Error> {
        let nb: jiff::Timestamp = "2026-01-01T00:00:00Z".parse()?;
        let na: jiff::Timestamp = "2026-01-31T00:00:00Z".parse()?;
        assert_eq!(
            renewal_time(nb, na, None).to_string(),
            "2026-01-21T00:00:00Z"
        );
        assert_eq!(
            renewal_time(nb, na, Some(jiff::SignedDuration::from_hours(24))).to_string(),
            "2026-01-30T00:00:00Z"
        );
        assert_eq!(
            parse_duration("2160h"),
            Some(jiff::SignedDuration::from_hours(2160))
        );
        assert_eq!(
            parse_duration("1h30m"),
            Some(jiff::SignedDuration::from_secs(5400))
        );
        assert_eq!(parse_duration("10x"), None);
        Ok(())
    }

    #[test]
    fn leaf_is_signed_by_the_ca() -> Result<(), TlsError> {
        let ca = generate_ca("test")?;
        let leaf = issue_leaf(
            &ca,
            &["payplane.localtest.me".into()],
            jiff::SignedDuration::from_hours(24),
        )?;
        assert!(leaf.pem.cert.starts_with("-----BEGIN CERTIFICATE-----"));
        assert_eq!(
            leaf.not_after.duration_since(leaf.not_before),
            jiff::SignedDuration::from_hours(24)
        );
        assert_eq!(leaf.serial.len(), 32);
        Ok(())
    }
}
