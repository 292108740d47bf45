//! Minimal PEM (RFC 7468) encoding and decoding: standard base64 in 64-character lines between
//! `-----BEGIN <label>-----` and `-----END <label>-----`.
//!
//! Decoding finds the first block with the requested label, tolerates CR/LF/space/tab inside
//! the body, and rejects RFC 1421 encapsulated headers (`Proc-Type:` etc., i.e. legacy
//! encrypted keys).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::error::KeyError;

/// PEM label of a PKCS#8 private key.
pub const PRIVATE_KEY_LABEL: &str = "PRIVATE KEY";
/// PEM label of a PKIX (`SubjectPublicKeyInfo`) public key.
pub const PUBLIC_KEY_LABEL: &str = "PUBLIC KEY";

/// Encodes `der` as a PEM block with the given label (64-character lines, trailing newline).
pub fn encode(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut out = String::with_capacity(body.len() + body.len() / 64 + 2 * label.len() + 40);
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    let mut rest = body.as_str();
    while !rest.is_empty() {
        let (line, tail) = rest.split_at(rest.len().min(64));
        out.push_str(line);
        out.push('\n');
        rest = tail;
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

/// Decodes the first PEM block labelled `label` in `pem`.
pub fn decode(label: &str, pem: &str) -> Result<Vec<u8>, KeyError> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem
        .find(&begin)
        .ok_or_else(|| KeyError::Pem(format!("no {label:?} block")))?;
    let after_begin = pem
        .get(start + begin.len()..)
        .ok_or_else(|| KeyError::Pem("truncated".to_owned()))?;
    let stop = after_begin
        .find(&end)
        .ok_or_else(|| KeyError::Pem(format!("no end line for {label:?}")))?;
    let body = after_begin
        .get(..stop)
        .ok_or_else(|| KeyError::Pem("truncated".to_owned()))?;
    if body.contains(':') {
        return Err(KeyError::Pem(
            "encapsulated headers (encrypted pem) are not supported".to_owned(),
        ));
    }
    let compact: String = body
        .chars()
        .filter(|c| !matches!(c, '\r' | '\n' | ' ' | '\t'))
        .collect();
    if compact.is_empty() {
        return Err(KeyError::Pem("empty body".to_owned()));
    }
    STANDARD
        .decode(compact.as_bytes())
        .map_err(|_| KeyError::Pem("body is not base64".to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_line_length() {
        for len in [1usize, 47, 48, 49, 200, 1218] {
            let der: Vec<u8> = (0..len).map(|i| (i * 7 % 256) as u8).collect();
            let pem = encode("PRIVATE KEY", &der);
            assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
            assert!(pem.ends_with("-----END PRIVATE KEY-----\n"));
            for line in pem.lines() {
                assert!(line.len() <= 64 || line.starts_with("-----"), "{line}");
            }
            assert_eq!(decode("PRIVATE KEY", &pem).unwrap(), der);
            // CRLF line endings and surrounding text are fine.
            let crlf = format!("junk\r\n{}", pem.replace('\n', "\r\n"));
            assert_eq!(decode("PRIVATE KEY", &crlf).unwrap(), der);
        }
    }

    #[test]
    fn rejects_bad_blocks() {
        let pem = encode("PUBLIC KEY", b"abc");
        assert!(decode("PRIVATE KEY", &pem).is_err());
        assert!(decode("PUBLIC KEY", "-----BEGIN PUBLIC KEY-----\nYWJj\n").is_err());
        assert!(
            decode(
                "PUBLIC KEY",
                "-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----"
            )
            .is_err()
        );
        assert!(
            decode(
                "PUBLIC KEY",
                "-----BEGIN PUBLIC KEY-----\nYW*j\n-----END PUBLIC KEY-----"
            )
            .is_err()
        );
        let enc = "-----BEGIN PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n\nYWJj\n-----END PRIVATE KEY-----\n";
        assert!(decode("PRIVATE KEY", enc).is_err());
    }
}
