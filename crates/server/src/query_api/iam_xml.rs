//! The XML renderings of IAM's objects and of policy simulation results.

use podiam_control::AwsError;
use podiam_control::iam::PageReq;
use podiam_control::model;
use podiam_control::simulate::EvalResult;

use crate::wire::query::Params;
use crate::wire::xml::{Response as Xml, timestamp, url_encode_policy};

pub(super) fn tags_xml(x: &mut Xml, tag: &str, tags: &[model::Tag]) {
    x.open(tag);
    for t in tags {
        x.open("member")
            .leaf("Key", &t.key)
            .leaf("Value", &t.value)
            .close("member");
    }
    x.close(tag);
}

pub(super) fn role_xml(x: &mut Xml, tag: &str, account: &str, r: &model::Role) {
    x.open(tag)
        .leaf("Path", &r.path)
        .leaf("RoleName", &r.name)
        .leaf("RoleId", &r.id)
        .leaf("Arn", &podiam_control::iam::role_arn(account, r))
        .leaf("CreateDate", &timestamp(r.created))
        .leaf(
            "AssumeRolePolicyDocument",
            &url_encode_policy(&r.trust_policy),
        )
        .opt("Description", r.description.as_deref())
        .leaf("MaxSessionDuration", &r.max_session_duration.to_string());
    if let Some(b) = &r.boundary {
        x.open("PermissionsBoundary")
            .leaf("PermissionsBoundaryType", "Policy")
            .leaf("PermissionsBoundaryArn", b)
            .close("PermissionsBoundary");
    }
    if !r.tags.is_empty() {
        tags_xml(x, "Tags", &r.tags);
    }
    x.open("RoleLastUsed").close("RoleLastUsed");
    x.close(tag);
}

pub(super) fn user_xml(x: &mut Xml, tag: &str, account: &str, u: &model::User) {
    x.open(tag)
        .leaf("Path", &u.path)
        .leaf("UserName", &u.name)
        .leaf("UserId", &u.id)
        .leaf("Arn", &podiam_control::iam::user_arn(account, u))
        .leaf("CreateDate", &timestamp(u.created));
    if let Some(b) = &u.boundary {
        x.open("PermissionsBoundary")
            .leaf("PermissionsBoundaryType", "Policy")
            .leaf("PermissionsBoundaryArn", b)
            .close("PermissionsBoundary");
    }
    if !u.tags.is_empty() {
        tags_xml(x, "Tags", &u.tags);
    }
    x.close(tag);
}

pub(super) fn policy_xml(
    x: &mut Xml,
    tag: &str,
    account: &str,
    p: &model::ManagedPolicy,
    attachments: usize,
) {
    x.open(tag)
        .leaf("PolicyName", &p.name)
        .leaf("PolicyId", &p.id)
        .leaf("Arn", &podiam_control::iam::policy_arn(account, p))
        .leaf("Path", &p.path)
        .leaf("DefaultVersionId", &p.default_version)
        .leaf("AttachmentCount", &attachments.to_string())
        .leaf("PermissionsBoundaryUsageCount", "0")
        .leaf("IsAttachable", "true")
        .opt("Description", p.description.as_deref())
        .leaf("CreateDate", &timestamp(p.created))
        .leaf("UpdateDate", &timestamp(p.updated));
    if !p.tags.is_empty() {
        tags_xml(x, "Tags", &p.tags);
    }
    x.close(tag);
}

pub(super) fn version_xml(x: &mut Xml, v: &model::PolicyVersion, default: bool, with_doc: bool) {
    x.open("PolicyVersion");
    if with_doc {
        x.leaf("Document", &url_encode_policy(&v.document));
    }
    x.leaf("VersionId", &v.id)
        .leaf("IsDefaultVersion", if default { "true" } else { "false" })
        .leaf("CreateDate", &timestamp(v.created));
    x.close("PolicyVersion");
}

#[allow(clippy::too_many_lines)]
pub(super) fn simulation_xml(
    x: &mut Xml,
    results: &[EvalResult],
    p: &Params,
) -> Result<(), AwsError> {
    let pg = PageReq {
        marker: p.opt("Marker"),
        max_items: p.int("MaxItems")?,
    };
    let keyed: Vec<(String, &EvalResult)> = results
        .iter()
        .enumerate()
        .map(|(i, r)| (format!("{i:08}"), r))
        .collect();
    let size = usize::try_from(pg.max_items.unwrap_or(1000).clamp(1, 1000)).unwrap_or(1000);
    let start = match &pg.marker {
        Some(m) => keyed.iter().position(|(k, _)| k > m).unwrap_or(keyed.len()),
        None => 0,
    };
    let page: Vec<&(String, &EvalResult)> = keyed.iter().skip(start).take(size).collect();
    let marker = (start + page.len() < keyed.len())
        .then(|| page.last().map(|(k, _)| k.clone()))
        .flatten();
    x.open("EvaluationResults");
    for (_, r) in &page {
        x.open("member")
            .leaf("EvalActionName", &r.action)
            .leaf("EvalResourceName", &r.resource)
            .leaf("EvalDecision", r.decision);
        x.open("MatchedStatements");
        for m in &r.matched {
            x.open("member")
                .leaf("SourcePolicyId", &m.source_policy_id)
                .leaf("SourcePolicyType", &m.source_policy_type);
            if let (Some(s), Some(e)) = (m.start, m.end) {
                x.open("StartPosition")
                    .leaf("Line", &s.line.to_string())
                    .leaf("Column", &s.column.to_string())
                    .close("StartPosition");
                x.open("EndPosition")
                    .leaf("Line", &e.line.to_string())
                    .leaf("Column", &e.column.to_string())
                    .close("EndPosition");
            }
            x.close("member");
        }
        x.close("MatchedStatements");
        x.members("MissingContextValues", &r.missing);
        if let Some(b) = r.boundary_allowed {
            x.open("PermissionsBoundaryDecisionDetail")
                .leaf(
                    "AllowedByPermissionsBoundary",
                    if b { "true" } else { "false" },
                )
                .close("PermissionsBoundaryDecisionDetail");
        }
        x.close("member");
    }
    x.close("EvaluationResults");
    x.leaf(
        "IsTruncated",
        if marker.is_some() { "true" } else { "false" },
    );
    x.opt("Marker", marker.as_deref());
    Ok(())
}
