//! The standard AWS configuration sources: environment variables and the shared
//! `config`/`credentials` files (`AWS_PROFILE`, `AWS_CONFIG_FILE`,
//! `AWS_SHARED_CREDENTIALS_FILE`), for the region, the endpoints, the trust store and the
//! credentials. It reads files but never the process environment (see [`Env`]).

use std::collections::HashMap;
use std::path::PathBuf;

/// A snapshot of environment variables. Nothing in podiam's clients reads the process
/// environment directly, so tests can run side by side with different settings.
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

    /// The shared config file (`AWS_CONFIG_FILE`, else `~/.aws/config`).
    pub fn config_path(&self) -> PathBuf {
        self.get("AWS_CONFIG_FILE")
            .map_or_else(|| self.home().join(".aws/config"), PathBuf::from)
    }

    /// The shared credentials file (`AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/credentials`).
    pub fn credentials_path(&self) -> PathBuf {
        self.get("AWS_SHARED_CREDENTIALS_FILE")
            .map_or_else(|| self.home().join(".aws/credentials"), PathBuf::from)
    }
}

type Ini = HashMap<String, HashMap<String, String>>;

/// Parses an INI file into section → key → value (keys lowercased). Missing file = empty.
///
/// A key with an empty value followed by indented `key = value` lines holds sub-properties
/// (the `services` sections' `eks =` / `  endpoint_url = ...`); they are stored as
/// `parent.key`.
fn read_ini(path: &PathBuf) -> Ini {
    let mut out: Ini = HashMap::new();
    let Ok(text) = std::fs::read_to_string(path) else {
        return out;
    };
    let mut section = String::new();
    let mut parent: Option<String> = None;
    for raw in text.lines() {
        let indented = raw.starts_with([' ', '\t']);
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = s.split_whitespace().collect::<Vec<_>>().join(" ");
            parent = None;
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_owned());
            let key = match &parent {
                Some(p) if indented => format!("{p}.{k}"),
                _ => {
                    parent = v.is_empty().then(|| k.clone());
                    k
                }
            };
            out.entry(section.clone()).or_default().insert(key, v);
        }
    }
    out
}

/// The selected profile's settings, from both shared files.
#[derive(Debug, Default)]
pub struct Profile {
    /// From the credentials file (`[name]`).
    pub credentials: HashMap<String, String>,
    /// From the config file (`[profile name]`, or `[default]`).
    pub config: HashMap<String, String>,
    /// The `[services name]` section the profile's `services` key names, sub-properties as
    /// `service.key` (`eks.endpoint_url`).
    pub services: HashMap<String, String>,
    /// Whether either file has the profile at all.
    pub found: bool,
}

impl Profile {
    /// The profile `env` selects, read from the shared files now.
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
        let services = config
            .as_ref()
            .and_then(|c| c.get("services"))
            .and_then(|name| cfg.remove(&format!("services {name}")))
            .unwrap_or_default();
        Self {
            found: credentials.is_some() || config.is_some(),
            credentials: credentials.unwrap_or_default(),
            config: config.unwrap_or_default(),
            services,
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
    fn region_precedence() {
        let env = Env::from_pairs([("HOME", "/nonexistent")]);
        assert_eq!(resolve_region(None, &env), "us-east-1");
        let env = Env::from_pairs([
            ("AWS_DEFAULT_REGION", "ap-south-1"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:1/"),
        ]);
        assert_eq!(resolve_region(None, &env), "ap-south-1");
        assert_eq!(resolve_region(Some("x-1"), &env), "x-1");
        assert!(!format!("{env:?}").contains("127.0.0.1"));
    }

    #[test]
    fn sub_properties_and_services_sections() {
        let dir = std::env::temp_dir().join(format!("podiam-awsclient-ini-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("config");
        std::fs::write(
            &config,
            "[profile p]\nregion = eu-west-1\nservices = local\ns3 =\n  addressing_style = path\nca_bundle = /x.pem\n\
             [services local]\neks =\n  endpoint_url = http://eks:1\n\teks_region = r\nsts =\n  endpoint_url = http://sts:2\n\
             [services other]\neks =\n  endpoint_url = http://other:3\n",
        )
        .unwrap();
        let env = Env::from_pairs([
            ("AWS_CONFIG_FILE", config.to_str().unwrap()),
            ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent"),
            ("AWS_PROFILE", "p"),
        ]);
        let p = Profile::load(&env);
        assert!(p.found);
        assert_eq!(p.get("region"), Some("eu-west-1"));
        // A sub-property does not leak into the profile's own keys.
        assert_eq!(p.get("addressing_style"), None);
        assert_eq!(p.get("s3.addressing_style"), Some("path"));
        assert_eq!(p.get("ca_bundle"), Some("/x.pem"));
        let mut services: Vec<_> = p.services.iter().collect();
        services.sort();
        assert_eq!(
            services,
            [
                (&"eks".to_owned(), &String::new()),
                (&"eks.eks_region".to_owned(), &"r".to_owned()),
                (&"eks.endpoint_url".to_owned(), &"http://eks:1".to_owned()),
                (&"sts".to_owned(), &String::new()),
                (&"sts.endpoint_url".to_owned(), &"http://sts:2".to_owned()),
            ]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
