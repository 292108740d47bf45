//! EKS Pod Identity: associations (EKS API) and `AssumeRoleForPodIdentity` (EKS Auth API).
//!
//! An association maps (cluster, namespace, service account) to a role in the cluster's account,
//! optionally chained into a target role in any account with the association's generated
//! `sts:ExternalId`. `AssumeRoleForPodIdentity` verifies a projected service-account token
//! against the cluster's issuer (audience `pods.eks.amazonaws.com`), finds the association, and
//! assumes the role as the service principal `pods.eks.amazonaws.com` with the six session tags,
//! evaluating the role's trust policy with them as `aws:RequestTag/*`.

use std::collections::BTreeMap;
use std::sync::Arc;

use podiam_jose::{JwtError, UnverifiedToken, Validation};
use podiam_policy as policy;

use crate::Control;
use crate::auth::{Caller, RequestMeta};
use crate::authz::{Action, Keys, Target};
use crate::eks::check_tags;
use crate::error::{AwsError, ErrorCode, Result};
use crate::model::{self, kind};
use crate::names;
use crate::session::SessionClaims;
use crate::state::Change;
use crate::sts::{AssumeCommon, AssumedRole};

/// The audience of Pod Identity tokens.
pub const AUDIENCE: &str = "pods.eks.amazonaws.com";
/// The service principal that assumes association roles.
pub const SERVICE_PRINCIPAL: &str = "pods.eks.amazonaws.com";
/// Lifetime of credentials for the association role (the agent caches them up to this long).
pub const SESSION_SECS: i64 = 6 * 3600;
/// Leeway for the token's `exp` and `nbf` (as kube-apiserver allows).
pub const TOKEN_LEEWAY_SECS: i64 = 60;
/// The six session tags, in AWS's order.
pub const SESSION_TAG_KEYS: [&str; 6] = [
    "eks-cluster-arn",
    "eks-cluster-name",
    "kubernetes-namespace",
    "kubernetes-service-account",
    "kubernetes-pod-name",
    "kubernetes-pod-uid",
];

/// CreatePodIdentityAssociation input.
#[derive(Clone, Debug, Default)]
pub struct CreateAssociation {
    /// namespace.
    pub namespace: String,
    /// serviceAccount.
    pub service_account: String,
    /// roleArn.
    pub role_arn: String,
    /// targetRoleArn.
    pub target_role_arn: Option<String>,
    /// disableSessionTags.
    pub disable_session_tags: bool,
    /// policy.
    pub policy: Option<String>,
    /// tags.
    pub tags: BTreeMap<String, String>,
    /// clientRequestToken.
    pub client_request_token: Option<String>,
}

/// UpdatePodIdentityAssociation input: `None` leaves a field unchanged; an empty string removes
/// the target role or the policy.
#[derive(Clone, Debug, Default)]
pub struct UpdateAssociation {
    /// roleArn.
    pub role_arn: Option<String>,
    /// targetRoleArn.
    pub target_role_arn: Option<String>,
    /// disableSessionTags.
    pub disable_session_tags: Option<bool>,
    /// policy.
    pub policy: Option<String>,
    /// clientRequestToken.
    pub client_request_token: Option<String>,
}

/// The result of AssumeRoleForPodIdentity.
#[derive(Clone, Debug)]
pub struct PodIdentityCredentials {
    /// The token's namespace.
    pub namespace: String,
    /// The token's service account.
    pub service_account: String,
    /// The association.
    pub association_arn: String,
    /// Its id.
    pub association_id: String,
    /// The final session (the target role's when the association has one).
    pub assumed: AssumedRole,
}

/// Validate a Kubernetes name: lowercase DNS subdomain (`max` 63 for namespaces, 253 for
/// service accounts).
fn k8s_name(s: &str, what: &str, max: usize) -> Result<()> {
    let ok = !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && s.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric())
        && (max > 63 || !s.contains('.'));
    if ok {
        Ok(())
    } else {
        Err(AwsError::invalid_parameter(format!(
            "{what} {s:?} is not a valid Kubernetes name"
        )))
    }
}

fn check_session_policy(p: &str) -> Result<()> {
    if p.is_empty() || p.chars().count() > 2048 {
        return Err(AwsError::invalid_parameter(
            "policy must be 1-2048 characters",
        ));
    }
    policy::Policy::parse(p, policy::PolicyKind::Session)
        .map(|_| ())
        .map_err(|e| {
            AwsError::invalid_parameter(format!("policy is not a valid session policy: {e}"))
        })
}

fn role_arn_param(arn: &str, what: &str) -> Result<names::RoleArn> {
    names::RoleArn::parse(arn).ok_or_else(|| {
        AwsError::invalid_parameter(format!("{what} {arn:?} is not a valid IAM role ARN"))
    })
}

