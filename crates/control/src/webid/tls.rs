//! TLS trust of an external issuer: the system roots, or — as AWS IAM does for OIDC providers —
//! the provider's thumbprints (SHA-1 of a certificate).
//!
//! A thumbprint is a trust anchor, never a membership test: the served chain must verify from the
//! leaf, by signature and validity period, to the certificate the thumbprint names, and the leaf
//! must name the host. Two shapes are accepted:
//! - **a CA in the served chain** (AWS computes the thumbprint of the top intermediate or root CA
//!   the server sends): that certificate becomes the only trust anchor of a webpki verification
//!   of the leaf, with the other served certificates as intermediates; the anchor's own validity
//!   period is checked here too (webpki does not check anchors);
//! - **the leaf itself** (a pinned, typically self-signed, server certificate): the pin is exact,
//!   and the handshake proves the server holds the leaf's key, so the leaf is checked for its
//!   validity period and host name only. It need not be self-signed.
//!
//! This module must not accept a chain merely because *some* served certificate has a listed
//! thumbprint: a genuine CA certificate can be replayed by anyone next to a leaf it never signed.

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// A SHA-1 certificate thumbprint (IAM's `ThumbprintList` entry, decoded).
pub(super) type Thumbprint = [u8; 20];

/// The rustls client configuration for fetching from an issuer trusted by the system roots or by
/// `thumbprints`.
pub(super) fn client_config(thumbprints: &[Thumbprint]) -> Result<rustls::ClientConfig, String> {
    let verifier = verifier(thumbprints)?;
    Ok(
        rustls::ClientConfig::builder_with_provider(Arc::clone(&verifier.provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth(),
    )
}

/// The verifier [`client_config`] uses.
pub(super) fn verifier(thumbprints: &[Thumbprint]) -> Result<Arc<ThumbprintVerifier>, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let platform = rustls_platform_verifier::Verifier::new(Arc::clone(&provider))
        .map_err(|e| format!("tls roots: {e}"))?;
    Ok(Arc::new(ThumbprintVerifier {
        platform,
        thumbprints: thumbprints.to_vec(),
        provider,
    }))
}

/// System roots first; failing that, [`verify_pinned`] against the provider's thumbprints.
#[derive(Debug)]
pub(super) struct ThumbprintVerifier {
    platform: rustls_platform_verifier::Verifier,
    thumbprints: Vec<Thumbprint>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for ThumbprintVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .platform
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Ok(v) => Ok(v),
            Err(e) if self.thumbprints.is_empty() => Err(e),
            Err(system) => verify_pinned(
                &self.provider,
                &self.thumbprints,
                end_entity,
                intermediates,
                server_name,
                now,
            )
            .map_err(|pinned| pinned.unwrap_or(system)),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Verify a served chain against thumbprint anchors (see the module docs). `Err(None)`: no served
/// certificate has a listed thumbprint; `Err(Some(e))`: one has, and the chain does not verify to
/// it (the last such failure).
pub(super) fn verify_pinned(
    provider: &Arc<CryptoProvider>,
    thumbprints: &[Thumbprint],
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    server_name: &ServerName<'_>,
    now: UnixTime,
) -> Result<ServerCertVerified, Option<rustls::Error>> {
    let listed = |c: &CertificateDer<'_>| {
        let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, c.as_ref());
        thumbprints.iter().any(|t| t.as_slice() == d.as_ref())
    };
    let mut failure = None;
    if listed(end_entity) {
        match pinned_leaf(end_entity, server_name, now) {
            Ok(v) => return Ok(v),
            Err(e) => failure = Some(e),
        }
    }
    for (i, anchor) in intermediates.iter().enumerate() {
        if !listed(anchor) {
            continue;
        }
        let others: Vec<CertificateDer<'_>> = intermediates
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, c)| c.clone())
            .collect();
        match chain_to(provider, anchor, end_entity, &others, server_name, now) {
            Ok(v) => return Ok(v),
            Err(e) => failure = Some(e),
        }
    }
    Err(failure)
}

/// The leaf is the pinned certificate: in its validity period and naming the host.
fn pinned_leaf(
    leaf: &CertificateDer<'_>,
    server_name: &ServerName<'_>,
    now: UnixTime,
) -> Result<ServerCertVerified, rustls::Error> {
    check_validity(leaf, now)?;
    let parsed = rustls::server::ParsedCertificate::try_from(leaf)?;
    rustls::client::verify_server_name(&parsed, server_name)?;
    Ok(ServerCertVerified::assertion())
}

