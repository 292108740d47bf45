//! The pod mutation itself, as amazon-eks-pod-identity-webhook's `handler.go` does it: which
//! identity applies (EKS Pod Identity association first, then the IRSA role of the service
//! account), the env vars, the projected token volume and mounts, and the JSON Patch.
//!
//! The pod is handled as JSON (`serde_json::Value`), so fields podiam does not model are kept
//! verbatim in the whole-array replacements of `/spec/containers` and `/spec/initContainers`.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::sources::{ConfigEntry, ServiceAccountInfo};

/// IRSA: the projected token volume's name.
pub const IRSA_VOLUME_NAME: &str = "aws-iam-token";
/// IRSA: the token's file name in the volume.
pub const IRSA_TOKEN_PATH: &str = "token";
/// The default IRSA token mount path.
pub const DEFAULT_TOKEN_MOUNT_PATH: &str = "/var/run/secrets/eks.amazonaws.com/serviceaccount";
/// The default token expiration, seconds.
pub const DEFAULT_TOKEN_EXPIRATION: i64 = 86_400;
/// The smallest accepted token expiration, seconds (larger requests are clamped up to it).
pub const MIN_TOKEN_EXPIRATION: i64 = 600;
/// The low end of the jittered default Pod Identity token expiration.
pub const MIN_JITTERED_EXPIRATION: i64 = 79_200;
/// The label added to pods mutated for EKS Pod Identity.
pub const POD_IDENTITY_LABEL: &str = "eks.amazonaws.com/pod-identity";

const ENV_ROLE_ARN: &str = "AWS_ROLE_ARN";
const ENV_TOKEN_FILE: &str = "AWS_WEB_IDENTITY_TOKEN_FILE";
const ENV_REGIONAL: &str = "AWS_STS_REGIONAL_ENDPOINTS";
const ENV_REGION: &str = "AWS_REGION";
const ENV_DEFAULT_REGION: &str = "AWS_DEFAULT_REGION";
const ENV_FULL_URI: &str = "AWS_CONTAINER_CREDENTIALS_FULL_URI";
const ENV_AUTH_TOKEN_FILE: &str = "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE";
const ENV_ENDPOINT_STS: &str = "AWS_ENDPOINT_URL_STS";
const ENV_ENDPOINT_EKS_AUTH: &str = "AWS_ENDPOINT_URL_EKS_AUTH";

/// Picks the Pod Identity token expiration when the configured one is the default 86400 s:
/// the real webhook draws uniformly from [79200, 86400] so that pods do not all refresh at once.
pub type Jitter = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The default jitter: uniform in [79200, 86400].
pub fn random_jitter() -> Jitter {
    Arc::new(|| rand::random_range(MIN_JITTERED_EXPIRATION..=DEFAULT_TOKEN_EXPIRATION))
}

