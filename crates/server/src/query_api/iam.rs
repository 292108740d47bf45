//! IAM over the query protocol: one arm per action.

use podiam_control::iam::{CreateRole, Page, PageReq};
use podiam_control::simulate::{ContextEntry, SimulateInput};
use podiam_control::{AwsError, Caller};

use super::action;
use super::iam_xml::{policy_xml, role_xml, simulation_xml, tags_xml, user_xml, version_xml};
use crate::wire::model::{self as wire_model, Service};
use crate::wire::query::Params;
use crate::wire::xml::{IAM_NS, Response as Xml, timestamp, url_encode_policy};
use crate::{App, Incoming};

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

pub(super) async fn iam(app: &App, inc: &Incoming, p: &Params) -> Result<Xml, AwsError> {
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
