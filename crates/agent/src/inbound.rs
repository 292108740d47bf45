//! Inbound admission on the credentials listener: which bucket a request is charged to.
//!
//! A request is charged by what the agent knows about its token (by the token's SHA-256):
//! - a token the agent has **verified** (its signature checked against the cluster's keys, or
//!   accepted by EKS Auth) is charged to its pod's bucket, keyed by the token's (namespace,
//!   service account, pod uid): every token of one pod shares it;
//! - a token already **refused** (bad signature, issuer, audience or pod binding; EKS Auth said
//!   `InvalidTokenException`/`ExpiredTokenException`) is answered from memory and charged to no
//!   bucket: that answer costs no more than a 429 would, and charging it to a shared bucket
//!   would let one bad token starve the others;
//! - any other token shares the one **unverified** bucket (the caller charges it only once the
//!   token has passed the cheap local checks, so unparseable garbage drains nothing).
//!
//! The per-pod (or unverified) charge comes before the global ceiling: a pod flooding the
//! agent is cut at its own rate and never drains the ceiling the other pods need.
//!
//! Memory is bounded: buckets exist only for verified pods, and each of the three maps (pod
//! buckets, verified tokens, refused tokens) holds at most `capacity` entries. A full pod map
//! first drops the buckets no token refers to any more and that are full (a full bucket
//! behaves like a new one); a pod that still finds no room shares one overflow bucket with the
//! per-pod rate, so eviction never loosens a limit. Full token maps forget expired entries,
//! then an eighth of the rest: forgetting a token only costs its re-verification.
//! This module never touches the credential cache.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;

use crate::eksauth::UpstreamError;
use podiam_awsclient::TokenBucket;

/// SHA-256 of a token.
pub(crate) type TokenKey = [u8; 32];
/// [`crate::token::PodIdentity::key`] of a verified pod.
pub(crate) type PodKey = [u8; 32];

/// A rate and a burst.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Rate {
    pub per_second: f64,
    pub burst: u32,
}

impl Rate {
    /// `None` when `per_second` is 0 (no limit).
    pub fn new(per_second: u32, burst: u32) -> Option<Self> {
        (per_second > 0).then(|| Self {
            per_second: f64::from(per_second),
            burst: burst.max(1),
        })
    }

    fn bucket(self) -> TokenBucket {
        TokenBucket::new(self.per_second, self.burst)
    }
}

/// What the agent knows about a token.
pub(crate) enum Class {
    /// Verified: charge this pod bucket (if per-pod limits are on), then the global ceiling.
    Verified(Option<Arc<TokenBucket>>),
    /// Refused earlier: answer this again.
    Refused(Arc<UpstreamError>),
    /// Not known.
    Unverified,
}

struct Remembered<T> {
    until_ms: i64,
    value: T,
}

/// The inbound limiter.
pub(crate) struct Inbound {
    global: Option<TokenBucket>,
    unverified: Option<TokenBucket>,
    pod_rate: Option<Rate>,
    /// Shared by verified pods that found the pod map full.
    overflow: Option<Arc<TokenBucket>>,
    capacity: usize,
    pods: RwLock<HashMap<PodKey, Arc<TokenBucket>>>,
    verified: RwLock<HashMap<TokenKey, Remembered<Option<Arc<TokenBucket>>>>>,
    refused: RwLock<HashMap<TokenKey, Remembered<Arc<UpstreamError>>>>,
}

impl Inbound {
    pub fn new(
        global: Option<Rate>,
        unverified: Option<Rate>,
        pod: Option<Rate>,
        capacity: usize,
    ) -> Self {
        let capacity = capacity.max(1);
        Self {
            global: global.map(Rate::bucket),
            unverified: unverified.map(Rate::bucket),
            pod_rate: pod,
            overflow: pod.map(|r| Arc::new(r.bucket())),
            capacity,
            pods: RwLock::new(HashMap::new()),
            verified: RwLock::new(HashMap::new()),
            refused: RwLock::new(HashMap::new()),
        }
    }