/// What the webhook injects, with the real webhook's flag defaults.
#[derive(Clone)]
pub struct Settings {
    /// `--annotation-prefix` (`eks.amazonaws.com`).
    pub annotation_prefix: String,
    /// `--token-audience` (`sts.amazonaws.com`): the IRSA audience unless the service account
    /// says otherwise.
    pub token_audience: String,
    /// `--token-mount-path`.
    pub token_mount_path: String,
    /// `--token-expiration` (86400).
    pub token_expiration: i64,
    /// `--aws-default-region` / `--default-region`: injected as `AWS_REGION` and
    /// `AWS_DEFAULT_REGION` when neither is set.
    pub default_region: Option<String>,
    /// `--sts-regional-endpoint`: the default of the `sts-regional-endpoints` annotation.
    pub regional_sts: bool,
    /// `--container-credentials-audience` (`pods.eks.amazonaws.com`).
    pub cc_audience: String,
    /// `--container-credentials-token-mount-path`.
    pub cc_mount_path: String,
    /// `--container-credentials-token-volume-name` (`eks-pod-identity-token`).
    pub cc_volume_name: String,
    /// `--container-credentials-token-path` (`eks-pod-identity-token`).
    pub cc_token_path: String,
    /// `--container-credentials-full-uri` (`http://169.254.170.23/v1/credentials`).
    pub cc_full_uri: String,
    /// podiam extension (off by default): inject `AWS_ENDPOINT_URL_STS` and
    /// `AWS_ENDPOINT_URL_EKS_AUTH` with this URL so SDKs reach a self-hosted control plane.
    pub inject_sts_endpoint: Option<String>,
    /// The Pod Identity expiration jitter.
    pub jitter: Jitter,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("annotation_prefix", &self.annotation_prefix)
            .field("token_audience", &self.token_audience)
            .field("default_region", &self.default_region)
            .field("regional_sts", &self.regional_sts)
            .field("inject_sts_endpoint", &self.inject_sts_endpoint)
            .finish_non_exhaustive()
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            annotation_prefix: "eks.amazonaws.com".into(),
            token_audience: "sts.amazonaws.com".into(),
            token_mount_path: DEFAULT_TOKEN_MOUNT_PATH.into(),
            token_expiration: DEFAULT_TOKEN_EXPIRATION,
            default_region: None,
            regional_sts: false,
            cc_audience: "pods.eks.amazonaws.com".into(),
            cc_mount_path: "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount".into(),
            cc_volume_name: "eks-pod-identity-token".into(),
            cc_token_path: "eks-pod-identity-token".into(),
            cc_full_uri: "http://169.254.170.23/v1/credentials".into(),
            inject_sts_endpoint: None,
            jitter: random_jitter(),
        }
    }
}

impl Settings {
    fn key(&self, name: &str) -> String {
        format!("{}/{name}", self.annotation_prefix)
    }

    /// The opt-out label: pods carrying it (any value) are never mutated.
    pub fn skip_label(&self) -> String {
        self.key("skip-pod-identity-webhook")
    }
}

/// Which mechanism a pod was mutated for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Web identity (IRSA).
    Irsa,
    /// Container credentials (EKS Pod Identity).
    PodIdentity,
    /// Nothing injected.
    None,
}

impl Method {
    /// The metrics label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Irsa => "irsa",
            Self::PodIdentity => "pod-identity",
            Self::None => "none",
        }
    }
}

/// The result of [`mutate`].
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The mechanism chosen (`None` also when the pod already had everything).
    pub method: Method,
    /// The JSON Patch operations, when anything changes.
    pub patch: Option<Vec<Value>>,
}

impl Outcome {
    fn none() -> Self {
        Self {
            method: Method::None,
            patch: None,
        }
    }
}

/// The common configuration resolved from the service account (annotations, else the
/// ConfigMap-style entry) and the flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaConfig {
    /// The IRSA role, if any.
    pub role_arn: Option<String>,
    /// The IRSA audience.
    pub audience: String,
    /// Whether to inject `AWS_STS_REGIONAL_ENDPOINTS=regional`.
    pub regional_sts: bool,
    /// The token expiration (pod annotation not yet applied).
    pub token_expiration: i64,
}

/// `strconv.ParseBool`.
fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// An expiration annotation: invalid → ignored, valid → clamped up to 600.
fn parse_expiration(s: &str) -> Option<i64> {
    s.trim()
        .parse::<i64>()
        .ok()
        .map(|v| v.max(MIN_TOKEN_EXPIRATION))
}

