//! `podiam serve --aws-auth-kubeconfig CLUSTER=KUBECONFIG`: a cluster's aws-auth ConfigMap
//! watched in the cluster itself (`kube-system/aws-auth`, through the kubeconfig's API server
//! and credentials, which need `get`, `list` and `watch` on ConfigMaps in kube-system).
//!
//! A kubeconfig that cannot be read fails start-up; the API server is not waited for: until
//! the first list arrives the cluster has no ConfigMap (its tokens are refused). Then every
//! change is installed as it comes; a version that does not parse keeps the last good mapping
//! (a warning, and `podiam_aws_auth_reloads_total{result="error"}`); a deleted ConfigMap, or
//! none at all, is an empty mapping, as the authenticator resets on delete. A lost watch is
//! retried with backoff, keeping the mapping it had.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::bail;
use futures_util::StreamExt as _;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::runtime::WatchStreamExt as _;
use kube::runtime::watcher::{self, Event};
use podiam_control::Control;
use podiam_control::access::{AwsAuth, AwsAuthCluster};

use crate::awsauth::Sink;

const NAMESPACE: &str = "kube-system";
const NAME: &str = "aws-auth";

/// One watched cluster and its client.
pub(crate) struct Connected {
    cluster: AwsAuthCluster,
    client: kube::Client,
}

/// Parse every `CLUSTER=KUBECONFIG` and make its client; `taken` are the clusters with a file
/// source (one source per cluster).
pub(crate) async fn connect(
    specs: &[String],
    taken: &[&AwsAuthCluster],
) -> anyhow::Result<Vec<Connected>> {
    let mut out: Vec<Connected> = vec![];
    for spec in specs {
        let Some((cluster, path)) = spec.split_once('=').filter(|(_, p)| !p.is_empty()) else {
            bail!(
                "--aws-auth-kubeconfig {spec:?}: expected CLUSTER=KUBECONFIG (CLUSTER is NAME or ACCOUNT/NAME)"
            );
        };
        let cluster: AwsAuthCluster = cluster
            .parse()
            .map_err(|e| anyhow::anyhow!("--aws-auth-kubeconfig {e}"))?;
        if taken.contains(&&cluster) || out.iter().any(|c| c.cluster == cluster) {
            bail!(
                "cluster {cluster} has more than one aws-auth source (--aws-auth, --aws-auth-kubeconfig)"
            );
        }
        let path = PathBuf::from(path);
        let client = podiam_webhook::kubernetes::client(Some(&path))
            .await
            .map_err(|e| anyhow::anyhow!("--aws-auth-kubeconfig {cluster}: {e}"))?;
        out.push(Connected { cluster, client });
    }
    Ok(out)
}

/// Watch each cluster's ConfigMap for as long as the server runs.
pub(crate) fn watch(control: Arc<Control>, connected: Vec<Connected>) {
    for Connected { cluster, client } in connected {
        let control = Arc::clone(&control);
        tokio::spawn(async move {
            let api: Api<ConfigMap> = Api::namespaced(client, NAMESPACE);
            let config = watcher::Config::default().fields(&format!("metadata.name={NAME}"));
            let stream = watcher::watcher(api, config).default_backoff();
            let mut stream = std::pin::pin!(stream);
            let mut follower = Follower::new(cluster);
            while let Some(item) = stream.next().await {
                match item {
                    Ok(event) => follower.on(control.as_ref(), event),
                    Err(e) => tracing::warn!(
                        cluster = %follower.cluster,
                        error = %e,
                        "aws-auth: watching the ConfigMap failed; retrying, keeping the last good mapping"
                    ),
                }
            }
        });
    }
}

/// What the watch of one cluster has seen.
struct Follower {
    cluster: AwsAuthCluster,
    /// Whether the list under way (re)started by the watcher has shown the ConfigMap.
    listed: bool,
}

impl Follower {
    fn new(cluster: AwsAuthCluster) -> Self {
        Self {
            cluster,
            listed: false,
        }
    }

    fn on(&mut self, sink: &dyn Sink, event: Event<ConfigMap>) {
        match event {
            Event::Init => self.listed = false,
            Event::InitApply(cm) => {
                self.listed = true;
                self.apply(sink, &cm);
            }
            Event::InitDone => {
                if !self.listed {
                    tracing::warn!(cluster = %self.cluster, "aws-auth: the cluster has no kube-system/aws-auth ConfigMap");
                    sink.install(&self.cluster, AwsAuth::default());
                }
            }
            Event::Apply(cm) => self.apply(sink, &cm),
            Event::Delete(cm) if is_aws_auth(&cm) => {
                tracing::warn!(cluster = %self.cluster, "aws-auth: the ConfigMap was deleted");
                sink.install(&self.cluster, AwsAuth::default());
            }
            Event::Delete(_) => {}
        }
    }