    /// What is known about the token whose SHA-256 is `key`, at `now_ms`.
    pub fn classify(&self, key: &TokenKey, now_ms: i64) -> Class {
        if let Some(r) = self.verified.read().get(key)
            && r.until_ms > now_ms
        {
            return Class::Verified(r.value.clone());
        }
        if let Some(r) = self.refused.read().get(key)
            && r.until_ms > now_ms
        {
            return Class::Refused(Arc::clone(&r.value));
        }
        Class::Unverified
    }

    /// Charges a verified token's pod bucket, then the global ceiling.
    pub fn admit_verified(&self, pod: Option<&TokenBucket>) -> bool {
        pod.is_none_or(TokenBucket::try_acquire) && self.admit_global()
    }

    /// Charges the shared unverified bucket, then the global ceiling.
    pub fn admit_unverified(&self) -> bool {
        self.unverified
            .as_ref()
            .is_none_or(TokenBucket::try_acquire)
            && self.admit_global()
    }

    fn admit_global(&self) -> bool {
        self.global.as_ref().is_none_or(TokenBucket::try_acquire)
    }

    /// Remembers the token `key` as verified for pod `pod` until `until_ms`.
    pub fn remember_verified(&self, key: TokenKey, pod: PodKey, until_ms: i64, now_ms: i64) {
        let bucket = self.pod_bucket(pod);
        let mut map = self.verified.write();
        make_room(&mut map, self.capacity, now_ms, &key);
        map.insert(
            key,
            Remembered {
                until_ms,
                value: bucket,
            },
        );
    }

    /// Remembers the refusal of the token `key` until `until_ms`.
    pub fn remember_refused(
        &self,
        key: TokenKey,
        err: Arc<UpstreamError>,
        until_ms: i64,
        now_ms: i64,
    ) {
        let mut map = self.refused.write();
        make_room(&mut map, self.capacity, now_ms, &key);
        map.insert(
            key,
            Remembered {
                until_ms,
                value: err,
            },
        );
    }

    fn pod_bucket(&self, pod: PodKey) -> Option<Arc<TokenBucket>> {
        let rate = self.pod_rate?;
        if let Some(b) = self.pods.read().get(&pod) {
            return Some(Arc::clone(b));
        }
        let mut pods = self.pods.write();
        if let Some(b) = pods.get(&pod) {
            return Some(Arc::clone(b));
        }
        if pods.len() >= self.capacity {
            // INVARIANT: a dropped bucket is referred to by no remembered token and is full,
            // so a new bucket for the same pod grants nothing the old one would not have.
            pods.retain(|_, b| Arc::strong_count(b) > 1 || !b.is_full());
        }
        if pods.len() >= self.capacity {
            return self.overflow.clone();
        }
        let b = Arc::new(rate.bucket());
        pods.insert(pod, Arc::clone(&b));
        Some(b)
    }

    /// Pod buckets held.
    pub fn pod_buckets(&self) -> usize {
        self.pods.read().len()
    }

    /// Verified tokens remembered.
    pub fn verified_tokens(&self) -> usize {
        self.verified.read().len()
    }

    /// Refused tokens remembered.
    pub fn refused_tokens(&self) -> usize {
        self.refused.read().len()
    }
}

