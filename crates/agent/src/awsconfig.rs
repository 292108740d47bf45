//! The standard AWS configuration sources the agent honours: environment variables and the
//! shared `config`/`credentials` files (`AWS_PROFILE`, `AWS_CONFIG_FILE`,
//! `AWS_SHARED_CREDENTIALS_FILE`), for the region, the endpoints and the node credentials.

use std::collections::HashMap;
use std::path::PathBuf;

/// A snapshot of environment variables. The agent never reads the process environment
/// directly, so tests can run side by side with different settings.
#[derive(Clone, Default)]
pub struct Env {
    vars: HashMap<String, String>,
}

impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Values may be secrets (AWS_SECRET_ACCESS_KEY): names only.
        let mut names: Vec<&String> = self.vars.keys().collect();
        names.sort();
        f.debug_struct("Env").field("names", &names).finish()
    }
}

impl Env {
    /// The process environment (non-UTF-8 variables are skipped).
    pub fn from_process() -> Self {
        Self {
            vars: std::env::vars().collect(),
        }
    }

    /// An environment made of exactly these pairs.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// Set one variable.
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.vars.insert(key.into(), value.into());
    }

    /// A variable, if set and not empty.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.vars
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    fn home(&self) -> PathBuf {
        self.get("HOME")
            .map_or_else(|| PathBuf::from("."), PathBuf::from)
    }

    /// The selected profile (`AWS_PROFILE`, else `default`).
    pub fn profile_name(&self) -> &str {
        self.get("AWS_PROFILE").unwrap_or("default")
    }

    pub(crate) fn config_path(&self) -> PathBuf {
        self.get("AWS_CONFIG_FILE")
            .map_or_else(|| self.home().join(".aws/config"), PathBuf::from)
    }

    pub(crate) fn credentials_path(&self) -> PathBuf {
        self.get("AWS_SHARED_CREDENTIALS_FILE")
            .map_or_else(|| self.home().join(".aws/credentials"), PathBuf::from)
    }
}

type Ini = HashMap<String, HashMap<String, String>>;

/// Parses an INI file into section → key → value (keys lowercased). Missing file = empty.
fn read_ini(path: &PathBuf) -> Ini {
    let mut out: Ini = HashMap::new();
    let Ok(text) = std::fs::read_to_string(path) else {
        return out;
    };
    let mut section = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = s.split_whitespace().collect::<Vec<_>>().join(" ");
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            out.entry(section.clone())
                .or_default()
                .insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    out
}

/// The selected profile's settings, from both shared files.
#[derive(Default)]
pub(crate) struct Profile {
    /// From the credentials file (`[name]`).
    pub credentials: HashMap<String, String>,
    /// From the config file (`[profile name]`, or `[default]`).
    pub config: HashMap<String, String>,
    /// Whether either file has the profile at all.
    pub found: bool,
}

impl Profile {
    pub fn load(env: &Env) -> Self {
        let name = env.profile_name();
        let mut creds = read_ini(&env.credentials_path());
        let mut cfg = read_ini(&env.config_path());
        let credentials = creds.remove(name);
        let config = cfg.remove(&format!("profile {name}")).or_else(|| {
            if name == "default" {
                cfg.remove("default")
            } else {
                None
            }
        });
        Self {
            found: credentials.is_some() || config.is_some(),
            credentials: credentials.unwrap_or_default(),
            config: config.unwrap_or_default(),
        }
    }

    /// A key from the credentials file, else from the config file.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.credentials
            .get(key)
            .or_else(|| self.config.get(key))
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// The region: `flag` > `AWS_REGION` > `AWS_DEFAULT_REGION` > the profile's `region` >
/// `us-east-1`.
pub fn resolve_region(flag: Option<&str>, env: &Env) -> String {
    flag.filter(|r| !r.is_empty())
        .or_else(|| env.get("AWS_REGION"))
        .or_else(|| env.get("AWS_DEFAULT_REGION"))
        .map(str::to_owned)
        .or_else(|| {
            Profile::load(env)
                .config
                .get("region")
                .cloned()
                .filter(|r| !r.is_empty())
        })
        .unwrap_or_else(|| "us-east-1".to_owned())
}

/// A service's configured endpoint: `AWS_ENDPOINT_URL_<SERVICE>` > `AWS_ENDPOINT_URL` > the
/// profile's `endpoint_url`; `None` when nothing names one.
pub fn configured_endpoint(env: &Env, service_env: &str) -> Option<String> {
    env.get(&format!("AWS_ENDPOINT_URL_{service_env}"))
        .or_else(|| env.get("AWS_ENDPOINT_URL"))
        .map(str::to_owned)
        .or_else(|| Profile::load(env).get("endpoint_url").map(str::to_owned))
        .map(|u| u.trim_end_matches('/').to_owned())
}

/// The EKS Auth endpoint: `flag` > `AWS_ENDPOINT_URL_EKS_AUTH` > `AWS_ENDPOINT_URL` >
/// `https://eks-auth.<region>.api.aws` (`.api.amazonwebservices.com.cn` in China).
pub fn eks_auth_endpoint(flag: Option<&str>, env: &Env, region: &str) -> String {
    let url = flag
        .filter(|e| !e.is_empty())
        .or_else(|| env.get("AWS_ENDPOINT_URL_EKS_AUTH"))
        .or_else(|| env.get("AWS_ENDPOINT_URL"))
        .map(str::to_owned)
        .unwrap_or_else(|| {
            if region.starts_with("cn-") {
                format!("https://eks-auth.{region}.api.amazonwebservices.com.cn")
            } else {
                format!("https://eks-auth.{region}.api.aws")
            }
        });
    url.trim_end_matches('/').to_owned()
}

/// The STS endpoint for web identity: `AWS_ENDPOINT_URL_STS` > `AWS_ENDPOINT_URL` >
/// `https://sts.<region>.amazonaws.com` (`.com.cn` in China).
pub fn sts_endpoint(env: &Env, region: &str) -> String {
    let url = env
        .get("AWS_ENDPOINT_URL_STS")
        .or_else(|| env.get("AWS_ENDPOINT_URL"))
        .map(str::to_owned)
        .unwrap_or_else(|| {
            if region.starts_with("cn-") {
                format!("https://sts.{region}.amazonaws.com.cn")
            } else {
                format!("https://sts.{region}.amazonaws.com")
            }
        });
    url.trim_end_matches('/').to_owned()
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_and_region() {
        let env = Env::from_pairs([("HOME", "/nonexistent")]);
        assert_eq!(resolve_region(None, &env), "us-east-1");
        assert_eq!(
            eks_auth_endpoint(None, &env, "eu-west-1"),
            "https://eks-auth.eu-west-1.api.aws"
        );
        assert_eq!(
            sts_endpoint(&env, "eu-west-1"),
            "https://sts.eu-west-1.amazonaws.com"
        );
        let env = Env::from_pairs([
            ("AWS_DEFAULT_REGION", "ap-south-1"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:1/"),
            ("AWS_ENDPOINT_URL_EKS_AUTH", "http://127.0.0.1:2"),
        ]);
        assert_eq!(resolve_region(None, &env), "ap-south-1");
        assert_eq!(resolve_region(Some("x-1"), &env), "x-1");
        assert_eq!(eks_auth_endpoint(None, &env, "r"), "http://127.0.0.1:2");
        assert_eq!(
            eks_auth_endpoint(Some("http://h:3/"), &env, "r"),
            "http://h:3"
        );
        assert_eq!(sts_endpoint(&env, "r"), "http://127.0.0.1:1");
        assert!(!format!("{env:?}").contains("127.0.0.1"));
    }
}