/// `a-` followed by 17 random lowercase letters and digits.
fn association_id() -> Result<String> {
    const ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let bytes = crate::crypto::random_bytes::<17>().map_err(|_| AwsError::server_exception())?;
    let mut id = String::from("a-");
    for b in bytes {
        id.push(char::from(
            ALPHABET
                .get(usize::from(b) % ALPHABET.len())
                .copied()
                .unwrap_or(b'a'),
        ));
    }
    Ok(id)
}

/// A random external id: 32 hex digits from the system RNG.
fn external_id() -> Result<String> {
    Ok(hex::encode(
        crate::crypto::random_bytes::<16>().map_err(|_| AwsError::server_exception())?,
    ))
}

/// `eks-<cluster>-<pod>-<uuid>` fitted into 64 characters: the UUID is kept whole and the
/// cluster and pod names are shortened, the longer one first.
pub fn session_name(cluster: &str, pod: &str, uuid: &str) -> String {
    let budget = 64usize.saturating_sub("eks---".len() + uuid.len());
    let clean = |s: &str| -> String {
        s.chars()
            .filter(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(*c))
            .collect()
    };
    let (c, p) = (clean(cluster), clean(pod));
    let (mut lc, mut lp) = (c.len(), p.len());
    while lc + lp > budget {
        if lc >= lp { lc -= 1 } else { lp -= 1 }
    }
    format!(
        "eks-{}-{}-{uuid}",
        c.get(..lc).unwrap_or_default(),
        p.get(..lp).unwrap_or_default()
    )
}

impl Control {
    /// `arn:aws:eks:REGION:ACCOUNT:podidentityassociation/CLUSTER/ID`.
    pub fn association_arn(&self, account: &str, cluster: &str, id: &str) -> String {
        format!(
            "arn:aws:eks:{}:{account}:podidentityassociation/{cluster}/{id}",
            self.config.region
        )
    }

    fn cluster_entry(&self, account: &str, name: &str) -> Result<Arc<model::Cluster>> {
        let e = self
            .db
            .read()
            .clusters
            .get(&(account.to_owned(), name.to_owned()))
            .map(|e| Arc::clone(&e.value));
        e.ok_or_else(|| AwsError::resource_not_found(format!("No cluster found for name: {name}.")))
    }

    fn association_entry(
        &self,
        account: &str,
        cluster: &str,
        id: &str,
    ) -> Result<crate::state::Entry<model::PodIdentityAssociation>> {
        let e = self
            .db
            .read()
            .associations
            .get(account, cluster, id)
            .cloned();
        e.ok_or_else(|| {
            AwsError::resource_not_found(format!(
                "Pod identity association {id} not found in cluster {cluster}."
            ))
        })
    }

    /// The association `id` of `cluster` in the caller's account, authorized for `action` on
    /// the stored association (its tags as `aws:ResourceTag/*`), or on the ARN of the id as
    /// given when there is none.
    fn association_for(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        action: Action,
        cluster: &str,
        id: &str,
    ) -> Result<crate::state::Entry<model::PodIdentityAssociation>> {
        let account = caller.account();
        let e = self
            .db
            .read()
            .associations
            .get(account, cluster, id)
            .cloned();
        let target = match &e {
            Some(e) => Target::association(&self.config.region, account, &e.value),
            None => Target::new_association(&self.config.region, account, cluster, id),
        };
        self.authorize(caller, action, &target, meta, Keys::none())?;
        self.cluster_entry(account, cluster)?;
        e.ok_or_else(|| {
            AwsError::resource_not_found(format!(
                "Pod identity association {id} not found in cluster {cluster}."
            ))
        })
    }

    /// The association role must be a role of the cluster's account that exists.
    fn check_association_role(&self, account: &str, arn: &str) -> Result<()> {
        let r = role_arn_param(arn, "roleArn")?;
        if r.account.as_str() != account {
            return Err(AwsError::invalid_parameter(format!(
                "roleArn {arn} must be in the cluster's account {account}; use targetRoleArn for a role in another account"
            )));
        }
        let exists = self
            .db
            .read()
            .roles
            .get(&(account.to_owned(), r.name.to_lowercase()))
            .is_some_and(|e| e.value.path == r.path);
        if !exists {
            return Err(AwsError::invalid_parameter(format!(
                "Role {arn} does not exist."
            )));
        }
        Ok(())
    }

