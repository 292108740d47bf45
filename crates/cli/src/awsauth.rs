//! `podiam serve --aws-auth CLUSTER=PATH`: a cluster's aws-auth ConfigMap, read from a YAML
//! file (the whole manifest, as `kubectl get configmap aws-auth -n kube-system -o yaml` prints
//! it, or just its `data`) and read again when the file changes.
//!
//! A file that cannot be read or parsed at start-up fails `serve`. Afterwards the file's
//! modification time and length are checked every [`POLL`]; a changed file is read again, and
//! a version that does not parse (or a file gone) keeps the last good mapping, with a warning
//! in the log and `podiam_aws_auth_reloads_total{result="error"}` counted. Reviews never read
//! the file: they use the mapping installed last.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};
use podiam_control::Control;
use podiam_control::access::{AwsAuth, AwsAuthCluster, MAX_AWS_AUTH_BYTES};

/// How often the files are checked for a change.
pub(crate) const POLL: Duration = Duration::from_secs(3);

/// Where a parsed aws-auth version goes.
pub(crate) trait Sink: Send + Sync + 'static {
    /// Install `map` for `cluster`.
    fn install(&self, cluster: &AwsAuthCluster, map: AwsAuth);
    /// A reload failed; the last good version stays.
    fn failed(&self);
}

impl Sink for Control {
    fn install(&self, cluster: &AwsAuthCluster, map: AwsAuth) {
        self.set_aws_auth(cluster, map);
    }
    fn failed(&self) {
        self.aws_auth_reload_failed();
    }
}

/// One `--aws-auth` source and what was last read from it.
#[derive(Debug)]
pub(crate) struct Watched {
    cluster: AwsAuthCluster,
    path: PathBuf,
    /// Modification time and length of the version last read (good or bad), so a bad version
    /// is reported once, not at every poll.
    stamp: Stamp,
}

type Stamp = (Option<SystemTime>, u64);

impl Watched {
    /// The cluster this source is for.
    pub(crate) fn cluster(&self) -> &AwsAuthCluster {
        &self.cluster
    }
}

/// Parse `CLUSTER=PATH` (CLUSTER: `NAME` or `ACCOUNT/NAME`).
fn parse_spec(spec: &str) -> anyhow::Result<(AwsAuthCluster, PathBuf)> {
    let Some((cluster, path)) = spec.split_once('=') else {
        bail!("--aws-auth {spec:?}: expected CLUSTER=PATH (CLUSTER is NAME or ACCOUNT/NAME)");
    };
    if path.is_empty() {
        bail!("--aws-auth {spec:?}: no path");
    }
    let cluster: AwsAuthCluster = cluster
        .parse()
        .map_err(|e| anyhow::anyhow!("--aws-auth {e}"))?;
    Ok((cluster, PathBuf::from(path)))
}

fn stamp(path: &Path) -> std::io::Result<Stamp> {
    let m = std::fs::metadata(path)?;
    Ok((m.modified().ok(), m.len()))
}

/// Read and parse one file, never more than [`MAX_AWS_AUTH_BYTES`] of it.
fn read(path: &Path) -> anyhow::Result<(Stamp, AwsAuth)> {
    let before = stamp(path).with_context(|| format!("reading {}", path.display()))?;
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| {
            f.take(u64::try_from(MAX_AWS_AUTH_BYTES).unwrap_or(u64::MAX) + 1)
                .read_to_string(&mut text)
        })
        .with_context(|| format!("reading {}", path.display()))?;
    let map = AwsAuth::parse(&text).with_context(|| format!("parsing {}", path.display()))?;
    Ok((before, map))
}

/// Read every `--aws-auth` source and install it: the first error fails start-up.
pub(crate) fn load(sink: &dyn Sink, specs: &[String]) -> anyhow::Result<Vec<Watched>> {
    let mut out: Vec<Watched> = vec![];
    for spec in specs {
        let (cluster, path) = parse_spec(spec)?;
        if out.iter().any(|w| w.cluster == cluster) {
            bail!("--aws-auth: cluster {cluster} is given twice");
        }
        let (stamp, map) = read(&path).with_context(|| format!("--aws-auth {cluster}"))?;
        log_loaded(&cluster, &path, &map);
        sink.install(&cluster, map);
        out.push(Watched {
            cluster,
            path,
            stamp,
        });
    }
    Ok(out)
}

fn log_loaded(cluster: &AwsAuthCluster, path: &Path, map: &AwsAuth) {
    for w in map.warnings() {
        tracing::warn!(cluster = %cluster, path = %path.display(), "aws-auth: {w}");
    }
    tracing::info!(cluster = %cluster, path = %path.display(), "aws-auth ConfigMap loaded");
}

/// Check one source and read it again if it changed. `true` if a new version was installed.
fn poll_once(sink: &dyn Sink, w: &mut Watched) -> bool {
    let now = match stamp(&w.path) {
        Ok(s) => s,
        Err(e) => {
            // Reported once per disappearance: the stamp of a missing file is (None, 0).
            if w.stamp != (None, 0) {
                w.stamp = (None, 0);
                tracing::warn!(cluster = %w.cluster, path = %w.path.display(), error = %e, "aws-auth: the file cannot be read; keeping the last good mapping");
                sink.failed();
            }
            return false;
        }
    };
    if now == w.stamp {
        return false;
    }
    match read(&w.path) {
        Ok((stamp, map)) => {
            w.stamp = stamp;
            log_loaded(&w.cluster, &w.path, &map);
            sink.install(&w.cluster, map);
            true
        }
        Err(e) => {
            w.stamp = now;
            tracing::warn!(cluster = %w.cluster, error = format!("{e:#}"), "aws-auth: the changed file was not accepted; keeping the last good mapping");
            sink.failed();
            false
        }
    }
}

