//! The trust of podiam's AWS clients: the platform's trust store, or only the certificates of
//! the CA bundle the configuration names (`AWS_CA_BUNDLE`, else the profile's `ca_bundle`), as
//! the AWS CLI and SDKs do. A named bundle that cannot be used is an error, never a silent
//! fall-back to the platform's store.

use std::path::PathBuf;

use crate::config::{Env, Profile};

/// Why the configured CA bundle cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The file cannot be read.
    // The cause is in the message and not a `source`, so that a caller printing the chain
    // does not print it twice.
    #[error("cannot read the CA bundle {path:?} (from {from}): {error}")]
    Read {
        /// The path.
        path: PathBuf,
        /// Where the path came from (`AWS_CA_BUNDLE`, `profile "p" ca_bundle`).
        from: String,
        /// The error.
        error: std::io::Error,
    },
    /// The file holds no usable PEM certificate.
    #[error("the CA bundle {path:?} (from {from}) holds no PEM certificate{detail}")]
    NoCertificate {
        /// The path.
        path: PathBuf,
        /// Where the path came from.
        from: String,
        /// The parser's complaint, if any (`: ...`).
        detail: String,
    },
    /// The HTTP client cannot be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// The CA bundle the configuration names, and where it came from.
pub fn ca_bundle_path(env: &Env) -> Option<(PathBuf, String)> {
    if let Some(p) = env.get("AWS_CA_BUNDLE") {
        return Some((PathBuf::from(p), "AWS_CA_BUNDLE".to_owned()));
    }
    let profile = Profile::load(env);
    profile.get("ca_bundle").map(|p| {
        (
            PathBuf::from(p),
            format!("profile {:?} ca_bundle", env.profile_name()),
        )
    })
}

/// The certificates of the PEM file at `path` (`from` names the setting in errors).
pub fn load_ca_bundle(
    path: &std::path::Path,
    from: &str,
) -> Result<Vec<reqwest::Certificate>, TlsError> {
    let pem = std::fs::read(path).map_err(|error| TlsError::Read {
        path: path.to_owned(),
        from: from.to_owned(),
        error,
    })?;
    let none = |detail: String| TlsError::NoCertificate {
        path: path.to_owned(),
        from: from.to_owned(),
        detail,
    };
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| none(format!(": {e}")))?;
    if certs.is_empty() {
        return Err(none(String::new()));
    }
    Ok(certs)
}

/// `builder` trusting only the configured CA bundle, when one is configured.
pub fn http_client_builder(
    builder: reqwest::ClientBuilder,
    env: &Env,
) -> Result<reqwest::ClientBuilder, TlsError> {
    Ok(match ca_bundle_path(env) {
        Some((path, from)) => builder.tls_certs_only(load_ca_bundle(&path, &from)?),
        None => builder,
    })
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "podiam-awsclient-tls-{name}-{}",
            std::process::id()
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn env_then_profile() {
        let d = dir("where");
        std::fs::write(
            d.join("config"),
            "[profile p]\nca_bundle = /from/profile.pem\n",
        )
        .unwrap();
        let mut env = Env::from_pairs([
            ("AWS_CONFIG_FILE", d.join("config").to_str().unwrap()),
            ("AWS_PROFILE", "p"),
        ]);
        assert_eq!(
            ca_bundle_path(&env),
            Some((
                PathBuf::from("/from/profile.pem"),
                "profile \"p\" ca_bundle".to_owned()
            ))
        );
        env.set("AWS_CA_BUNDLE", "/from/env.pem");
        assert_eq!(
            ca_bundle_path(&env),
            Some((PathBuf::from("/from/env.pem"), "AWS_CA_BUNDLE".to_owned()))
        );
        assert_eq!(
            ca_bundle_path(&Env::from_pairs([("HOME", "/nonexistent")])),
            None
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn loads_a_bundle_and_refuses_bad_ones() {
        let d = dir("load");
        let key = rcgen::KeyPair::generate().unwrap();
        let ca = rcgen::CertificateParams::new(vec!["podiam-test-ca".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let good = d.join("good.pem");
        std::fs::write(&good, format!("{}{}", ca.pem(), ca.pem())).unwrap();
        assert_eq!(load_ca_bundle(&good, "AWS_CA_BUNDLE").unwrap().len(), 2);
        let env = Env::from_pairs([("AWS_CA_BUNDLE", good.to_str().unwrap())]);
        http_client_builder(reqwest::Client::builder(), &env)
            .unwrap()
            .build()
            .unwrap();

        // A missing file names the path and the setting.
        let missing = d.join("missing.pem");
        let env = Env::from_pairs([("AWS_CA_BUNDLE", missing.to_str().unwrap())]);
        let e = http_client_builder(reqwest::Client::builder(), &env).unwrap_err();
        assert!(matches!(e, TlsError::Read { .. }), "{e:?}");
        let msg = e.to_string();
        assert!(
            msg.starts_with(&format!(
                "cannot read the CA bundle {missing:?} (from AWS_CA_BUNDLE): "
            )),
            "{msg}"
        );

        // A file without certificates is refused, not taken as "trust nothing".
        let empty = d.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = load_ca_bundle(&empty, "AWS_CA_BUNDLE").unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("the CA bundle {empty:?} (from AWS_CA_BUNDLE) holds no PEM certificate")
        );
        std::fs::remove_dir_all(&d).unwrap();
    }
}
