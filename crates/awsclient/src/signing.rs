//! SigV4-signed requests to AWS-style JSON endpoints, as the agent (EKS Auth), the webhook
//! (EKS) and podiam's tools send them. Retries are [`crate::retry`]'s.

use crate::credentials::AwsCredentials;

/// `host[:port]` of `url` as the `Host` header carries it (no port when it is the scheme's
/// default); `None` when the URL has no host.
pub fn host_header(url: &reqwest::Url) -> Option<String> {
    let host = url.host_str()?;
    Some(match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    })
}

/// A request `method url`, SigV4-signed for `service` in `region` with `creds` at `now_ms`
/// (the path and query signed as they go on the wire), accepting JSON. A `json_body` is sent
/// as `application/json`.
#[allow(clippy::too_many_arguments)]
pub fn signed_request(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: reqwest::Url,
    json_body: Option<Vec<u8>>,
    creds: &AwsCredentials,
    region: &str,
    service: &str,
    now_ms: i64,
) -> Result<reqwest::RequestBuilder, String> {
    let host = host_header(&url).ok_or_else(|| format!("{url} has no host"))?;
    let mut headers: Vec<(&str, &[u8])> = vec![("host", host.as_bytes())];
    if json_body.is_some() {
        headers.push(("content-type", b"application/json"));
    }
    let req = podiam_sigv4::Request {
        method: method.as_str(),
        path: url.path(),
        query: url.query().unwrap_or(""),
        headers: &headers,
        body: json_body.as_deref().unwrap_or_default(),
    };
    let signed = podiam_sigv4::sign(
        &req,
        &creds.access_key_id,
        &creds.secret_access_key,
        creds.session_token.as_deref(),
        region,
        service,
        &crate::clock::amz_date(now_ms),
    );
    let mut rb = http
        .request(method, url)
        .header(http::header::ACCEPT, "application/json");
    for (k, v) in &signed {
        rb = rb.header(k.as_str(), v.as_str());
    }
    Ok(match json_body {
        Some(body) => rb
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(body),
        None => rb,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn host_headers() {
        let h = |u: &str| host_header(&reqwest::Url::parse(u).unwrap());
        assert_eq!(h("http://podiam:8080/x").as_deref(), Some("podiam:8080"));
        assert_eq!(
            h("https://eks.us-east-1.amazonaws.com/").as_deref(),
            Some("eks.us-east-1.amazonaws.com")
        );
        assert_eq!(
            h("https://example.com:443/").as_deref(),
            Some("example.com")
        );
        assert_eq!(
            h("http://[fd00:ec2::23]:80/").as_deref(),
            Some("[fd00:ec2::23]")
        );
        assert_eq!(h("http://[::1]:8080/").as_deref(), Some("[::1]:8080"));
        assert_eq!(h("unix:/run/x"), None);
    }
}
