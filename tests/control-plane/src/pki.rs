//! Key material of one control plane: a CA, the API server's serving certificate, the
//! service-account signing key and random static tokens, all made fresh in the temp directory.
//!
//! A CA of our own (rather than the API server's self-signed `--cert-dir` pair) lets the
//! clients verify the server properly and lets kube-controller-manager publish the same CA as
//! the `kube-root-ca.crt` ConfigMap, as on a real cluster.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// Paths of the files written and the CA in the forms the clients need.
pub struct Pki {
    pub ca_cert: PathBuf,
    pub ca_pem: String,
    pub ca_der: Vec<u8>,
    pub serving_cert: PathBuf,
    pub serving_key: PathBuf,
    /// ECDSA P-256 private key (PKCS#8 PEM) that the API server signs service-account tokens
    /// with (and the controller manager the legacy token Secrets).
    pub service_account_key: PathBuf,
    /// Its public key (PEM), which the API server verifies the tokens with.
    pub service_account_pub: PathBuf,
}

impl Pki {
    pub fn generate(dir: &Path) -> Result<Self> {
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "payplane-test-ca");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)
            .context("self-signing the test CA")?;

        // The names and addresses clients use: the loopback address, and the in-cluster names
        // that a pod-side client (or kube-rs' in-cluster config in a test) would verify against.
        let mut serving_params = CertificateParams::new(vec![
            String::from("127.0.0.1"),
            String::from("localhost"),
            String::from("kubernetes"),
            String::from("kubernetes.default"),
            String::from("kubernetes.default.svc"),
            String::from("kubernetes.default.svc.cluster.local"),
        ])?;
        serving_params
            .distinguished_name
            .push(DnType::CommonName, "kube-apiserver");
        serving_params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        serving_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let serving_key = KeyPair::generate()?;
        let serving = serving_params
            .signed_by(&serving_key, &ca)
            .context("signing the API server's serving certificate")?;

        let sa_key = KeyPair::generate()?;

        let pki = Self {
            ca_cert: dir.join("ca.crt"),
            ca_pem: ca.pem(),
            ca_der: ca.der().to_vec(),
            serving_cert: dir.join("apiserver.crt"),
            serving_key: dir.join("apiserver.key"),
            service_account_key: dir.join("service-account.key"),
            service_account_pub: dir.join("service-account.pub"),
        };
        write(&pki.ca_cert, &pki.ca_pem)?;
        write(&pki.serving_cert, &serving.pem())?;
        write(&pki.serving_key, &serving_key.serialize_pem())?;
        write(&pki.service_account_key, &sa_key.serialize_pem())?;
        write(&pki.service_account_pub, &sa_key.public_key_pem())?;
        Ok(pki)
    }
}

/// 32 random bytes as hex: a bearer token for the static token file.
pub fn random_token() -> Result<String> {
    let mut bytes = [0_u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| anyhow::anyhow!("no randomness for a token"))?;
    Ok(hex(&bytes))
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn write(path: &Path, contents: &str) -> Result<()> {
    std::fs::write(path, contents).with_context(|| format!("writing {}", path.display()))
}