/// Makes room for one more entry (unless `key` is already there): expired entries go first,
/// then an eighth of the others (in the map's random order, so at amortised O(1) a flood of
/// new tokens cannot target a chosen one).
fn make_room<T>(
    map: &mut HashMap<TokenKey, Remembered<T>>,
    capacity: usize,
    now_ms: i64,
    key: &TokenKey,
) {
    if map.len() < capacity || map.contains_key(key) {
        return;
    }
    map.retain(|_, r| r.until_ms > now_ms);
    if map.len() < capacity {
        return;
    }
    let drop: Vec<TokenKey> = map.keys().take((capacity / 8).max(1)).copied().collect();
    for k in drop {
        map.remove(&k);
    }
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

    fn key(i: u32) -> [u8; 32] {
        let mut k = [0u8; 32];
        k[..4].copy_from_slice(&i.to_be_bytes());
        k
    }

    fn err() -> Arc<UpstreamError> {
        Arc::new(UpstreamError::Rejected {
            code: "InvalidTokenException",
            message: "no".into(),
        })
    }

    fn limiter(capacity: usize) -> Inbound {
        Inbound::new(
            Rate::new(1000, 1000),
            Rate::new(1, 2),
            Rate::new(1, 3),
            capacity,
        )
    }

    #[test]
    fn classes_and_charges() {
        let l = limiter(16);
        assert!(matches!(l.classify(&key(1), 0), Class::Unverified));
        assert!(l.admit_unverified() && l.admit_unverified());
        assert!(
            !l.admit_unverified(),
            "the shared unverified bucket is small"
        );
        l.remember_verified(key(1), key(100), 1000, 0);
        let Class::Verified(Some(b)) = l.classify(&key(1), 0) else {
            panic!("not verified")
        };
        assert!((0..3).all(|_| l.admit_verified(Some(&b))));
        assert!(!l.admit_verified(Some(&b)), "the pod's own bucket");
        // Another token of the same pod shares the bucket; another pod has its own.
        l.remember_verified(key(2), key(100), 1000, 0);
        let Class::Verified(Some(same)) = l.classify(&key(2), 0) else {
            panic!()
        };
        assert!(!l.admit_verified(Some(&same)));
        l.remember_verified(key(3), key(101), 1000, 0);
        let Class::Verified(Some(other)) = l.classify(&key(3), 0) else {
            panic!()
        };
        assert!(l.admit_verified(Some(&other)));
        assert_eq!(l.pod_buckets(), 2);
        // Expired memories are not used.
        assert!(matches!(l.classify(&key(1), 1000), Class::Unverified));
        l.remember_refused(key(4), err(), 500, 0);
        assert!(matches!(l.classify(&key(4), 0), Class::Refused(_)));
        assert!(matches!(l.classify(&key(4), 500), Class::Unverified));
    }

    #[test]
    fn token_maps_are_bounded() {
        let l = limiter(8);
        for i in 0..1000 {
            l.remember_refused(key(i), err(), 10_000, 0);
            assert!(l.refused_tokens() <= 8);
        }
        for i in 0..1000 {
            l.remember_verified(key(i), key(i % 4), 10_000, 0);
            assert!(l.verified_tokens() <= 8);
        }
        assert!(l.pod_buckets() <= 8);
    }

    #[test]
    fn full_pod_map_sheds_only_idle_unreferenced_buckets_else_overflows() {
        let l = limiter(2);
        let overflow = l.overflow.clone().unwrap();
        let a = l.pod_bucket(key(100)).unwrap();
        let b = l.pod_bucket(key(101)).unwrap();
        // Both buckets are referenced: a third pod shares the overflow bucket.
        let c = l.pod_bucket(key(102)).unwrap();
        assert!(Arc::ptr_eq(&c, &overflow));
        assert_eq!(l.pod_buckets(), 2);
        // Pod 100's bucket is unreferenced and full: it makes room.
        drop(a);
        let d = l.pod_bucket(key(103)).unwrap();
        assert!(!Arc::ptr_eq(&d, &overflow));
        assert_eq!(l.pod_buckets(), 2);
        // Unreferenced but in use (not full): kept, so its pod's limit holds.
        assert!(d.try_acquire());
        drop(d);
        let e = l.pod_bucket(key(104)).unwrap();
        assert!(Arc::ptr_eq(&e, &overflow));
        assert!(Arc::ptr_eq(&l.pod_bucket(key(101)).unwrap(), &b));
    }

    #[test]
    fn no_limits() {
        let l = Inbound::new(None, None, None, 4);
        assert!((0..10_000).all(|_| l.admit_unverified()));
        l.remember_verified(key(1), key(100), 10, 0);
        assert!(matches!(l.classify(&key(1), 0), Class::Verified(None)));
        assert_eq!(l.pod_buckets(), 0);
    }
}