    fn apply(&self, sink: &dyn Sink, cm: &ConfigMap) {
        if !is_aws_auth(cm) {
            return;
        }
        let data = cm.data.clone().unwrap_or_default();
        match AwsAuth::from_data(&data) {
            Ok(map) => {
                for w in map.warnings() {
                    tracing::warn!(cluster = %self.cluster, "aws-auth: {w}");
                }
                tracing::info!(cluster = %self.cluster, "aws-auth ConfigMap loaded from the cluster");
                sink.install(&self.cluster, map);
            }
            Err(e) => {
                tracing::warn!(cluster = %self.cluster, error = %e, "aws-auth: the ConfigMap was not accepted; keeping the last good mapping");
                sink.failed();
            }
        }
    }
}

fn is_aws_auth(cm: &ConfigMap) -> bool {
    cm.metadata.name.as_deref() == Some(NAME)
        && cm
            .metadata
            .namespace
            .as_deref()
            .is_none_or(|n| n == NAMESPACE)
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )]
    use std::collections::BTreeMap;

    use super::*;
    use crate::awsauth::recorder::Recorder;

    fn cm(name: &str, roles: &str) -> ConfigMap {
        let mut c = ConfigMap::default();
        c.metadata.name = Some(name.into());
        c.metadata.namespace = Some(NAMESPACE.into());
        c.data = Some(BTreeMap::from([("mapRoles".to_owned(), roles.to_owned())]));
        c
    }

    const GOOD: &str = "- rolearn: arn:aws:iam::111122223333:role/ops\n  username: ops\n";

    #[test]
    fn events_install_parse_failures_keep_and_absence_empties() {
        let r = Recorder::default();
        let mut f = Follower::new("prod".parse().unwrap());
        // A list that finds no ConfigMap: empty.
        f.on(&r, Event::Init);
        f.on(&r, Event::InitDone);
        assert_eq!(
            r.installed.lock().unwrap().last().unwrap().1,
            AwsAuth::default()
        );
        // A list that finds it.
        f.on(&r, Event::Init);
        f.on(&r, Event::InitApply(cm(NAME, GOOD)));
        f.on(&r, Event::InitDone);
        let good = AwsAuth::from_data(&cm(NAME, GOOD).data.unwrap()).unwrap();
        assert_eq!(r.installed.lock().unwrap().len(), 2);
        assert_eq!(r.installed.lock().unwrap().last().unwrap().1, good);
        // A bad edit: nothing installed, one failure.
        f.on(&r, Event::Apply(cm(NAME, "- username: x\n")));
        assert_eq!(r.installed.lock().unwrap().len(), 2);
        assert_eq!(*r.failures.lock().unwrap(), 1);
        // Another ConfigMap is ignored.
        f.on(&r, Event::Apply(cm("other", GOOD)));
        f.on(&r, Event::Delete(cm("other", GOOD)));
        assert_eq!(r.installed.lock().unwrap().len(), 2);
        // Deleted: empty.
        f.on(&r, Event::Delete(cm(NAME, GOOD)));
        assert_eq!(
            r.installed.lock().unwrap().last().unwrap().1,
            AwsAuth::default()
        );
        assert_eq!(r.installed.lock().unwrap()[0].0, "prod");
    }

    #[tokio::test]
    async fn specs_and_kubeconfigs_are_checked_before_serving() {
        let taken: AwsAuthCluster = "prod".parse().unwrap();
        for (spec, why) in [
            ("prod", "expected CLUSTER=KUBECONFIG"),
            ("prod=", "expected CLUSTER=KUBECONFIG"),
            ("bad name=x", "not a valid cluster name"),
            ("prod=/nonexistent", "more than one aws-auth source"),
            ("dev=/nonexistent/kubeconfig", "/nonexistent/kubeconfig"),
        ] {
            let e = connect(&[spec.to_owned()], &[&taken])
                .await
                .err()
                .unwrap_or_else(|| panic!("{spec}: accepted"));
            assert!(format!("{e:#}").contains(why), "{spec}: {e:#}");
        }
    }
}
