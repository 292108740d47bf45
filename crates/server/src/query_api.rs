//! STS and IAM over the AWS query protocol.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use podiam_control::iam::{CreateRole, Page, PageReq};
use podiam_control::model;
use podiam_control::simulate::{ContextEntry, EvalResult, SimulateInput};
use podiam_control::sts::{AssumeCommon, AssumeRoleExtra, AssumedRole};
use podiam_control::{AwsError, Caller, ErrorCode, Protocol};

use crate::wire::model::{self as wire_model, Service};
use crate::wire::query::Params;
use crate::wire::xml::{self, IAM_NS, Response as Xml, STS_NS, timestamp, url_encode_policy};
use crate::{App, Incoming};

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
    let mut x = Xml::new(action, STS_NS);
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

// === IAM ===

fn page(p: &Params) -> Result<PageReq, AwsError> {
    Ok(PageReq {
        marker: p.opt("Marker"),
        max_items: p.int("MaxItems")?,
    })
}

fn page_tail<T>(x: &mut Xml, pg: &Page<T>) {
    x.leaf(
        "IsTruncated",
        if pg.marker.is_some() { "true" } else { "false" },
    );
    x.opt("Marker", pg.marker.as_deref());
}

fn tags_xml(x: &mut Xml, tag: &str, tags: &[model::Tag]) {
    x.open(tag);
    for t in tags {
        x.open("member")
            .leaf("Key", &t.key)
            .leaf("Value", &t.value)
            .close("member");
    }
    x.close(tag);
}

