//! A service's endpoint URL, by the AWS SDKs' rules for configured endpoints
//! (<https://docs.aws.amazon.com/sdkref/latest/guide/feature-ss-endpoints.html>):
//!
//! 1. an explicit URL (a command-line flag) always wins;
//! 2. unless `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS` (else the profile's
//!    `ignore_configured_endpoint_urls`) is true: `AWS_ENDPOINT_URL_<SERVICE>`, then
//!    `AWS_ENDPOINT_URL`, then the `endpoint_url` of the service's subsection in the
//!    profile's `services` section, then the profile's own `endpoint_url`;
//! 3. the service's default for the region.
//!
//! The order of 2 is botocore's and aws-config's (`EndpointConfigProvider`,
//! `endpoint_url::endpoint_url_provider`): environment before files, service before global.

use crate::config::{Env, Profile};

/// The AWS services podiam's clients call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// STS (`sts`).
    Sts,
    /// IAM (`iam`).
    Iam,
    /// EKS (`eks`).
    Eks,
    /// EKS Auth (`eks-auth`).
    EksAuth,
    /// CloudTrail (`cloudtrail`): `LookupEvents` over podiam's audit trail.
    CloudTrail,
}

impl Service {
    /// The suffix of its `AWS_ENDPOINT_URL_<SERVICE>` variable.
    pub fn env_suffix(self) -> &'static str {
        match self {
            Self::Sts => "STS",
            Self::Iam => "IAM",
            Self::Eks => "EKS",
            Self::EksAuth => "EKS_AUTH",
            Self::CloudTrail => "CLOUDTRAIL",
        }
    }

    /// Its key in a `services` section of the shared config file.
    pub fn config_key(self) -> &'static str {
        match self {
            Self::Sts => "sts",
            Self::Iam => "iam",
            Self::Eks => "eks",
            Self::EksAuth => "eks_auth",
            Self::CloudTrail => "cloudtrail",
        }
    }

    /// Its SigV4 signing name.
    pub fn signing_name(self) -> &'static str {
        match self {
            Self::Sts => "sts",
            Self::Iam => "iam",
            Self::Eks => "eks",
            Self::EksAuth => "eks-auth",
            Self::CloudTrail => "cloudtrail",
        }
    }

    /// Its AWS endpoint in `region` (China regions have their own domains).
    pub fn default_endpoint(self, region: &str) -> String {
        let china = region.starts_with("cn-");
        match (self, china) {
            (Self::Sts, false) => format!("https://sts.{region}.amazonaws.com"),
            (Self::Sts, true) => format!("https://sts.{region}.amazonaws.com.cn"),
            (Self::Iam, false) => "https://iam.amazonaws.com".to_owned(),
            (Self::Iam, true) => "https://iam.cn-north-1.amazonaws.com.cn".to_owned(),
            (Self::Eks, false) => format!("https://eks.{region}.amazonaws.com"),
            (Self::Eks, true) => format!("https://eks.{region}.amazonaws.com.cn"),
            (Self::EksAuth, false) => format!("https://eks-auth.{region}.api.aws"),
            (Self::EksAuth, true) => {
                format!("https://eks-auth.{region}.api.amazonwebservices.com.cn")
            }
            (Self::CloudTrail, false) => format!("https://cloudtrail.{region}.amazonaws.com"),
            (Self::CloudTrail, true) => format!("https://cloudtrail.{region}.amazonaws.com.cn"),
        }
    }
}

/// The endpoint of `service`: `flag` > the configured endpoint ([`configured_endpoint`]) >
/// the default for `region`. No trailing `/`.
pub fn resolve_endpoint(flag: Option<&str>, env: &Env, service: Service, region: &str) -> String {
    let url = flag
        .filter(|f| !f.is_empty())
        .map(str::to_owned)
        .or_else(|| configured_endpoint(env, service))
        .unwrap_or_else(|| service.default_endpoint(region));
    url.trim_end_matches('/').to_owned()
}