/// Check the sources every [`POLL`], for as long as the server runs.
pub(crate) fn watch(control: Arc<Control>, mut watched: Vec<Watched>) {
    if watched.is_empty() {
        return;
    }
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            for w in &mut watched {
                poll_once(control.as_ref(), w);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )]
    use super::recorder::Recorder;
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("podiam-awsauth-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    const GOOD: &str =
        "mapRoles: |\n  - rolearn: arn:aws:iam::111122223333:role/ops\n    username: ops\n";
    const OTHER: &str = "mapAccounts: |\n  - '111122223333'\n";

    #[test]
    fn specs_name_a_cluster_and_a_path() {
        let (c, p) = parse_spec("111122223333/prod=/etc/aws-auth.yaml").unwrap();
        assert_eq!(
            (c.to_string(), p),
            (
                "111122223333/prod".into(),
                PathBuf::from("/etc/aws-auth.yaml")
            )
        );
        for bad in ["prod", "prod=", "=x", "bad name=x", "12/prod=x"] {
            assert!(parse_spec(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_bad_file_at_start_up_fails_with_the_cluster_and_the_path() {
        let d = dir("start");
        let bad = d.join("bad.yaml");
        std::fs::write(&bad, "mapRoles: |\n  - username: x\n").unwrap();
        let r = Recorder::default();
        let e = load(&r, &[format!("prod={}", bad.display())]).unwrap_err();
        let msg = format!("{e:#}");
        assert!(msg.contains("--aws-auth prod"), "{msg}");
        assert!(msg.contains(&bad.display().to_string()), "{msg}");
        assert!(msg.contains("no rolearn"), "{msg}");
        let e = load(&r, &[format!("prod={}", d.join("missing").display())]).unwrap_err();
        assert!(format!("{e:#}").contains("reading"), "{e:#}");
        let big = d.join("big.yaml");
        std::fs::write(&big, "#".repeat(MAX_AWS_AUTH_BYTES + 10)).unwrap();
        let e = load(&r, &[format!("prod={}", big.display())]).unwrap_err();
        assert!(format!("{e:#}").contains("larger than"), "{e:#}");
        let good = d.join("good.yaml");
        std::fs::write(&good, GOOD).unwrap();
        let spec = format!("prod={}", good.display());
        let e = load(&r, &[spec.clone(), spec]).unwrap_err();
        assert!(format!("{e:#}").contains("given twice"), "{e:#}");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_changed_file_is_read_again_and_a_bad_one_keeps_the_last_good() {
        let d = dir("reload");
        let path = d.join("aws-auth.yaml");
        std::fs::write(&path, GOOD).unwrap();
        let r = Recorder::default();
        let mut watched = load(&r, &[format!("prod={}", path.display())]).unwrap();
        let w = &mut watched[0];
        assert_eq!(r.installed.lock().unwrap().len(), 1);
        // Unchanged: nothing read.
        assert!(!poll_once(&r, w));

        std::fs::write(&path, OTHER).unwrap();
        assert!(poll_once(&r, w));
        let last = r.installed.lock().unwrap().last().unwrap().1.clone();
        assert_eq!(last, AwsAuth::parse(OTHER).unwrap());

        // A bad version is reported once and installs nothing.
        std::fs::write(&path, "mapRoles: [unclosed").unwrap();
        assert!(!poll_once(&r, w));
        assert!(!poll_once(&r, w));
        assert_eq!(*r.failures.lock().unwrap(), 1);
        assert_eq!(r.installed.lock().unwrap().len(), 2);

        // Gone: reported once.
        std::fs::remove_file(&path).unwrap();
        assert!(!poll_once(&r, w));
        assert!(!poll_once(&r, w));
        assert_eq!(*r.failures.lock().unwrap(), 2);

        std::fs::write(&path, GOOD).unwrap();
        assert!(poll_once(&r, w));
        assert_eq!(r.installed.lock().unwrap().len(), 3);
        std::fs::remove_dir_all(&d).unwrap();
    }
}

/// A sink that records what it was given, for tests.
#[cfg(test)]
pub(crate) mod recorder {
    #![allow(clippy::unwrap_used)]
    use std::sync::Mutex;

    use super::*;

    #[derive(Default)]
    pub(crate) struct Recorder {
        pub(crate) installed: Mutex<Vec<(String, AwsAuth)>>,
        pub(crate) failures: Mutex<usize>,
    }

    impl Sink for Recorder {
        fn install(&self, cluster: &AwsAuthCluster, map: AwsAuth) {
            self.installed
                .lock()
                .unwrap()
                .push((cluster.to_string(), map));
        }
        fn failed(&self) {
            *self.failures.lock().unwrap() += 1;
        }
    }
}
