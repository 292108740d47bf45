//! Unit tests of TLS trust by thumbprint, with chains built with rcgen.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

use super::tls::{Thumbprint, validity, verify_pinned};
use super::*;

// === TLS trust by thumbprint ===

const HOST: &str = "issuer.example";

fn days(n: i64) -> time::Duration {
    time::Duration::days(n)
}

struct Ca {
    params: CertificateParams,
    key: KeyPair,
    der: CertificateDer<'static>,
}

impl Ca {
    fn issuer(&self) -> Issuer<'_, &KeyPair> {
        Issuer::from_params(&self.params, &self.key)
    }
}

fn ca_params(cn: &str, from: i64, to: i64) -> CertificateParams {
    let now = time::OffsetDateTime::now_utc();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.not_before = now + days(from);
    p.not_after = now + days(to);
    p
}

fn root(cn: &str) -> Ca {
    let params = ca_params(cn, -1, 365);
    let key = KeyPair::generate().unwrap();
    let der = params.self_signed(&key).unwrap().der().clone();
    Ca { params, key, der }
}

fn intermediate(cn: &str, parent: &Ca, from: i64, to: i64) -> Ca {
    let params = ca_params(cn, from, to);
    let key = KeyPair::generate().unwrap();
    let der = params
        .signed_by(&key, &parent.issuer())
        .unwrap()
        .der()
        .clone();
    Ca { params, key, der }
}

fn leaf_params(names: &[&str], from: i64, to: i64) -> CertificateParams {
    let now = time::OffsetDateTime::now_utc();
    let mut p =
        CertificateParams::new(names.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>()).unwrap();
    p.distinguished_name.push(DnType::CommonName, names[0]);
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    p.not_before = now + days(from);
    p.not_after = now + days(to);
    p
}

fn leaf(names: &[&str], parent: &Ca) -> CertificateDer<'static> {
    let key = KeyPair::generate().unwrap();
    leaf_params(names, -1, 30)
        .signed_by(&key, &parent.issuer())
        .unwrap()
        .der()
        .clone()
}

fn self_signed_leaf(names: &[&str], from: i64, to: i64) -> CertificateDer<'static> {
    let key = KeyPair::generate().unwrap();
    leaf_params(names, from, to)
        .self_signed(&key)
        .unwrap()
        .der()
        .clone()
}

fn thumb(der: &CertificateDer<'_>) -> Thumbprint {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, der.as_ref());
    d.as_ref().try_into().unwrap()
}

/// `Ok(())`, `Err(None)` (no thumbprint matched) or `Err(Some(error))`.
fn check(
    prints: &[Thumbprint],
    chain: &[&CertificateDer<'static>],
    host: &str,
) -> Result<(), Option<rustls::Error>> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let (ee, rest) = chain.split_first().unwrap();
    let intermediates: Vec<CertificateDer<'static>> = rest.iter().map(|c| (*c).clone()).collect();
    let name = ServerName::try_from(host.to_owned()).unwrap();
    verify_pinned(
        &provider,
        prints,
        ee,
        &intermediates,
        &name,
        UnixTime::now(),
    )
    .map(|_| ())
}

fn is_expired(e: &rustls::Error) -> bool {
    use rustls::CertificateError as C;
    matches!(
        e,
        rustls::Error::InvalidCertificate(C::Expired | C::ExpiredContext { .. })
    )
}

fn is_not_yet_valid(e: &rustls::Error) -> bool {
    use rustls::CertificateError as C;
    matches!(
        e,
        rustls::Error::InvalidCertificate(C::NotValidYet | C::NotValidYetContext { .. })
    )
}

#[test]
fn a_valid_chain_verifies_to_the_thumbprinted_root_or_intermediate() {
    let r = root("genuine root");
    let i = intermediate("genuine intermediate", &r, -1, 365);
    let l = leaf(&[HOST], &i);
    // AWS's thumbprint: the top certificate the server sends.
    assert_eq!(check(&[thumb(&r.der)], &[&l, &i.der, &r.der], HOST), Ok(()));
    assert_eq!(check(&[thumb(&i.der)], &[&l, &i.der], HOST), Ok(()));
    // the order of the served intermediates does not matter, nor do other listed thumbprints
    assert_eq!(
        check(&[[0; 20], thumb(&r.der)], &[&l, &r.der, &i.der], HOST),
        Ok(())
    );
}

#[test]
fn a_genuine_ca_next_to_a_leaf_it_did_not_sign_is_refused() {
    let r = root("genuine root");
    let i = intermediate("genuine intermediate", &r, -1, 365);
    // The attacker's own CA, and one that copies the genuine intermediate's name.
    let attacker = root("attacker");
    let forged_name = Ca {
        params: ca_params("genuine intermediate", -1, 365),
        key: KeyPair::generate().unwrap(),
        der: CertificateDer::from(Vec::new()),
    };
    for evil_leaf in [
        leaf(&[HOST], &attacker),
        leaf(&[HOST], &forged_name),
        self_signed_leaf(&[HOST], -1, 30),
    ] {
        assert!(matches!(
            check(&[thumb(&r.der)], &[&evil_leaf, &i.der, &r.der], HOST),
            Err(Some(_))
        ));
        assert!(matches!(
            check(&[thumb(&i.der)], &[&evil_leaf, &i.der], HOST),
            Err(Some(_))
        ));
        assert!(matches!(
            check(&[thumb(&r.der)], &[&evil_leaf, &attacker.der, &r.der], HOST),
            Err(Some(_))
        ));
    }
}