    /// CreatePodIdentityAssociation.
    pub async fn create_pod_identity_association(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        cluster: &str,
        input: CreateAssociation,
    ) -> Result<Arc<model::PodIdentityAssociation>> {
        let account = caller.account().to_owned();
        crate::eks::cluster_name(cluster)?;
        k8s_name(&input.namespace, "namespace", 63)?;
        k8s_name(&input.service_account, "serviceAccount", 253)?;
        names::bounded(&input.role_arn, "roleArn", 1, 2048)
            .map_err(|e| AwsError::invalid_parameter(e.message))?;
        if let Some(t) = &input.target_role_arn {
            role_arn_param(t, "targetRoleArn")?;
        }
        if let Some(p) = &input.policy {
            if !input.disable_session_tags {
                return Err(AwsError::invalid_parameter(
                    "policy can only be set when disableSessionTags is true",
                ));
            }
            check_session_policy(p)?;
        }
        check_tags(&input.tags)?;
        if let Some(t) = &input.client_request_token
            && (t.is_empty() || t.len() > 64)
        {
            return Err(AwsError::invalid_parameter(
                "clientRequestToken must be 1-64 characters",
            ));
        }
        let mut input = input;
        let req_tags =
            Keys::none().request_tags(input.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let guard = self.db.write().await;
        self.cluster_for(
            caller,
            meta,
            Action::EksCreatePodIdentityAssociation,
            cluster,
            req_tags,
        )?
        .ok_or_else(|| {
            AwsError::resource_not_found(format!("No cluster found for name: {cluster}."))
        })?;
        self.check_association_role(&account, &input.role_arn)?;
        // The association keeps the role's canonical ARN (stored case and path), the one
        // `iam:PassRole` was authorized on.
        let cluster_arn = self.cluster_arn(&account, cluster);
        input.role_arn = self.pass_role(
            caller,
            meta,
            &input.role_arn,
            SERVICE_PRINCIPAL,
            &cluster_arn,
            true,
        )?;
        let existing = self
            .db
            .read()
            .associations
            .find(&account, cluster, &input.namespace, &input.service_account)
            .map(|e| Arc::clone(&e.value));
        if let Some(a) = existing {
            // A retry of the same create returns the association it made.
            let same = input.client_request_token.is_some()
                && a.client_request_token == input.client_request_token
                && a.role_arn == input.role_arn
                && a.target_role_arn == input.target_role_arn
                && a.disable_session_tags == input.disable_session_tags
                && a.policy == input.policy
                && a.tags == input.tags;
            if same {
                return Ok(a);
            }
            return Err(AwsError::resource_in_use(format!(
                "Association already exists: {} for namespace {} and service account {} in cluster {cluster}",
                a.id, a.namespace, a.service_account
            )));
        }
        let count = self.db.read().associations.count(&account, cluster);
        if count >= self.config.max_associations_per_cluster {
            return Err(AwsError::resource_limit(format!(
                "cluster {cluster} already has the maximum of {} pod identity associations",
                self.config.max_associations_per_cluster
            )));
        }
        let now_ms = self.now_ms();
        let a = model::PodIdentityAssociation {
            id: association_id()?,
            cluster: cluster.to_owned(),
            namespace: input.namespace,
            service_account: input.service_account,
            role_arn: input.role_arn,
            target_role_arn: input.target_role_arn,
            external_id: external_id()?,
            disable_session_tags: input.disable_session_tags,
            policy: input.policy,
            tags: input.tags,
            created_ms: now_ms,
            modified_ms: now_ms,
            owner_arn: None,
            client_request_token: input.client_request_token,
        };
        let now = self.now();
        self.db
            .commit(
                &guard,
                vec![Change::insert(
                    kind::POD_IDENTITY_ASSOCIATION,
                    &account,
                    &a.id,
                    &a,
                )?],
                now,
            )
            .await?;
        Ok(Arc::new(a))
    }

    /// DescribePodIdentityAssociation.
    pub fn describe_pod_identity_association(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        cluster: &str,
        id: &str,
    ) -> Result<Arc<model::PodIdentityAssociation>> {
        Ok(self
            .association_for(
                caller,
                meta,
                Action::EksDescribePodIdentityAssociation,
                cluster,
                id,
            )?
            .value)
    }

    /// ListPodIdentityAssociations, filtered by namespace and service account, paginated by
    /// association id.
    #[allow(clippy::too_many_arguments)]
    pub fn list_pod_identity_associations(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        cluster: &str,
        namespace: Option<&str>,
        service_account: Option<&str>,
        max_results: Option<i64>,
        next: Option<&str>,
    ) -> Result<(Vec<Arc<model::PodIdentityAssociation>>, Option<String>)> {
        let account = caller.account().to_owned();
        self.cluster_for(
            caller,
            meta,
            Action::EksListPodIdentityAssociations,
            cluster,
            Keys::none(),
        )?;
        let max = match max_results {
            None => 100,
            Some(n @ 1..=100) => usize::try_from(n).unwrap_or(100),
            Some(_) => {
                return Err(AwsError::invalid_parameter(
                    "maxResults must be between 1 and 100",
                ));
            }
        };
        let after = match next {
            None => None,
            Some(t) if t.starts_with("a-") && t.len() <= 64 => Some(t.to_owned()),
            Some(_) => return Err(AwsError::invalid_parameter("nextToken is not valid")),
        };
        self.cluster_entry(&account, cluster)?;
        let t = self.db.read();
        let mut out: Vec<Arc<model::PodIdentityAssociation>> = Vec::new();
        let mut more = false;
        for (_, e) in t
            .associations
            .of_cluster(&account, cluster, after.as_deref())
        {
            if namespace.is_some_and(|n| n != e.value.namespace)
                || service_account.is_some_and(|s| s != e.value.service_account)
            {
                continue;
            }
            if out.len() == max {
                more = true;
                break;
            }
            out.push(Arc::clone(&e.value));
        }
        let token = if more {
            out.last().map(|a| a.id.clone())
        } else {
            None
        };
        Ok((out, token))
    }

    /// UpdatePodIdentityAssociation.
    pub async fn update_pod_identity_association(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        cluster: &str,
        id: &str,
        input: UpdateAssociation,
    ) -> Result<Arc<model::PodIdentityAssociation>> {
        let account = caller.account().to_owned();
        if let Some(t) = input.target_role_arn.as_deref().filter(|t| !t.is_empty()) {
            role_arn_param(t, "targetRoleArn")?;
        }
        if let Some(p) = input.policy.as_deref().filter(|p| !p.is_empty()) {
            check_session_policy(p)?;
        }
        let guard = self.db.write().await;
        let e = self.association_for(
            caller,
            meta,
            Action::EksUpdatePodIdentityAssociation,
            cluster,
            id,
        )?;
        let mut a = (*e.value).clone();
        if let Some(r) = input.role_arn {
            self.check_association_role(&account, &r)?;
            let cluster_arn = self.cluster_arn(&account, cluster);
            a.role_arn = self.pass_role(caller, meta, &r, SERVICE_PRINCIPAL, &cluster_arn, true)?;
        }
        if let Some(t) = input.target_role_arn {
            a.target_role_arn = (!t.is_empty()).then_some(t);
        }
        if let Some(d) = input.disable_session_tags {
            a.disable_session_tags = d;
        }
        if let Some(p) = input.policy {
            a.policy = (!p.is_empty()).then_some(p);
        }
        if a.policy.is_some() && !a.disable_session_tags {
            return Err(AwsError::invalid_parameter(
                "policy can only be set when disableSessionTags is true",
            ));
        }
        a.modified_ms = self.now_ms();
        let now = self.now();
        self.db
            .commit(
                &guard,
                vec![Change::update(
                    kind::POD_IDENTITY_ASSOCIATION,
                    &account,
                    id,
                    &a,
                    e.version,
                )?],
                now,
            )
            .await?;
        Ok(Arc::new(a))
    }

    /// DeletePodIdentityAssociation: returns the deleted association.
    pub async fn delete_pod_identity_association(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        cluster: &str,
        id: &str,
    ) -> Result<Arc<model::PodIdentityAssociation>> {
        let account = caller.account().to_owned();
        let guard = self.db.write().await;
        let e = self.association_for(
            caller,
            meta,
            Action::EksDeletePodIdentityAssociation,
            cluster,
            id,
        )?;
        let now = self.now();
        self.db
            .commit(
                &guard,
                vec![Change::delete(kind::POD_IDENTITY_ASSOCIATION, &account, id)],
                now,
            )
            .await?;
        Ok(e.value)
    }

    // --- tags of EKS resources (clusters and associations) ---

    /// Resolve an EKS resource ARN of the caller's account to the stored cluster or association:
    /// `(target, cluster, association id)`. Other accounts' and regions' ARNs name nothing.
    #[allow(clippy::type_complexity)]
    fn eks_resource(
        &self,
        caller: &Caller,
        arn: &str,
    ) -> Result<(Option<Target>, Target, String, Option<String>)> {
        let not_found = || AwsError::not_found(format!("resource not found: {arn}"));
        let a = names::Arn::parse(arn)
            .ok_or_else(|| AwsError::bad_request(format!("{arn:?} is not a valid ARN")))?;
        let account = caller.account();
        if a.service != "eks" || a.account != account || a.region != self.config.region {
            return Err(not_found());
        }
        let t = self.db.read();
        let region = &self.config.region;
        if let Some(name) = a.resource.strip_prefix("cluster/") {
            return Ok(
                match t.clusters.get(&(account.to_owned(), name.to_owned())) {
                    Some(c) => (
                        Some(Target::cluster(region, account, &c.value)),
                        Target::new_cluster(region, account, name),
                        name.to_owned(),
                        None,
                    ),
                    None => (
                        None,
                        Target::new_cluster(region, account, name),
                        name.to_owned(),
                        None,
                    ),
                },
            );
        }
        if let Some((cluster, id)) = a
            .resource
            .strip_prefix("podidentityassociation/")
            .and_then(|r| r.split_once('/'))
        {
            let stored = t
                .associations
                .get(account, cluster, id)
                .map(|e| Target::association(region, account, &e.value));
            return Ok((
                stored,
                Target::new_association(region, account, cluster, id),
                cluster.to_owned(),
                Some(id.to_owned()),
            ));
        }
        Err(not_found())
    }

    /// The stored EKS resource an ARN names, authorized for `action`; one that does not exist is
    /// authorized under the ARN as given before NotFound, so the caller learns whether it
    /// exists only where allowed to act on it.
    fn eks_resource_for(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        action: Action,
        arn: &str,
        keys: Keys,
    ) -> Result<(Target, String, Option<String>)> {
        let (stored, named, cluster, id) = self.eks_resource(caller, arn)?;
        self.authorize(
            caller,
            action,
            stored.as_ref().unwrap_or(&named),
            meta,
            keys,
        )?;
        let target =
            stored.ok_or_else(|| AwsError::not_found(format!("resource not found: {arn}")))?;
        Ok((target, cluster, id))
    }

    /// ListTagsForResource (EKS).
    pub fn list_eks_tags(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        arn: &str,
    ) -> Result<BTreeMap<String, String>> {
        let (target, _, _) = self.eks_resource_for(
            caller,
            meta,
            Action::EksListTagsForResource,
            arn,
            Keys::none(),
        )?;
        Ok(target.tags().iter().cloned().collect())
    }

    /// TagResource / UntagResource (EKS): add `add`, then remove `remove`.
    pub async fn change_eks_tags(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        arn: &str,
        add: BTreeMap<String, String>,
        remove: Vec<String>,
    ) -> Result<()> {
        let bad = AwsError::bad_request;
        let (action, keys) = if remove.is_empty() {
            check_tags(&add).map_err(|e| bad(e.message))?;
            (
                Action::EksTagResource,
                Keys::none().request_tags(add.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
            )
        } else {
            (Action::EksUntagResource, Keys::none().tag_keys(&remove))
        };
        if add.is_empty() && remove.is_empty() {
            return Err(bad("no tags were given".into()));
        }
        let guard = self.db.write().await;
        let (_, cluster, id) = self.eks_resource_for(caller, meta, action, arn, keys)?;
        let account = caller.account().to_owned();
        let apply = |tags: &mut BTreeMap<String, String>| -> Result<()> {
            // A new key replaces the old one it folds to, as IAM's tags do.
            for k in add.keys() {
                let f = policy::fold_key(k);
                tags.retain(|old, _| policy::fold_key(old) != f);
            }
            tags.extend(add.clone());
            let gone: Vec<String> = remove.iter().map(|k| policy::fold_key(k)).collect();
            tags.retain(|k, _| !gone.contains(&policy::fold_key(k)));
            if tags.len() > 50 {
                return Err(bad("a resource can have at most 50 tags".into()));
            }
            Ok(())
        };
        let change = match id {
            None => {
                let e = self
                    .db
                    .read()
                    .clusters
                    .get(&(account.clone(), cluster.clone()))
                    .cloned();
                let e =
                    e.ok_or_else(|| AwsError::not_found(format!("resource not found: {arn}")))?;
                let mut c = (*e.value).clone();
                apply(&mut c.tags)?;
                Change::update(kind::CLUSTER, &account, &cluster, &c, e.version)?
            }
            Some(id) => {
                let e = self.association_entry(&account, &cluster, &id)?;
                let mut a = (*e.value).clone();
                apply(&mut a.tags)?;
                Change::update(kind::POD_IDENTITY_ASSOCIATION, &account, &id, &a, e.version)?
            }
        };
        let now = self.now();
        self.db.commit(&guard, vec![change], now).await
    }

    // --- EKS Auth ---

    /// AssumeRoleForPodIdentity (EKS Auth, signed by the node's identity).
    pub async fn assume_role_for_pod_identity(
        &self,
        caller: &Caller,
        meta: &RequestMeta,
        cluster: &str,
        token: &str,
    ) -> Result<PodIdentityCredentials> {
        crate::eks::cluster_name(cluster)?;
        let account = caller.account().to_owned();
        self.cluster_for(
            caller,
            meta,
            Action::EksAuthAssumeRoleForPodIdentity,
            cluster,
            Keys::none(),
        )?;
        self.pod_identity_credentials(&account, meta, cluster, token)
            .await
    }

    /// Direct-mode Pod Identity: [`Self::pod_identity_credentials`] for an unauthenticated
    /// caller, whose only credential is the token. A token that does not verify and a cluster
    /// (or account) that does not exist get one and the same answer, so the endpoint tells an
    /// anonymous caller nothing about which clusters exist; the details go to the log.
    pub async fn direct_pod_identity_credentials(
        &self,
        account: &str,
        meta: &RequestMeta,
        cluster: &str,
        token: &str,
    ) -> Result<PodIdentityCredentials> {
        let generic = || {
            AwsError::invalid_token(format!(
                "The service account token is not valid for cluster {cluster}."
            ))
        };
        check_token_shape(token)?;
        let exists = self
            .db
            .read()
            .clusters
            .contains_key(&(account.to_owned(), cluster.to_owned()));
        if !exists {
            return Err(generic());
        }
        match self
            .pod_identity_credentials(account, meta, cluster, token)
            .await
        {
            // A token that does not verify, or whose issuer cannot be reached to verify it,
            // reads as a missing cluster does.
            Err(e)
                if matches!(
                    e.code,
                    crate::error::ErrorCode::InvalidToken
                        | crate::error::ErrorCode::IdpCommunicationError
                ) =>
            {
                tracing::info!(account, cluster, error = %e.message, "direct-mode token refused");
                Err(generic())
            }
            other => other,
        }
    }

    /// The credentials of the pod presenting `token` in `cluster` of `account`: token
    /// verification, association lookup, trust evaluation, optional role chaining.
    pub async fn pod_identity_credentials(
        &self,
        account: &str,
        meta: &RequestMeta,
        cluster: &str,
        token: &str,
    ) -> Result<PodIdentityCredentials> {
        check_token_shape(token)?;
        let c = self.cluster_entry(account, cluster)?;
        let claims = self.verify_cluster_token(&c, token).await?;
        let pod = PodClaims::from_claims(&claims)?;
        let assoc = {
            let t = self.db.read();
            t.associations
                .find(account, cluster, &pod.namespace, &pod.service_account)
                .map(|e| Arc::clone(&e.value))
        };
        let assoc = assoc.ok_or_else(|| {
            AwsError::resource_not_found(format!(
                "No Pod Identity Association exists for service account {} in namespace {} of cluster {cluster}",
                pod.service_account, pod.namespace
            ))
        })?;
        let role_arn = role_arn_param(&assoc.role_arn, "roleArn")?;
        let role = self.role_for_assume(&role_arn, "sts:AssumeRole")?;
        let cluster_arn = self.cluster_arn(account, cluster);
        let mut tags = BTreeMap::new();
        if !assoc.disable_session_tags {
            let values = [
                cluster_arn.as_str(),
                cluster,
                &pod.namespace,
                &pod.service_account,
                &pod.pod_name,
                &pod.pod_uid,
            ];
            for (k, v) in SESSION_TAG_KEYS.iter().zip(values) {
                tags.insert((*k).to_owned(), v.to_owned());
            }
        }
        let transitive: Vec<String> = tags.keys().cloned().collect();
        let uuid = uuid::Uuid::new_v4().to_string();
        let session_name = session_name(cluster, &pod.pod_name, &uuid);
        // The service assumes the role on behalf of the cluster: `aws:SourceAccount` and
        // `aws:SourceArn` name it, as EKS sets them, so a trust policy can confine the role
        // to one cluster (the confused-deputy guard EKS documents).
        let keys = Keys::none()
            .with("sts:RoleSessionName", session_name.as_str())
            .with("aws:SourceAccount", account)
            .with("aws:SourceArn", cluster_arn.as_str())
            .and(crate::sts::session_tag_keys(&tags, &transitive));
        let mut actions = vec![Action::StsAssumeRole];
        if !tags.is_empty() {
            actions.push(Action::StsTagSession);
        }
        let principal = policy::Principal::service(SERVICE_PRINCIPAL);
        self.trust_allows(
            &role,
            role_arn.account.as_str(),
            &principal,
            &actions,
            meta,
            &keys,
            None,
        )?;
        let now = self.now();
        let chained = assoc.target_role_arn.is_some();
        let first = SessionClaims {
            access_key_id: names::access_key_id("ASIA", role_arn.account.as_str()),
            account: role_arn.account.as_str().to_owned(),
            role_name: role.name.clone(),
            role_path: role.path.clone(),
            role_id: role.id.clone(),
            session_name: session_name.clone(),
            issued: now,
            expires: now + SESSION_SECS,
            tags: tags.clone(),
            transitive: transitive.clone(),
            source_identity: None,
            // Without a target role, the association's policy restricts this session.
            policy: if chained { None } else { assoc.policy.clone() },
            policy_arns: vec![],
            policy_ids: vec![],
            chained: false,
            federated_provider: None,
        };
        let final_session = match &assoc.target_role_arn {
            None => first,
            Some(target) => {
                let target_arn = role_arn_param(target, "targetRoleArn")?;
                let target_role = self.role_for_assume(&target_arn, "sts:AssumeRole")?;
                let parent = Caller::Session(Arc::new(first));
                // The session tags pass on as transitive: the target's trust sees them as it
                // sees any session tags being set (as AssumeRole does for a chained session).
                let keys = Keys::none()
                    .with("sts:RoleSessionName", session_name.as_str())
                    .with("sts:ExternalId", assoc.external_id.as_str())
                    .and(crate::sts::session_tag_keys(&tags, &transitive));
                let mut actions = vec![Action::StsAssumeRole];
                if !tags.is_empty() {
                    actions.push(Action::StsTagSession);
                }
                let principal = crate::auth::principal_of(&parent, Some(&role));
                self.trust_allows(
                    &target_role,
                    target_arn.account.as_str(),
                    &principal,
                    &actions,
                    meta,
                    &keys,
                    Some(&parent),
                )?;
                SessionClaims {
                    access_key_id: names::access_key_id("ASIA", target_arn.account.as_str()),
                    account: target_arn.account.as_str().to_owned(),
                    role_name: target_role.name.clone(),
                    role_path: target_role.path.clone(),
                    role_id: target_role.id.clone(),
                    session_name,
                    issued: now,
                    expires: now + crate::sts::CHAINED_MAX_SECS,
                    tags,
                    transitive,
                    source_identity: None,
                    policy: assoc.policy.clone(),
                    policy_arns: vec![],
                    policy_ids: vec![],
                    chained: true,
                    federated_provider: None,
                }
            }
        };
        let common = AssumeCommon {
            policy: final_session.policy.clone(),
            ..AssumeCommon::default()
        };
        let assumed = self.mint(&final_session, &common)?;
        Ok(PodIdentityCredentials {
            namespace: pod.namespace,
            service_account: pod.service_account,
            association_arn: self.association_arn(account, cluster, &assoc.id),
            association_id: assoc.id.clone(),
            assumed,
        })
    }

    /// Verify a projected token against the cluster's issuer with the Pod Identity audience.
    async fn verify_cluster_token(
        &self,
        c: &model::Cluster,
        token: &str,
    ) -> Result<serde_json::Map<String, serde_json::Value>> {
        let invalid = AwsError::invalid_token;
        let unverified = UnverifiedToken::parse(token)
            .map_err(|e| invalid(format!("The service account token is malformed: {e}")))?;
        let audiences = [AUDIENCE.to_owned()];
        let mut v = Validation::new(&c.issuer, &audiences, self.now());
        v.leeway_secs = TOKEN_LEEWAY_SECS;
        let map_err = |e: JwtError| match e {
            JwtError::Expired => AwsError::new(
                ErrorCode::ExpiredIdentityToken,
                "The service account token has expired.",
            ),
            other => invalid(format!(
                "The service account token is not valid for cluster {}: {other}",
                c.name
            )),
        };
        if c.hosted {
            let keys = self.hosted_issuer_keys(&c.oidc_id).ok_or_else(|| {
                AwsError::new(
                    ErrorCode::InternalFailure,
                    "The cluster's issuer keys are unavailable.",
                )
            })?;
            return podiam_jose::verify(&unverified, &keys.jwks, &v)
                .map(|c| c.claims)
                .map_err(map_err);
        }
        // Trusted by the system roots alone: a cluster's issuer has no thumbprints, and keys
        // fetched under a provider's thumbprints are cached apart (see webid::IssuerTrust).
        let trust = crate::webid::IssuerTrust::system_roots(&c.issuer);
        let fetch_err = |e: crate::webid::FetchError| {
            tracing::info!(issuer = %c.issuer, error = %e, "cluster issuer keys unavailable");
            // IDPCommunicationError renders as EKS Auth's ServiceUnavailableException (503),
            // and tells this failure apart from a stale replica's.
            AwsError::new(
                crate::error::ErrorCode::IdpCommunicationError,
                "Couldn't retrieve the verification keys of the cluster's issuer.",
            )
        };
        let keys = self.jwks.keys(&trust, false).await.map_err(fetch_err)?;
        match crate::webid::verify(&unverified, &keys, &v) {
            Err(JwtError::UnknownKid) => {
                let keys = self.jwks.keys(&trust, true).await.map_err(fetch_err)?;
                crate::webid::verify(&unverified, &keys, &v)
                    .map(|c| c.claims)
                    .map_err(map_err)
            }
            other => other.map(|c| c.claims).map_err(map_err),
        }
    }
}

/// The EKS Auth model's token pattern: three base64url segments (`=` allowed), at most 20000
/// characters in all.
fn check_token_shape(token: &str) -> Result<()> {
    let seg_ok = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'=')
    };
    let parts: Vec<&str> = token.split('.').collect();
    if token.len() > 20_000 || parts.len() != 3 || !parts.iter().all(|p| seg_ok(p)) {
        return Err(AwsError::invalid_parameter(
            "token must be a JSON Web Token of three base64url segments, at most 20000 characters",
        ));
    }
    Ok(())
}

