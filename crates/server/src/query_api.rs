//! STS and IAM over the AWS query protocol.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use podiam_control::sts::{AssumeCommon, AssumeRoleExtra, AssumedRole};
use podiam_control::{AwsError, ErrorCode, Protocol};

use crate::wire::model::{self as wire_model, Service};
use crate::wire::query::Params;
use crate::wire::xml::{self, IAM_NS, Response as Xml, STS_NS, timestamp};
use crate::{App, Incoming};

mod iam;
mod iam_xml;

use iam::iam;

const STS_VERSION: &str = "2011-06-15";
const IAM_VERSION: &str = "2010-05-08";

pub(crate) async fn handle(app: &App, inc: Incoming) -> Response {
    let rid = inc.meta.request_id.clone();
    let source: &[u8] = if inc.method == axum::http::Method::GET {
        inc.query.as_bytes()
    } else {
        &inc.body
    };
    let params = match Params::parse(source) {
        Ok(p) => p,
        Err(e) => return render_error(&e, STS_NS, &rid),
    };
    let protocol = match params.get("Version") {
        Some(STS_VERSION) => "sts",
        Some(IAM_VERSION) => "iam",
        _ => "query",
    };
    let action = crate::metrics::query_action(params.get("Action").unwrap_or_default());
    let (ns, result) = match params.get("Version") {
        Some(STS_VERSION) => (STS_NS, sts(app, &inc, &params).await),
        Some(IAM_VERSION) => (IAM_NS, iam(app, &inc, &params).await),
        Some(v) => (
            STS_NS,
            Err(AwsError::new(
                ErrorCode::InvalidAction,
                format!("Unsupported API version {v:?}."),
            )),
        ),
        None => (STS_NS, Err(AwsError::missing_parameter("Version"))),
    };
    let mut resp = match result {
        Ok(x) => (
            StatusCode::OK,
            [("content-type", "text/xml")],
            x.finish(&rid),
        )
            .into_response(),
        Err(e) => render_error(&e, ns, &rid),
    };
    crate::metrics::mark(&mut resp, protocol, action);
    resp
}

/// The query protocol's error response (IAM and STS).
pub(crate) fn render_error(e: &AwsError, ns: &str, rid: &str) -> Response {
    let wire = e.wire(Protocol::Query);
    if !wire.is_sender() {
        tracing::error!(code = %e.code, request_id = rid, "internal error");
    }
    let status = StatusCode::from_u16(wire.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut r = (
        status,
        [("content-type", "text/xml")],
        xml::error(e, ns, rid),
    )
        .into_response();
    crate::metrics::mark_error(&mut r, e);
    r
}

fn action(p: &Params) -> Result<&str, AwsError> {
    p.get("Action")
        .ok_or_else(|| AwsError::new(ErrorCode::MissingAction, "Missing Action"))
}

// === STS ===

async fn sts(app: &App, inc: &Incoming, p: &Params) -> Result<Xml, AwsError> {
    let c = &app.control;
    let action = action(p)?;
    if action == "AssumeRoleWithWebIdentity" {
        // Unsigned by design: the token is the credential.
        wire_model::check_query(Service::Sts, action, p)?;
        let common = assume_common(p)?;
        // A token file written by a shell (`podiam token > f`) ends in a newline, which is not
        // part of the JWS; trailing whitespace is dropped before verification.
        let token = p
            .required("WebIdentityToken")?
            .trim_end_matches([' ', '\n', '\r', '\t']);
        let out = c
            .assume_role_with_web_identity(&inc.meta, common, token)
            .await?;
        return Ok(assumed_xml(action, &out));
    }
    let caller = inc.caller(app, "sts")?;
    wire_model::check_query(Service::Sts, action, p)?;
    match action {
        "GetCallerIdentity" => {
            let mut x = Xml::new(action, STS_NS);
            x.leaf("Arn", &caller.arn())
                .leaf("UserId", &caller.user_id())
                .leaf("Account", caller.account());
            Ok(x)
        }
        "AssumeRole" => {
            let common = assume_common(p)?;
            let extra = AssumeRoleExtra {
                external_id: p.opt("ExternalId"),
                tags: p.tags("Tags")?,
                transitive_tag_keys: p.list("TransitiveTagKeys"),
                source_identity: p.opt("SourceIdentity"),
            };
            let out = c.assume_role(&caller, &inc.meta, common, extra).await?;
            Ok(assumed_xml(action, &out))
        }
        "GetAccessKeyInfo" => {
            let account = c.get_access_key_info(&caller, &inc.meta, p.required("AccessKeyId")?)?;
            let mut x = Xml::new(action, STS_NS);
            x.leaf("Account", &account);
            Ok(x)
        }
        other => Err(AwsError::invalid_action(other)),
    }
}

fn assume_common(p: &Params) -> Result<AssumeCommon, AwsError> {
    Ok(AssumeCommon {
        role_arn: p.required("RoleArn")?.to_owned(),
        session_name: p.required("RoleSessionName")?.to_owned(),
        duration: p.int("DurationSeconds")?,
        policy: p.opt("Policy"),
        policy_arns: p.struct_list("PolicyArns", "arn"),
    })
}

fn assumed_xml(action: &str, out: &AssumedRole) -> Xml {
    // The credentials (the session token above all) are most of the answer: room for them and
    // the markup around, so the buffer is allocated once.
    let c = &out.credentials;
    let text = [
        out.subject.as_deref(),
        out.audience.as_deref(),
        out.provider.as_deref(),
        out.source_identity.as_deref(),
        Some(&out.arn),
        Some(&out.assumed_role_id),
        Some(&c.access_key_id),
        Some(&c.secret_access_key),
        Some(&c.session_token),
    ]
    .iter()
    .flatten()
    .map(|t| t.len())
    .sum::<usize>();
    let mut x = Xml::with_capacity(action, STS_NS, text + 1024);
    x.opt("SubjectFromWebIdentityToken", out.subject.as_deref());
    x.opt("Audience", out.audience.as_deref());
    x.open("AssumedRoleUser")
        .leaf("Arn", &out.arn)
        .leaf("AssumedRoleId", &out.assumed_role_id)
        .close("AssumedRoleUser");
    x.open("Credentials")
        .leaf("AccessKeyId", &out.credentials.access_key_id)
        .leaf("SecretAccessKey", &out.credentials.secret_access_key)
        .leaf("SessionToken", &out.credentials.session_token)
        .leaf("Expiration", &timestamp(out.credentials.expiration))
        .close("Credentials");
    x.opt("Provider", out.provider.as_deref());
    if let Some(n) = out.packed_policy_size {
        x.leaf("PackedPolicySize", &n.to_string());
    }
    x.opt("SourceIdentity", out.source_identity.as_deref());
    x
}