/// The endpoint the environment and the selected profile configure for `service`, in the
/// SDKs' order (see the module); `None` when none does, or when configured endpoints are
/// ignored. No trailing `/`.
pub fn configured_endpoint(env: &Env, service: Service) -> Option<String> {
    let profile = Profile::load(env);
    let ignore = env
        .get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
        .or_else(|| profile.get("ignore_configured_endpoint_urls"))
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    if ignore {
        return None;
    }
    let from_services = format!("{}.endpoint_url", service.config_key());
    env.get(&format!("AWS_ENDPOINT_URL_{}", service.env_suffix()))
        .or_else(|| env.get("AWS_ENDPOINT_URL"))
        .or_else(|| {
            profile
                .services
                .get(&from_services)
                .map(String::as_str)
                .filter(|v| !v.is_empty())
        })
        .or_else(|| profile.get("endpoint_url"))
        .map(|u| u.trim_end_matches('/').to_owned())
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
    fn defaults_and_flags() {
        let env = Env::from_pairs([("HOME", "/nonexistent")]);
        let r = |s, region| resolve_endpoint(None, &env, s, region);
        assert_eq!(
            r(Service::EksAuth, "eu-west-1"),
            "https://eks-auth.eu-west-1.api.aws"
        );
        assert_eq!(
            r(Service::EksAuth, "cn-north-1"),
            "https://eks-auth.cn-north-1.api.amazonwebservices.com.cn"
        );
        assert_eq!(
            r(Service::Sts, "eu-west-1"),
            "https://sts.eu-west-1.amazonaws.com"
        );
        assert_eq!(
            r(Service::Sts, "cn-northwest-1"),
            "https://sts.cn-northwest-1.amazonaws.com.cn"
        );
        assert_eq!(
            r(Service::Eks, "us-east-2"),
            "https://eks.us-east-2.amazonaws.com"
        );
        assert_eq!(r(Service::Iam, "us-east-2"), "https://iam.amazonaws.com");
        assert_eq!(configured_endpoint(&env, Service::Eks), None);
        let env = Env::from_pairs([
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:1/"),
            ("AWS_ENDPOINT_URL_EKS_AUTH", "http://127.0.0.1:2"),
            ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true"),
        ]);
        // An explicit endpoint wins even when configured ones are ignored.
        assert_eq!(
            resolve_endpoint(Some("http://h:3/"), &env, Service::EksAuth, "r"),
            "http://h:3"
        );
    }

    struct Files {
        dir: std::path::PathBuf,
    }

    impl Files {
        fn new(name: &str, config: &str) -> Self {
            let dir = std::env::temp_dir().join(format!(
                "podiam-awsclient-endpoint-{name}-{}",
                std::process::id()
            ));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("config"), config).unwrap();
            Self { dir }
        }

        fn env(&self, extra: &[(&str, &str)]) -> Env {
            let mut env = Env::from_pairs([
                ("AWS_CONFIG_FILE", self.dir.join("config").to_str().unwrap()),
                ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent"),
                ("AWS_PROFILE", "p"),
            ]);
            for (k, v) in extra {
                env.set(*k, *v);
            }
            env
        }
    }

    impl Drop for Files {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    const CONFIG: &str = "[profile p]\nendpoint_url = http://profile-global:1/\nservices = s\n\
        [services s]\neks =\n  endpoint_url = http://profile-eks:2\neks_auth =\n  endpoint_url = http://profile-eks-auth:3\n";

    #[test]
    fn precedence() {
        let files = Files::new("precedence", CONFIG);
        let all = [
            ("AWS_ENDPOINT_URL_EKS", "http://env-eks:4"),
            ("AWS_ENDPOINT_URL", "http://env-global:5"),
        ];
        let eks = |extra: &[(&str, &str)]| {
            resolve_endpoint(None, &files.env(extra), Service::Eks, "us-east-1")
        };
        // AWS_ENDPOINT_URL_<SERVICE> first.
        assert_eq!(eks(&all), "http://env-eks:4");
        // Then AWS_ENDPOINT_URL.
        assert_eq!(eks(&all[1..]), "http://env-global:5");
        // Then the profile's services section.
        assert_eq!(eks(&[]), "http://profile-eks:2");
        assert_eq!(
            resolve_endpoint(None, &files.env(&[]), Service::EksAuth, "r"),
            "http://profile-eks-auth:3"
        );
        // Then the profile's endpoint_url (no `sts` subsection).
        assert_eq!(
            resolve_endpoint(None, &files.env(&[]), Service::Sts, "r"),
            "http://profile-global:1"
        );
        // Another service's variable does not apply.
        assert_eq!(
            resolve_endpoint(
                None,
                &files.env(&[("AWS_ENDPOINT_URL_STS", "http://x:6")]),
                Service::Iam,
                "r"
            ),
            "http://profile-global:1"
        );
        // Then the default.
        let bare = Files::new("bare", "[profile p]\nregion = eu-west-1\n");
        assert_eq!(
            resolve_endpoint(None, &bare.env(&[]), Service::Eks, "eu-west-1"),
            "https://eks.eu-west-1.amazonaws.com"
        );
        // The profile's own endpoint_url applies to every service without a subsection.
        let global = Files::new("global", "[profile p]\nendpoint_url = http://g:7\n");
        assert_eq!(
            configured_endpoint(&global.env(&[]), Service::EksAuth).as_deref(),
            Some("http://g:7")
        );
    }

    #[test]
    fn ignore_switch() {
        let files = Files::new("ignore", CONFIG);
        let set = [
            ("AWS_ENDPOINT_URL_EKS", "http://env-eks:4"),
            ("AWS_ENDPOINT_URL", "http://env-global:5"),
        ];
        for on in ["true", "TRUE", " True "] {
            let env = files.env(&[set[0], set[1], ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", on)]);
            assert_eq!(configured_endpoint(&env, Service::Eks), None, "{on:?}");
            assert_eq!(
                resolve_endpoint(None, &env, Service::Eks, "eu-west-1"),
                "https://eks.eu-west-1.amazonaws.com"
            );
        }
        let env = files.env(&[set[0], ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "false")]);
        assert_eq!(
            resolve_endpoint(None, &env, Service::Eks, "r"),
            "http://env-eks:4"
        );
        // The profile's switch, overridden by the environment's.
        let ignoring = Files::new(
            "ignoring",
            "[profile p]\nendpoint_url = http://g:7\nignore_configured_endpoint_urls = true\n",
        );
        assert_eq!(configured_endpoint(&ignoring.env(&set), Service::Eks), None);
        assert_eq!(
            configured_endpoint(
                &ignoring.env(&[("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "false")]),
                Service::Eks
            )
            .as_deref(),
            Some("http://g:7")
        );
    }
}