/// The pod a projected token is bound to.
struct PodClaims {
    namespace: String,
    service_account: String,
    pod_name: String,
    pod_uid: String,
}

impl PodClaims {
    fn from_claims(claims: &serde_json::Map<String, serde_json::Value>) -> Result<Self> {
        let invalid = |m: &str| AwsError::invalid_token(m);
        let sub = claims
            .get("sub")
            .and_then(|v| v.as_str())
            .ok_or_else(|| invalid("The token has no subject"))?;
        let rest = sub
            .strip_prefix("system:serviceaccount:")
            .ok_or_else(|| invalid("The token's subject is not a service account"))?;
        let (namespace, service_account) = rest
            .split_once(':')
            .ok_or_else(|| invalid("The token's subject is not a service account"))?;
        let k8s = claims.get("kubernetes.io").and_then(|v| v.as_object());
        let field = |path: [&str; 2]| -> Option<String> {
            k8s?.get(path[0])?
                .as_object()?
                .get(path[1])?
                .as_str()
                .map(str::to_owned)
        };
        if let Some(ns) = k8s
            .and_then(|k| k.get("namespace"))
            .and_then(|v| v.as_str())
            && ns != namespace
        {
            return Err(invalid(
                "the token's namespace claim does not match its subject",
            ));
        }
        if field(["serviceaccount", "name"]).is_some_and(|n| n != service_account) {
            return Err(invalid(
                "the token's service account claim does not match its subject",
            ));
        }
        let pod_name =
            field(["pod", "name"]).ok_or_else(|| invalid("The token is not bound to a pod"))?;
        let pod_uid =
            field(["pod", "uid"]).ok_or_else(|| invalid("The token is not bound to a pod"))?;
        Ok(Self {
            namespace: namespace.to_owned(),
            service_account: service_account.to_owned(),
            pod_name,
            pod_uid,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_names_fit_64() {
        let u = "0f8fad5b-d9cb-469f-a165-70867728950e";
        assert_eq!(session_name("c1", "web", u), format!("eks-c1-web-{u}"));
        let long = session_name(&"c".repeat(100), &"p".repeat(200), u);
        assert_eq!(long.len(), 64);
        assert!(long.ends_with(u));
        assert!(long.starts_with("eks-ccccccccccc-ppppppppppp"));
        // A short cluster name leaves the room to the pod name.
        let s = session_name("dev", &"podname".repeat(10), u);
        assert_eq!(s.len(), 64);
        assert!(s.starts_with("eks-dev-podnamepodname"));
        assert!(names::role_session_name(&s).is_ok());
    }

    #[test]
    fn kubernetes_names() {
        assert!(k8s_name("default", "namespace", 63).is_ok());
        assert!(k8s_name("a.b", "namespace", 63).is_err());
        assert!(k8s_name("a.b", "serviceAccount", 253).is_ok());
        assert!(k8s_name("", "namespace", 63).is_err());
        assert!(k8s_name("-a", "namespace", 63).is_err());
        assert!(k8s_name("Upper", "namespace", 63).is_err());
        assert!(k8s_name(&"a".repeat(64), "namespace", 63).is_err());
    }

    #[test]
    fn token_shapes() {
        assert!(check_token_shape("a.b.c").is_ok());
        assert!(check_token_shape("a.b").is_err());
        assert!(check_token_shape("a..c").is_err());
        assert!(check_token_shape("a.b.c d").is_err());
        assert!(check_token_shape(&format!("a.{}.c", "b".repeat(20_000))).is_err());
    }

    #[test]
    fn ids() {
        let id = association_id().unwrap_or_default();
        assert_eq!(id.len(), 19);
        assert!(id.starts_with("a-"));
        assert_ne!(id, association_id().unwrap_or_default());
        assert_eq!(external_id().unwrap_or_default().len(), 32);
    }
}