/// Resolves the service account's settings: annotations win over the ConfigMap entry.
pub fn resolve_sa(settings: &Settings, sa: Option<&ServiceAccountInfo>) -> SaConfig {
    let mut out = SaConfig {
        role_arn: None,
        audience: settings.token_audience.clone(),
        regional_sts: settings.regional_sts,
        token_expiration: settings.token_expiration,
    };
    let Some(sa) = sa else { return out };
    let ann = |name: &str| sa.annotations.get(&settings.key(name)).map(String::as_str);
    let role = ann("role-arn").filter(|r| !r.is_empty());
    match (&sa.config, role) {
        (Some(entry), None) => apply_config_entry(&mut out, entry),
        _ => {
            if let Some(r) = role {
                if !looks_like_role_arn(r) {
                    tracing::warn!(
                        role_arn = r,
                        "role-arn annotation is not a role ARN; using it anyway"
                    );
                }
                out.role_arn = Some(r.to_owned());
            }
            if let Some(a) = ann("audience").filter(|a| !a.is_empty()) {
                a.clone_into(&mut out.audience);
            }
            if let Some(b) = ann("sts-regional-endpoints").and_then(parse_go_bool) {
                out.regional_sts = b;
            }
            if let Some(e) = ann("token-expiration").and_then(parse_expiration) {
                out.token_expiration = e;
            }
        }
    }
    out
}

fn apply_config_entry(out: &mut SaConfig, entry: &ConfigEntry) {
    out.role_arn = entry.role_arn.clone().filter(|r| !r.is_empty());
    if let Some(a) = entry.audience.as_ref().filter(|a| !a.is_empty()) {
        a.clone_into(&mut out.audience);
    }
    if let Some(b) = entry.use_regional_sts {
        out.regional_sts = b;
    }
    if let Some(e) = entry.token_expiration.filter(|e| *e != 0) {
        out.token_expiration = e.max(MIN_TOKEN_EXPIRATION);
    }
}

/// `^arn:aws[a-z0-9-]*:iam::\d{12}:role\/[\w-\/.@+=,]+$`, checked by hand (a mismatch is only
/// logged, as in the real webhook).
fn looks_like_role_arn(s: &str) -> bool {
    let mut parts = s.splitn(6, ':');
    let (Some("arn"), Some(p), Some("iam"), Some(""), Some(acct), Some(res)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return false;
    };
    p.starts_with("aws")
        && p.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && acct.len() == 12
        && acct.bytes().all(|b| b.is_ascii_digit())
        && res.strip_prefix("role/").is_some_and(|n| {
            !n.is_empty()
                && n.chars()
                    .all(|c| c.is_alphanumeric() || "_-/.@+=,".contains(c))
        })
}

/// Everything [`mutate`] needs besides the pod.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// The service account as known to the webhook (`None` = not found).
    pub service_account: Option<&'a ServiceAccountInfo>,
    /// Whether a Pod Identity association exists for (cluster, namespace, service account).
    pub has_association: bool,
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_str()
}

/// The pod's service account name (the ServiceAccount admission plugin sets `default` before
/// mutating webhooks run; an empty one is treated the same way).
pub fn service_account_name(pod: &Value) -> &str {
    str_at(pod, &["spec", "serviceAccountName"])
        .filter(|s| !s.is_empty())
        .or_else(|| str_at(pod, &["spec", "serviceAccount"]).filter(|s| !s.is_empty()))
        .unwrap_or("default")
}

fn is_windows(pod: &Value) -> bool {
    ["kubernetes.io/os", "beta.kubernetes.io/os"]
        .iter()
        .any(|k| str_at(pod, &["spec", "nodeSelector", k]) == Some("windows"))
}