/// webpki verification of `leaf` with `anchor` as the only trust anchor (signatures, validity of
/// every certificate below the anchor, basic constraints, server-auth usage, host name), plus
/// the anchor's own validity period.
fn chain_to(
    provider: &Arc<CryptoProvider>,
    anchor: &CertificateDer<'_>,
    leaf: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    server_name: &ServerName<'_>,
    now: UnixTime,
) -> Result<ServerCertVerified, rustls::Error> {
    check_validity(anchor, now)?;
    let mut roots = RootCertStore::empty();
    roots.add(anchor.clone())?;
    let verifier =
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(provider))
            .build()
            .map_err(|e| rustls::Error::General(e.to_string()))?;
    verifier.verify_server_cert(leaf, intermediates, server_name, &[], now)
}

fn check_validity(cert: &CertificateDer<'_>, now: UnixTime) -> Result<(), rustls::Error> {
    let (not_before, not_after) = validity(cert.as_ref()).ok_or(CertificateError::BadEncoding)?;
    let now = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    if now < not_before {
        return Err(CertificateError::NotValidYet.into());
    }
    if now > not_after {
        return Err(CertificateError::Expired.into());
    }
    Ok(())
}

// === X.509 validity ===
//
// webpki parses every certificate it verifies but does not expose a trust anchor's validity
// period, so the few DER steps to it are taken here rather than pulling in a full X.509 parser:
// Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL, serialNumber
// INTEGER, signature SEQUENCE, issuer SEQUENCE, validity SEQUENCE { notBefore Time, notAfter
// Time }, ... }, ... } (RFC 5280 §4.1). The input is a certificate whose SHA-1 the provider
// listed; malformed input yields `None`, never a panic.

/// `(notBefore, notAfter)` of a DER certificate, in unix seconds.
pub(super) fn validity(der: &[u8]) -> Option<(i64, i64)> {
    let (cert, _) = expect(der, 0x30)?;
    let (tbs, _) = expect(cert, 0x30)?;
    let mut rest = tbs;
    if rest.first() == Some(&0xa0) {
        rest = tlv(rest)?.2;
    }
    let (_, rest) = expect(rest, 0x02)?; // serialNumber
    let (_, rest) = expect(rest, 0x30)?; // signature
    let (_, rest) = expect(rest, 0x30)?; // issuer
    let (validity, _) = expect(rest, 0x30)?;
    let (t1, v1, rest) = tlv(validity)?;
    let (t2, v2, _) = tlv(rest)?;
    Some((time_value(t1, v1)?, time_value(t2, v2)?))
}

/// One DER element of tag `tag`: (contents, rest).
fn expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (t, value, rest) = tlv(input)?;
    (t == tag).then_some((value, rest))
}

/// One DER element: (tag, contents, rest). Single-byte tags, definite lengths up to 4 bytes.
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, input) = input.split_first()?;
    let (&first, mut input) = input.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let (bytes, rest) = input.split_at_checked(n)?;
        input = rest;
        bytes.iter().try_fold(0usize, |acc, &b| {
            acc.checked_mul(256)?.checked_add(usize::from(b))
        })?
    };
    let (value, rest) = input.split_at_checked(len)?;
    Some((tag, value, rest))
}

/// UTCTime (`YYMMDDHHMMSSZ`, 1950..2049) or GeneralizedTime (`YYYYMMDDHHMMSSZ`), as RFC 5280
/// requires them to be encoded.
fn time_value(tag: u8, v: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(v).ok()?.strip_suffix('Z')?;
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (year, rest) = match (tag, s.len()) {
        (0x17, 12) => {
            let yy: i32 = s.get(..2)?.parse().ok()?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, s.get(2..)?)
        }
        (0x18, 14) => (s.get(..4)?.parse().ok()?, s.get(4..)?),
        _ => return None,
    };
    let num = |r: std::ops::Range<usize>| -> Option<u8> { rest.get(r)?.parse().ok() };
    let month = time::Month::try_from(num(0..2)?).ok()?;
    let date = time::Date::from_calendar_date(year, month, num(2..4)?).ok()?;
    let t = time::Time::from_hms(num(4..6)?, num(6..8)?, num(8..10)?).ok()?;
    Some(
        time::PrimitiveDateTime::new(date, t)
            .assume_utc()
            .unix_timestamp(),
    )
}