#[test]
fn an_expired_or_not_yet_valid_certificate_in_the_chain_is_refused() {
    let r = root("genuine root");
    let expired = intermediate("expired intermediate", &r, -30, -1);
    let l = leaf(&[HOST], &expired);
    // below the anchor (webpki checks it) and as the anchor itself (checked here)
    assert!(
        matches!(check(&[thumb(&r.der)], &[&l, &expired.der, &r.der], HOST), Err(Some(e)) if is_expired(&e))
    );
    assert!(
        matches!(check(&[thumb(&expired.der)], &[&l, &expired.der], HOST), Err(Some(e)) if is_expired(&e))
    );
    let future = intermediate("future intermediate", &r, 1, 30);
    let l = leaf(&[HOST], &future);
    assert!(
        matches!(check(&[thumb(&future.der)], &[&l, &future.der], HOST), Err(Some(e)) if is_not_yet_valid(&e))
    );
    // an expired leaf under a valid chain
    let i = intermediate("genuine intermediate", &r, -1, 365);
    let key = KeyPair::generate().unwrap();
    let old = leaf_params(&[HOST], -30, -1)
        .signed_by(&key, &i.issuer())
        .unwrap()
        .der()
        .clone();
    assert!(matches!(
        check(&[thumb(&r.der)], &[&old, &i.der, &r.der], HOST),
        Err(Some(_))
    ));
}

#[test]
fn a_leaf_for_another_host_is_refused() {
    let r = root("genuine root");
    let i = intermediate("genuine intermediate", &r, -1, 365);
    let l = leaf(&["other.example"], &i);
    assert!(matches!(
        check(&[thumb(&r.der)], &[&l, &i.der, &r.der], HOST),
        Err(Some(_))
    ));
    let pinned = self_signed_leaf(&["other.example"], -1, 30);
    assert!(matches!(
        check(&[thumb(&pinned)], &[&pinned], HOST),
        Err(Some(_))
    ));
}

#[test]
fn a_pinned_leaf_is_its_own_anchor() {
    // the end-to-end issuers' shape: a self-signed leaf for an IP address, thumbprint of itself
    let pinned = self_signed_leaf(&["localhost", "127.0.0.1"], -1, 30);
    assert_eq!(check(&[thumb(&pinned)], &[&pinned], "127.0.0.1"), Ok(()));
    assert_eq!(check(&[thumb(&pinned)], &[&pinned], "localhost"), Ok(()));
    assert!(matches!(
        check(&[thumb(&pinned)], &[&pinned], "127.0.0.2"),
        Err(Some(_))
    ));
    let expired = self_signed_leaf(&[HOST], -30, -1);
    assert!(matches!(check(&[thumb(&expired)], &[&expired], HOST), Err(Some(e)) if is_expired(&e)));
    // a pinned CA-issued leaf need not be self-signed
    let r = root("private root");
    let l = leaf(&[HOST], &r);
    assert_eq!(check(&[thumb(&l)], &[&l], HOST), Ok(()));
}

#[test]
fn no_listed_thumbprint_trusts_nothing() {
    let r = root("genuine root");
    let l = leaf(&[HOST], &r);
    assert_eq!(check(&[[7; 20]], &[&l, &r.der], HOST), Err(None));
    assert_eq!(check(&[], &[&l, &r.der], HOST), Err(None));
}

#[test]
fn validity_is_read_from_der() {
    let r = root("genuine root");
    let (from, to) = validity(r.der.as_ref()).unwrap();
    assert_eq!(from, r.params.not_before.unix_timestamp());
    assert_eq!(to, r.params.not_after.unix_timestamp());
    // GeneralizedTime (from 2050)
    let mut p = ca_params("far", -1, 365);
    p.not_after = time::macros::datetime!(2051-02-03 04:05:06 UTC);
    let der = p
        .self_signed(&KeyPair::generate().unwrap())
        .unwrap()
        .der()
        .clone();
    assert_eq!(
        validity(der.as_ref()).map(|v| v.1),
        Some(time::macros::datetime!(2051-02-03 04:05:06 UTC).unix_timestamp())
    );
    for bad in [
        &b""[..],
        &[0x30, 0x80],
        &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff],
        &r.der.as_ref()[..40],
    ] {
        assert_eq!(validity(bad), None);
    }
}

/// The DER reader sees certificates a TLS peer sent: every truncation and a few hundred
/// thousand single- and double-byte mutations of a real certificate give an answer, never a
/// panic (a deterministic stand-in for a fuzz target, which this crate has no harness for).
#[test]
fn the_der_reader_survives_every_mutation() {
    let r = root("mutated");
    let der = r.der.as_ref().to_vec();
    for n in 0..der.len() {
        let _ = validity(&der[..n]);
    }
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..200_000 {
        let mut m = der.clone();
        for _ in 0..=(next() % 2) {
            let i = usize::try_from(next() % der.len() as u64).unwrap();
            m[i] = u8::try_from(next() & 0xff).unwrap();
        }
        let _ = validity(&m);
    }
}

#[test]
fn the_rustls_verifier_falls_back_from_the_system_roots_to_the_thumbprints() {
    use rustls::client::danger::ServerCertVerifier as _;
    let r = root("private root");
    let l = leaf(&[HOST], &r);
    let name = ServerName::try_from(HOST).unwrap();
    let verify = |prints: &[Thumbprint], chain: &[CertificateDer<'static>]| {
        tls::verifier(prints)
            .unwrap()
            .verify_server_cert(&chain[0], &chain[1..], &name, &[], UnixTime::now())
            .map(|_| ())
    };
    assert!(verify(&[thumb(&r.der)], &[l.clone(), r.der.clone()]).is_ok());
    assert!(
        verify(&[], &[l.clone(), r.der.clone()]).is_err(),
        "not in the system roots"
    );
    let attacker = root("attacker");
    let evil = leaf(&[HOST], &attacker);
    assert!(verify(&[thumb(&r.der)], &[evil, r.der.clone()]).is_err());
}
