//! TLS for the webhook: the reloading certificate (shared with serve, in `podiam-tls`), and
//! self-signed CA and serving certificate generation for clusters without cert-manager.

pub use podiam_tls::{ReloadingCert, server_config};

use std::path::{Path, PathBuf};

/// The files of a self-signed setup.
#[derive(Debug, Clone)]
pub struct SelfSigned {
    /// The CA certificate (PEM); its base64 is the `caBundle`.
    pub ca_cert: PathBuf,
    /// The serving certificate (PEM).
    pub cert: PathBuf,
    /// The serving key (PEM).
    pub key: PathBuf,
    /// Whether the files were generated now (else reused).
    pub generated: bool,
}

impl SelfSigned {
    /// The CA certificate PEM.
    pub fn ca_pem(&self) -> Result<String, String> {
        std::fs::read_to_string(&self.ca_cert)
            .map_err(|e| format!("{}: {e}", self.ca_cert.display()))
    }

    /// `base64(CA PEM)`: the MutatingWebhookConfiguration's `clientConfig.caBundle`.
    pub fn ca_bundle(&self) -> Result<String, String> {
        use base64::Engine as _;
        Ok(base64::engine::general_purpose::STANDARD.encode(self.ca_pem()?))
    }
}

/// The default names of the serving certificate for a Service `name` in `namespace`.
pub fn default_dns_names(service: &str, namespace: &str) -> Vec<String> {
    vec![
        service.to_owned(),
        format!("{service}.{namespace}"),
        format!("{service}.{namespace}.svc"),
        format!("{service}.{namespace}.svc.cluster.local"),
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
    ]
}

fn write_private(path: &Path, data: &str) -> Result<(), String> {
    use std::io::Write as _;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    let mut f = o
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    // `mode` applies only to a new file: narrow one that was already there.
    #[cfg(unix)]
    f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    f.write_all(data.as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Ensures `dir` holds `ca.crt`, `ca.key`, `tls.crt` and `tls.key` (a CA and a serving
/// certificate for `names`, valid 10 years); existing files are reused as they are.
pub fn ensure_self_signed(dir: &Path, names: &[String]) -> Result<SelfSigned, String> {
    #[cfg(unix)]
    for key in ["ca.key", "tls.key"] {
        // Reused keys are narrowed to 0600 as new ones are created.
        let p = dir.join(key);
        if p.exists() {
            std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                .map_err(|e| format!("{}: {e}", p.display()))?;
        }
    }
    let out = SelfSigned {
        ca_cert: dir.join("ca.crt"),
        cert: dir.join("tls.crt"),
        key: dir.join("tls.key"),
        generated: false,
    };
    let ca_key_path = dir.join("ca.key");
    if [&out.ca_cert, &ca_key_path, &out.cert, &out.key]
        .iter()
        .all(|p| p.exists())
    {
        return Ok(out);
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let e = |e: rcgen::Error| format!("generating certificates: {e}");
    let now = time::OffsetDateTime::now_utc();
    let not_before = now - time::Duration::days(1);
    let not_after = now + time::Duration::days(3650);

    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(e)?;
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "podiam webhook CA");
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    ca.not_before = not_before;
    ca.not_after = not_after;
    let ca_key = rcgen::KeyPair::generate().map_err(e)?;
    let ca_cert = ca.self_signed(&ca_key).map_err(e)?;

    let mut leaf = rcgen::CertificateParams::new(names.to_vec()).map_err(e)?;
    let cn = names.first().map_or("podiam-webhook", String::as_str);
    leaf.distinguished_name.push(rcgen::DnType::CommonName, cn);
    leaf.key_usages = vec![
        rcgen::KeyUsagePurpose::DigitalSignature,
        rcgen::KeyUsagePurpose::KeyEncipherment,
    ];
    leaf.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    leaf.use_authority_key_identifier_extension = true;
    leaf.not_before = not_before;
    leaf.not_after = not_after;
    let leaf_key = rcgen::KeyPair::generate().map_err(e)?;
    let issuer = rcgen::Issuer::new(ca, &ca_key);
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).map_err(e)?;

    write_private(&ca_key_path, &ca_key.serialize_pem())?;
    write_private(&out.key, &leaf_key.serialize_pem())?;
    std::fs::write(&out.ca_cert, ca_cert.pem())
        .map_err(|e| format!("{}: {e}", out.ca_cert.display()))?;
    // The chain: leaf only (the CA is distributed as the caBundle).
    std::fs::write(&out.cert, leaf_cert.pem())
        .map_err(|e| format!("{}: {e}", out.cert.display()))?;
    Ok(SelfSigned {
        generated: true,
        ..out
    })
}