fn role_xml(x: &mut Xml, tag: &str, account: &str, r: &model::Role) {
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

fn user_xml(x: &mut Xml, tag: &str, account: &str, u: &model::User) {
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

fn policy_xml(x: &mut Xml, tag: &str, account: &str, p: &model::ManagedPolicy, attachments: usize) {
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

fn version_xml(x: &mut Xml, v: &model::PolicyVersion, default: bool, with_doc: bool) {
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
async fn iam(app: &App, inc: &Incoming, p: &Params) -> Result<Xml, AwsError> {
    let c = &app.control;
    let action = action(p)?;
    let caller: Caller = inc.caller(app, "iam")?;
    wire_model::check_query(Service::Iam, action, p)?;
    let acct = caller.account().to_owned();
    let m = &inc.meta;
    let mut x = Xml::new(action, IAM_NS);
    match action {
        // --- OIDC providers ---
        "CreateOpenIDConnectProvider" => {
            let tags = p.tags("Tags")?;
            let arn = c
                .create_oidc_provider(
                    &caller,
                    m,
                    p.required("Url")?,
                    p.list("ClientIDList"),
                    p.list("ThumbprintList"),
                    tags.clone(),
                )
                .await?;
            x.leaf("OpenIDConnectProviderArn", &arn);
            if !tags.is_empty() {
                tags_xml(&mut x, "Tags", &tags);
            }
        }
        "GetOpenIDConnectProvider" => {
            let prov = c.get_oidc_provider(&caller, m, p.required("OpenIDConnectProviderArn")?)?;
            x.leaf("Url", prov.url.trim_start_matches("https://"))
                .members("ClientIDList", &prov.client_ids)
                .members("ThumbprintList", &prov.thumbprints)
                .leaf("CreateDate", &timestamp(prov.created));
            tags_xml(&mut x, "Tags", &prov.tags);
        }
        "ListOpenIDConnectProviders" => {
            let arns = c.list_oidc_providers(&caller, m)?;
            x.open("OpenIDConnectProviderList");
            for a in arns {
                x.open("member").leaf("Arn", &a).close("member");
            }
            x.close("OpenIDConnectProviderList");
        }
        "DeleteOpenIDConnectProvider" => {
            c.delete_oidc_provider(&caller, m, p.required("OpenIDConnectProviderArn")?)
                .await?
        }
        "AddClientIDToOpenIDConnectProvider" => {
            c.add_client_id(
                &caller,
                m,
                p.required("OpenIDConnectProviderArn")?,
                p.required("ClientID")?,
            )
            .await?;
        }
        "RemoveClientIDFromOpenIDConnectProvider" => {
            c.remove_client_id(
                &caller,
                m,
                p.required("OpenIDConnectProviderArn")?,
                p.required("ClientID")?,
            )
            .await?;
        }
        "UpdateOpenIDConnectProviderThumbprint" => {
            c.update_thumbprints(
                &caller,
                m,
                p.required("OpenIDConnectProviderArn")?,
                p.list("ThumbprintList"),
            )
            .await?;
        }
        "TagOpenIDConnectProvider" => {
            c.tag_oidc_provider(
                &caller,
                m,
                p.required("OpenIDConnectProviderArn")?,
                p.tags("Tags")?,
            )
            .await?
        }
        "UntagOpenIDConnectProvider" => {
            c.untag_oidc_provider(
                &caller,
                m,
                p.required("OpenIDConnectProviderArn")?,
                p.list("TagKeys"),
            )
            .await?;
        }
        "ListOpenIDConnectProviderTags" => {
            let tags =
                c.list_oidc_provider_tags(&caller, m, p.required("OpenIDConnectProviderArn")?)?;
            tags_xml(&mut x, "Tags", &tags);
            x.leaf("IsTruncated", "false");
        }
        // --- roles ---
        "CreateRole" => {
            let role = c
                .create_role(
                    &caller,
                    m,
                    CreateRole {
                        name: p.required("RoleName")?.to_owned(),
                        path: p.opt("Path"),
                        trust_policy: p.required("AssumeRolePolicyDocument")?.to_owned(),
                        description: p.opt("Description"),
                        max_session_duration: p.int("MaxSessionDuration")?,
                        boundary: p.opt("PermissionsBoundary"),
                        tags: p.tags("Tags")?,
                    },
                )
                .await?;
            role_xml(&mut x, "Role", &acct, &role);
        }
        "GetRole" => {
            let role = c.get_role(&caller, m, p.required("RoleName")?)?;
            role_xml(&mut x, "Role", &acct, &role);
        }
        "ListRoles" => {
            let pg = c.list_roles(&caller, m, p.get("PathPrefix"), &page(p)?)?;
            x.open("Roles");
            for r in &pg.items {
                role_xml(&mut x, "member", &acct, r);
            }
            x.close("Roles");
            page_tail(&mut x, &pg);
        }
        "UpdateRole" => {
            c.update_role_settings(
                &caller,
                m,
                p.required("RoleName")?,
                p.opt("Description"),
                p.int("MaxSessionDuration")?,
            )
            .await?;
        }
        "UpdateRoleDescription" => {
            let role = c
                .update_role_description(
                    &caller,
                    m,
                    p.required("RoleName")?,
                    p.required("Description")?.to_owned(),
                )
                .await?;
            role_xml(&mut x, "Role", &acct, &role);
        }
        "UpdateAssumeRolePolicy" => {
            c.update_assume_role_policy(
                &caller,
                m,
                p.required("RoleName")?,
                p.required("PolicyDocument")?.to_owned(),
            )
            .await?;
        }
        "DeleteRole" => c.delete_role(&caller, m, p.required("RoleName")?).await?,
        "PutRolePermissionsBoundary" => {
            c.put_role_boundary(
                &caller,
                m,
                p.required("RoleName")?,
                p.required("PermissionsBoundary")?,
            )
            .await?;
        }
        "DeleteRolePermissionsBoundary" => {
            c.delete_role_boundary(&caller, m, p.required("RoleName")?)
                .await?
        }
        "TagRole" => {
            c.tag_role(&caller, m, p.required("RoleName")?, p.tags("Tags")?)
                .await?
        }
        "UntagRole" => {
            c.untag_role(&caller, m, p.required("RoleName")?, p.list("TagKeys"))
                .await?
        }
        "ListRoleTags" => {
            let tags = c.list_role_tags(&caller, m, p.required("RoleName")?)?;
            tags_xml(&mut x, "Tags", &tags);
            x.leaf("IsTruncated", "false");
        }
        "PutRolePolicy" => {
            c.put_role_policy(
                &caller,
                m,
                p.required("RoleName")?,
                p.required("PolicyName")?,
                p.required("PolicyDocument")?.to_owned(),
            )
            .await?;
        }
        "GetRolePolicy" => {
            let (role, pol) = c.get_role_policy(
                &caller,
                m,
                p.required("RoleName")?,
                p.required("PolicyName")?,
            )?;
            x.leaf("RoleName", &role)
                .leaf("PolicyName", &pol.name)
                .leaf("PolicyDocument", &url_encode_policy(&pol.document));
        }
        "DeleteRolePolicy" => {
            c.delete_role_policy(
                &caller,
                m,
                p.required("RoleName")?,
                p.required("PolicyName")?,
            )
            .await?
        }
        "ListRolePolicies" => {
            let pg = c.list_role_policies(&caller, m, p.required("RoleName")?, &page(p)?)?;
            x.members("PolicyNames", &pg.items);
            page_tail(&mut x, &pg);
        }
        "AttachRolePolicy" => {
            c.attach_role_policy(
                &caller,
                m,
                p.required("RoleName")?,
                p.required("PolicyArn")?,
            )
            .await?
        }
        "DetachRolePolicy" => {
            c.detach_role_policy(
                &caller,
                m,
                p.required("RoleName")?,
                p.required("PolicyArn")?,
            )
            .await?
        }
        "ListAttachedRolePolicies" => {
            let pg =
                c.list_attached_role_policies(&caller, m, p.required("RoleName")?, &page(p)?)?;
            x.open("AttachedPolicies");
            for a in &pg.items {
                x.open("member")
                    .leaf("PolicyName", &a.name)
                    .leaf("PolicyArn", &a.arn)
                    .close("member");
            }
            x.close("AttachedPolicies");
            page_tail(&mut x, &pg);
        }
        // --- managed policies ---
        "CreatePolicy" => {
            let pol = c
                .create_policy(
                    &caller,
                    m,
                    p.required("PolicyName")?,
                    p.opt("Path"),
                    p.required("PolicyDocument")?.to_owned(),
                    p.opt("Description"),
                    p.tags("Tags")?,
                )
                .await?;
            policy_xml(&mut x, "Policy", &acct, &pol, 0);
        }
        "GetPolicy" => {
            let (pol, n) = c.get_policy(&caller, m, p.required("PolicyArn")?)?;
            policy_xml(&mut x, "Policy", &acct, &pol, n);
        }
        "ListPolicies" => {
            // `Scope` is one of the model's enum values (checked with the other constraints).
            let scope = p.get("Scope").unwrap_or("All");
            let pg = c.list_policies(
                &caller,
                m,
                p.get("PathPrefix"),
                p.bool("OnlyAttached")?.unwrap_or(false),
                &page(p)?,
            )?;
            x.open("Policies");
            if scope != "AWS" {
                for (pol, n) in &pg.items {
                    policy_xml(&mut x, "member", &acct, pol, *n);
                }
            }
            x.close("Policies");
            page_tail(&mut x, &pg);
        }
        "DeletePolicy" => {
            c.delete_policy(&caller, m, p.required("PolicyArn")?)
                .await?
        }
        "GetPolicyVersion" => {
            let (v, default) = c.get_policy_version(
                &caller,
                m,
                p.required("PolicyArn")?,
                p.required("VersionId")?,
            )?;
            version_xml(&mut x, &v, default, true);
        }
        "CreatePolicyVersion" => {
            let (v, default) = c
                .create_policy_version(
                    &caller,
                    m,
                    p.required("PolicyArn")?,
                    p.required("PolicyDocument")?.to_owned(),
                    p.bool("SetAsDefault")?.unwrap_or(false),
                )
                .await?;
            version_xml(&mut x, &v, default, false);
        }
        // --- users and access keys ---
        "CreateUser" => {
            let u = c
                .create_user(
                    &caller,
                    m,
                    p.required("UserName")?,
                    p.opt("Path"),
                    p.get("PermissionsBoundary"),
                    p.tags("Tags")?,
                )
                .await?;
            user_xml(&mut x, "User", &acct, &u);
        }
        "GetUser" => {
            let u = c.get_user(&caller, m, p.get("UserName"))?;
            user_xml(&mut x, "User", &acct, &u);
        }
        "DeleteUser" => c.delete_user(&caller, m, p.required("UserName")?).await?,
        "PutUserPermissionsBoundary" => {
            c.put_user_boundary(
                &caller,
                m,
                p.required("UserName")?,
                p.required("PermissionsBoundary")?,
            )
            .await?;
        }
        "DeleteUserPermissionsBoundary" => {
            c.delete_user_boundary(&caller, m, p.required("UserName")?)
                .await?
        }
        "PutUserPolicy" => {
            c.put_user_policy(
                &caller,
                m,
                p.required("UserName")?,
                p.required("PolicyName")?,
                p.required("PolicyDocument")?.to_owned(),
            )
            .await?;
        }
        "GetUserPolicy" => {
            let (user, pol) = c.get_user_policy(
                &caller,
                m,
                p.required("UserName")?,
                p.required("PolicyName")?,
            )?;
            x.leaf("UserName", &user)
                .leaf("PolicyName", &pol.name)
                .leaf("PolicyDocument", &url_encode_policy(&pol.document));
        }
        "DeleteUserPolicy" => {
            c.delete_user_policy(
                &caller,
                m,
                p.required("UserName")?,
                p.required("PolicyName")?,
            )
            .await?
        }
        "ListUserPolicies" => {
            let pg = c.list_user_policies(&caller, m, p.required("UserName")?, &page(p)?)?;
            x.members("PolicyNames", &pg.items);
            page_tail(&mut x, &pg);
        }
        "DetachUserPolicy" => {
            c.detach_user_policy(
                &caller,
                m,
                p.required("UserName")?,
                p.required("PolicyArn")?,
            )
            .await?
        }
        "ListAttachedUserPolicies" => {
            let pg =
                c.list_attached_user_policies(&caller, m, p.required("UserName")?, &page(p)?)?;
            x.open("AttachedPolicies");
            for a in &pg.items {
                x.open("member")
                    .leaf("PolicyName", &a.name)
                    .leaf("PolicyArn", &a.arn)
                    .close("member");
            }
            x.close("AttachedPolicies");
            page_tail(&mut x, &pg);
        }
        "ListUsers" => {
            let pg = c.list_users(&caller, m, p.get("PathPrefix"), &page(p)?)?;
            x.open("Users");
            for u in &pg.items {
                user_xml(&mut x, "member", &acct, u);
            }
            x.close("Users");
            page_tail(&mut x, &pg);
        }
        "AttachUserPolicy" => {
            c.attach_user_policy(
                &caller,
                m,
                p.required("UserName")?,
                p.required("PolicyArn")?,
            )
            .await?
        }
        "CreateAccessKey" => {
            let (key, secret, user) = c.create_access_key(&caller, m, p.get("UserName")).await?;
            x.open("AccessKey")
                .leaf("UserName", &user)
                .leaf("AccessKeyId", &key.id)
                .leaf("Status", &key.status)
                .leaf("SecretAccessKey", &secret)
                .leaf("CreateDate", &timestamp(key.created))
                .close("AccessKey");
        }
        "DeleteAccessKey" => {
            c.delete_access_key(&caller, m, p.get("UserName"), p.required("AccessKeyId")?)
                .await?
        }
        "ListAccessKeys" => {
            let (user, keys) = c.list_access_keys(&caller, m, p.get("UserName"))?;
            x.open("AccessKeyMetadata");
            for k in keys {
                x.open("member")
                    .leaf("UserName", &user)
                    .leaf("AccessKeyId", &k.id)
                    .leaf("Status", &k.status)
                    .leaf("CreateDate", &timestamp(k.created))
                    .close("member");
            }
            x.close("AccessKeyMetadata");
            x.leaf("IsTruncated", "false");
        }
        // --- simulation ---
        "SimulatePrincipalPolicy" | "SimulateCustomPolicy" => {
            let input = simulate_input(p)?;
            let results = c.simulate(&caller, m, &input, action == "SimulatePrincipalPolicy")?;
            simulation_xml(&mut x, &results, p)?;
        }
        other => return Err(AwsError::invalid_action(other)),
    }
    Ok(x)
}

fn simulate_input(p: &Params) -> Result<SimulateInput, AwsError> {
    let mut context = Vec::new();
    for i in 1.. {
        let prefix = format!("ContextEntries.member.{i}");
        let Some(name) = p.get(&format!("{prefix}.ContextKeyName")) else {
            break;
        };
        context.push(ContextEntry {
            name: name.to_owned(),
            values: p.list(&format!("{prefix}.ContextKeyValues")),
            kind: p
                .get(&format!("{prefix}.ContextKeyType"))
                .unwrap_or("string")
                .to_owned(),
        });
    }
    Ok(SimulateInput {
        policy_source_arn: p.opt("PolicySourceArn"),
        policy_inputs: p.list("PolicyInputList"),
        boundary_inputs: p.list("PermissionsBoundaryPolicyInputList"),
        actions: p.list("ActionNames"),
        resources: p.list("ResourceArns"),
        resource_policy: p.opt("ResourcePolicy"),
        resource_owner: p.opt("ResourceOwner"),
        caller_arn: p.opt("CallerArn"),
        context,
    })
}

fn simulation_xml(x: &mut Xml, results: &[EvalResult], p: &Params) -> Result<(), AwsError> {
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