/// The `skip-containers` annotation: comma-separated names (first CSV record).
fn containers_to_skip(settings: &Settings, pod: &Value) -> Vec<String> {
    let key = settings.key("skip-containers");
    let Some(v) = pod
        .get("metadata")
        .and_then(|m| m.get("annotations"))
        .and_then(|a| a.get(&key))
        .and_then(Value::as_str)
    else {
        return Vec::new();
    };
    let first = v.lines().next().unwrap_or("");
    first
        .split(',')
        .map(|s| s.trim().trim_matches('"').to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

struct Plan<'a> {
    /// Identity env vars (both suppressed if either is present).
    identity: [(&'static str, String); 2],
    volume_name: &'a str,
    mount_path: &'a str,
    regional_sts: bool,
    region: Option<&'a str>,
    endpoint: Option<&'a str>,
}

fn env_names(container: &Value) -> Vec<&str> {
    container
        .get("env")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|e| e.get("name").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default()
}

fn env_var(name: &str, value: &str) -> Value {
    json!({"name": name, "value": value})
}

/// Mutates one container in place; returns whether it changed.
fn mutate_container(plan: &Plan<'_>, container: &mut Value) -> bool {
    let names: Vec<String> = env_names(container)
        .into_iter()
        .map(str::to_owned)
        .collect();
    let Some(obj) = container.as_object_mut() else {
        return false;
    };
    let has = |n: &str| names.iter().any(|x| x == n);
    let identity_present = plan.identity.iter().any(|(n, _)| has(n));
    let region_present = has(ENV_REGION) || has(ENV_DEFAULT_REGION);
    let regional_present = has(ENV_REGIONAL);
    if identity_present && region_present && regional_present {
        return false;
    }
    let mut add = Vec::new();
    if plan.regional_sts && !regional_present {
        add.push(env_var(ENV_REGIONAL, "regional"));
    }
    if let Some(r) = plan.region.filter(|_| !region_present) {
        add.push(env_var(ENV_DEFAULT_REGION, r));
        add.push(env_var(ENV_REGION, r));
    }
    if !identity_present {
        for (n, v) in &plan.identity {
            add.push(env_var(n, v));
        }
    }
    if let Some(url) = plan.endpoint {
        for n in [ENV_ENDPOINT_STS, ENV_ENDPOINT_EKS_AUTH] {
            if !has(n) {
                add.push(env_var(n, url));
            }
        }
    }
    let mut changed = false;
    if !add.is_empty() {
        changed = true;
        match obj.get_mut("env") {
            Some(Value::Array(a)) => a.extend(add),
            _ => {
                obj.insert("env".into(), Value::Array(add));
            }
        }
    }
    let mounted = obj
        .get("volumeMounts")
        .and_then(Value::as_array)
        .is_some_and(|a| {
            a.iter()
                .any(|m| m.get("name").and_then(Value::as_str) == Some(plan.volume_name))
        });
    if !mounted {
        changed = true;
        let mount =
            json!({"name": plan.volume_name, "readOnly": true, "mountPath": plan.mount_path});
        match obj.get_mut("volumeMounts") {
            Some(Value::Array(a)) => a.push(mount),
            _ => {
                obj.insert("volumeMounts".into(), Value::Array(vec![mount]));
            }
        }
    }
    changed
}

fn token_file_value(windows: bool, mount_path: &str, file: &str) -> String {
    let unix = format!("{}/{file}", mount_path.trim_end_matches('/'));
    if windows {
        format!("C:{}", unix.replace('/', "\\"))
    } else {
        unix
    }
}

/// Computes the mutation of `pod` (the `request.object` of a CREATE). The patch has the real
/// webhook's shape — `[label op (Pod Identity only)], [volume op], containers op, [initContainers
/// op]` — and is returned only when applying it would change the pod, so mutating an already
/// mutated pod gives no patch.
pub fn mutate(settings: &Settings, pod: &Value, inputs: Inputs<'_>) -> Outcome {
    let labels = pod.get("metadata").and_then(|m| m.get("labels"));
    if labels.and_then(|l| l.get(settings.skip_label())).is_some() {
        return Outcome::none();
    }
    let sa = resolve_sa(settings, inputs.service_account);
    let pod_annotations = pod.get("metadata").and_then(|m| m.get("annotations"));
    let mut expiration = pod_annotations
        .and_then(|a| a.get(settings.key("token-expiration")))
        .and_then(Value::as_str)
        .and_then(parse_expiration)
        .unwrap_or(sa.token_expiration);
    let windows = is_windows(pod);
    let (method, plan, audience, token_path) = if inputs.has_association {
        if expiration == DEFAULT_TOKEN_EXPIRATION {
            expiration = (settings.jitter)();
        }
        let file = token_file_value(windows, &settings.cc_mount_path, &settings.cc_token_path);
        (
            Method::PodIdentity,
            Plan {
                identity: [
                    (ENV_FULL_URI, settings.cc_full_uri.clone()),
                    (ENV_AUTH_TOKEN_FILE, file),
                ],
                volume_name: &settings.cc_volume_name,
                mount_path: &settings.cc_mount_path,
                regional_sts: sa.regional_sts,
                region: settings.default_region.as_deref(),
                endpoint: settings.inject_sts_endpoint.as_deref(),
            },
            settings.cc_audience.clone(),
            settings.cc_token_path.as_str(),
        )
    } else if let Some(role) = sa.role_arn.clone() {
        let file = token_file_value(windows, &settings.token_mount_path, IRSA_TOKEN_PATH);
        (
            Method::Irsa,
            Plan {
                identity: [(ENV_ROLE_ARN, role), (ENV_TOKEN_FILE, file)],
                volume_name: IRSA_VOLUME_NAME,
                mount_path: &settings.token_mount_path,
                regional_sts: sa.regional_sts,
                region: settings.default_region.as_deref(),
                endpoint: settings.inject_sts_endpoint.as_deref(),
            },
            sa.audience.clone(),
            IRSA_TOKEN_PATH,
        )
    } else {
        return Outcome::none();
    };

    let skip = containers_to_skip(settings, pod);
    let spec = pod.get("spec");
    let mut changed = false;
    let mut lists = Vec::new();
    for field in ["containers", "initContainers"] {
        let Some(list) = spec.and_then(|s| s.get(field)).and_then(Value::as_array) else {
            continue;
        };
        if field == "initContainers" && list.is_empty() {
            continue;
        }
        let mut out = list.clone();
        for c in &mut out {
            let name = c.get("name").and_then(Value::as_str).unwrap_or("");
            if skip.iter().any(|s| s == name) {
                continue;
            }
            changed |= mutate_container(&plan, c);
        }
        lists.push((field, out));
    }

    let mut ops = Vec::new();
    if method == Method::PodIdentity {
        match labels.and_then(Value::as_object) {
            Some(l) => {
                if l.get(POD_IDENTITY_LABEL).and_then(Value::as_str) != Some("enabled") {
                    changed = true;
                }
                ops.push(json!({"op": "add", "path": format!("/metadata/labels/{}", escape_pointer(POD_IDENTITY_LABEL)), "value": "enabled"}));
            }
            None => {
                changed = true;
                let mut m = Map::new();
                m.insert(POD_IDENTITY_LABEL.into(), Value::from("enabled"));
                ops.push(json!({"op": "add", "path": "/metadata/labels", "value": m}));
            }
        }
    }
    let volumes = spec
        .and_then(|s| s.get("volumes"))
        .and_then(Value::as_array);
    let has_volume = volumes.is_some_and(|v| {
        v.iter()
            .any(|v| v.get("name").and_then(Value::as_str) == Some(plan.volume_name))
    });
    if !has_volume {
        changed = true;
        let vol = json!({"name": plan.volume_name, "projected": {"sources": [{"serviceAccountToken": {
            "audience": audience, "expirationSeconds": expiration, "path": token_path}}]}});
        if volumes.is_some() {
            ops.push(json!({"op": "add", "path": "/spec/volumes/0", "value": vol}));
        } else {
            ops.push(json!({"op": "add", "path": "/spec/volumes", "value": [vol]}));
        }
    }
    if !changed {
        return Outcome::none();
    }
    for (field, list) in lists {
        ops.push(json!({"op": "add", "path": format!("/spec/{field}"), "value": list}));
    }
    Outcome {
        method,
        patch: Some(ops),
    }
}

/// RFC 6901 escaping of one reference token.
pub fn escape_pointer(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests;
