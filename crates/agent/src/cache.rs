//! The credential cache and the retriever in front of EKS Auth.
//!
//! - Key: SHA-256 of the token (the raw token is kept only inside the entry, to refresh it).
//! - Bounded LRU (`max_cache_size`; 0 disables the cache). Reads take a shared lock; the LRU
//!   order is a global tick stored per entry, so a hit writes no map.
//! - An entry is served while its credentials have more than `min_ttl` left and its token's
//!   `exp`/`nbf` hold. The served body is the JSON rendered once per credential set.
//! - Misses for the same token are coalesced: one spawned fetch, the others wait on its
//!   `watch` channel. The fetch survives the cancellation of the request that started it.
//! - A janitor refreshes due entries at ≤ `max_service_qps`; a non-recoverable error evicts
//!   the entry, any other keeps serving it until it expires and retries later with jitter.
//!   A request only ever evicts the entry of its own token.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use tokio::sync::watch;

use crate::eksauth::{EksAuthClient, PodCredentials, UpstreamError};
use crate::metrics::{ErrorKind, Metrics};
use crate::token::{self, TokenError, TokenTimes};
use podiam_awsclient::Clock;
use podiam_awsclient::TokenBucket;

/// SHA-256 of a token.
pub(crate) type Key = [u8; 32];

pub(crate) fn key_of(token: &str) -> Key {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    let mut k = [0u8; 32];
    for (dst, src) in k.iter_mut().zip(d.as_ref()) {
        *dst = *src;
    }
    k
}

struct Entry {
    token: Arc<str>,
    times: TokenTimes,
    body: Bytes,
    expiration_ms: i64,
    refresh_at_ms: AtomicI64,
    last_used: AtomicU64,
}

enum Lookup {
    Hit(Bytes),
    Invalid(TokenError),
    Miss,
}

struct Cache {
    map: RwLock<HashMap<Key, Arc<Entry>>>,
    capacity: usize,
    tick: AtomicU64,
    min_ttl_ms: i64,
}

impl Cache {
    fn lookup(&self, key: &Key, now: i64) -> Lookup {
        let map = self.map.read();
        let Some(e) = map.get(key) else {
            return Lookup::Miss;
        };
        if !e.times.is_valid_at(now) {
            return match e.times.validate(now) {
                Err(err) => Lookup::Invalid(err),
                Ok(()) => Lookup::Miss,
            };
        }
        if e.expiration_ms.saturating_sub(now) <= self.min_ttl_ms {
            return Lookup::Miss;
        }
        e.last_used
            .store(self.tick.fetch_add(1, Ordering::Relaxed), Ordering::Relaxed);
        Lookup::Hit(e.body.clone())
    }

    /// Inserts or replaces; returns how many other entries were evicted for room.
    fn insert(&self, key: Key, entry: Entry) -> usize {
        entry
            .last_used
            .store(self.tick.fetch_add(1, Ordering::Relaxed), Ordering::Relaxed);
        let mut map = self.map.write();
        let mut evicted = 0;
        if !map.contains_key(&key) {
            while map.len() >= self.capacity {
                let oldest = map
                    .iter()
                    .min_by_key(|(_, e)| e.last_used.load(Ordering::Relaxed))
                    .map(|(k, _)| *k);
                match oldest {
                    Some(k) => {
                        map.remove(&k);
                        evicted += 1;
                    }
                    None => break,
                }
            }
        }
        map.insert(key, Arc::new(entry));
        evicted
    }

    /// Replaces the credentials of a present entry (keeping its LRU position).
    fn replace(&self, key: &Key, entry: Entry) -> bool {
        let mut map = self.map.write();
        match map.get_mut(key) {
            Some(slot) => {
                entry
                    .last_used
                    .store(slot.last_used.load(Ordering::Relaxed), Ordering::Relaxed);
                *slot = Arc::new(entry);
                true
            }
            None => false,
        }
    }

    fn remove(&self, key: &Key) -> bool {
        self.map.write().remove(key).is_some()
    }

    /// Entries to refresh or drop at `now`.
    fn due(&self, now: i64) -> Vec<(Key, Arc<Entry>)> {
        let map = self.map.read();
        let mut v: Vec<(Key, Arc<Entry>)> = map
            .iter()
            .filter(|(_, e)| {
                e.refresh_at_ms.load(Ordering::Relaxed) <= now
                    || !e.times.is_valid_at(now)
                    || e.expiration_ms.saturating_sub(now) <= self.min_ttl_ms
            })
            .map(|(k, e)| (*k, Arc::clone(e)))
            .collect();
        v.sort_by_key(|(_, e)| e.refresh_at_ms.load(Ordering::Relaxed));
        v
    }

    fn len(&self) -> usize {
        self.map.read().len()
    }
}

/// The answer to a credentials request.
pub(crate) enum Answer {
    /// 200 with this JSON body.
    Credentials(Bytes),
    /// 400: the token was refused locally.
    Token(TokenError),
    /// EKS Auth (or the path to it) failed.
    Upstream(Arc<UpstreamError>),
}

type FetchResult = Result<Bytes, Arc<UpstreamError>>;

/// Timings of the retriever.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timings {
    pub retention_ms: i64,
    pub min_ttl_ms: i64,
    pub retry_ms: i64,
}

/// The cache plus the coalescing fetcher and the refresher.
pub(crate) struct Retriever {
    cache: Option<Cache>,
    inflight: Mutex<HashMap<Key, watch::Receiver<Option<FetchResult>>>>,
    client: EksAuthClient,
    clock: Clock,
    metrics: Arc<Metrics>,
    timings: Timings,
    service_qps: TokenBucket,
}

fn jitter(max: i64) -> i64 {
    if max <= 0 {
        0
    } else {
        rand::random_range(0..=max)
    }
}

impl Retriever {
    pub fn new(
        capacity: usize,
        client: EksAuthClient,
        clock: Clock,
        metrics: Arc<Metrics>,
        timings: Timings,
        service_qps: f64,
    ) -> Self {
        let cache = (capacity > 0 && timings.retention_ms > 0).then(|| Cache {
            map: RwLock::new(HashMap::with_capacity(capacity.min(4096))),
            capacity,
            tick: AtomicU64::new(1),
            min_ttl_ms: timings.min_ttl_ms,
        });
        let burst = (service_qps.ceil() as u32).max(1);
        Self {
            cache,
            inflight: Mutex::new(HashMap::new()),
            client,
            clock,
            metrics,
            timings,
            service_qps: TokenBucket::new(service_qps, burst),
        }
    }

    /// Entries in the cache.
    pub fn cache_len(&self) -> usize {
        self.cache.as_ref().map_or(0, Cache::len)
    }

    /// The EKS Auth URL.
    pub fn upstream_url(&self) -> &str {
        self.client.url()
    }

    /// When to refresh credentials fetched at `now` that expire at `exp_ms`: after
    /// min(retention, lifetime − 16 min (but at least half the lifetime)), less up to 10 % jitter
    /// (at most 5 min). Served credentials thus keep > 15 min of validity, the SDKs' refresh
    /// window, whenever their lifetime allows it.
    fn schedule(&self, now: i64, exp_ms: i64) -> i64 {
        let life = exp_ms.saturating_sub(now).max(0);
        let window = self
            .timings
            .retention_ms
            .min((life - 16 * 60_000).max(life / 2));
        now.saturating_add(window - jitter((window / 10).min(5 * 60_000)))
    }

    fn entry(&self, token: Arc<str>, times: TokenTimes, c: &PodCredentials, now: i64) -> Entry {
        let expiration_ms = c.expiration.saturating_mul(1000);
        Entry {
            token,
            times,
            body: c.body.clone(),
            expiration_ms,
            refresh_at_ms: AtomicI64::new(self.schedule(now, expiration_ms)),
            last_used: AtomicU64::new(0),
        }
    }

    fn error_kind(e: &UpstreamError) -> ErrorKind {
        if e.is_recoverable() {
            ErrorKind::Recoverable
        } else {
            ErrorKind::NonRecoverable
        }
    }

    /// Serves a credentials request for `token`, whose [`key_of`] is `key`.
    pub async fn get(self: &Arc<Self>, token: &str, key: Key) -> Answer {
        self.serve(token, key, true)
            .await
            .unwrap_or_else(|| Answer::Upstream(Arc::new(lost())))
    }

    /// Like [`Retriever::get`], but only from the cache or by joining a fetch already under
    /// way: `None` when answering would take a new upstream call.
    pub async fn join(self: &Arc<Self>, token: &str, key: Key) -> Option<Answer> {
        self.serve(token, key, false).await
    }

    async fn serve(self: &Arc<Self>, token: &str, key: Key, may_fetch: bool) -> Option<Answer> {
        if token.is_empty() {
            return Some(Answer::Token(TokenError::Empty));
        }
        let now = self.clock.now_ms();
        if let Some(cache) = &self.cache {
            match cache.lookup(&key, now) {
                Lookup::Hit(body) => {
                    self.metrics.hit();
                    return Some(Answer::Credentials(body));
                }
                Lookup::Invalid(e) => return Some(Answer::Token(e)),
                Lookup::Miss => {}
            }
        }
        let times = match token::parse(token) {
            Ok(t) => t,
            Err(e) => return Some(Answer::Token(e)),
        };
        if let Err(e) = times.validate(now) {
            return Some(Answer::Token(e));
        }
        let mut rx = {
            let mut inflight = self.inflight.lock();
            // A fetch that completed since the lookup above has filled the cache.
            if let Some(Lookup::Hit(body)) = self.cache.as_ref().map(|c| c.lookup(&key, now)) {
                self.metrics.hit();
                return Some(Answer::Credentials(body));
            }
            // A receiver whose sender is gone belongs to a fetch that died: start anew.
            match inflight.get(&key).filter(|rx| rx.has_changed().is_ok()) {
                Some(rx) => {
                    self.metrics.miss();
                    rx.clone()
                }
                None if !may_fetch => return None,
                None => {
                    self.metrics.miss();
                    let (tx, rx) = watch::channel(None);
                    inflight.insert(key, rx.clone());
                    let this = Arc::clone(self);
                    let token: Arc<str> = Arc::from(token);
                    tokio::spawn(async move { this.fetch(key, token, times, tx).await });
                    rx
                }
            }
        };
        Some(match rx.wait_for(Option::is_some).await {
            Ok(v) => match v.as_ref() {
                Some(Ok(body)) => Answer::Credentials(body.clone()),
                Some(Err(e)) => Answer::Upstream(Arc::clone(e)),
                None => Answer::Upstream(Arc::new(lost())),
            },
            Err(_) => Answer::Upstream(Arc::new(lost())),
        })
    }

    async fn fetch(
        self: Arc<Self>,
        key: Key,
        token: Arc<str>,
        times: TokenTimes,
        tx: watch::Sender<Option<FetchResult>>,
    ) {
        let r = self.client.assume_role_for_pod_identity(&token).await;
        let now = self.clock.now_ms();
        let result = match r {
            Ok(c) => {
                if let Some(cache) = &self.cache
                    && c.expiration.saturating_mul(1000).saturating_sub(now)
                        > self.timings.min_ttl_ms
                {
                    let evicted = cache.insert(key, self.entry(token, times, &c, now));
                    for _ in 0..evicted {
                        self.metrics.evicted();
                    }
                }
                Ok(c.body)
            }
            Err(e) => {
                tracing::info!(
                    code = e.code(),
                    status = e.status(),
                    "EKS Auth refused or failed a credentials request"
                );
                self.metrics.cache_error(Self::error_kind(&e), e.code());
                if !e.is_recoverable() {
                    // Only this token's own (stale) entry.
                    if self.cache.as_ref().is_some_and(|c| c.remove(&key)) {
                        self.metrics.evicted();
                    }
                }
                Err(Arc::new(e))
            }
        };
        self.inflight.lock().remove(&key);
        let _ = tx.send(Some(result));
    }

    /// Refreshes (or drops) every due entry, at most `max_service_qps` upstream calls a second.
    pub async fn refresh_due(&self) {
        let Some(cache) = &self.cache else { return };
        for (key, entry) in cache.due(self.clock.now_ms()) {
            let now = self.clock.now_ms();
            if !entry.times.is_valid_at(now) {
                if cache.remove(&key) {
                    self.metrics.evicted();
                }
                continue;
            }
            self.service_qps.acquire().await;
            let r = self.client.assume_role_for_pod_identity(&entry.token).await;
            let now = self.clock.now_ms();
            match r {
                Ok(c) => {
                    if cache.replace(
                        &key,
                        self.entry(Arc::clone(&entry.token), entry.times, &c, now),
                    ) {
                        self.metrics.refreshed();
                    }
                }
                Err(e) => {
                    let kind = Self::error_kind(&e);
                    self.metrics.cache_error(kind, e.code());
                    let left = entry
                        .expiration_ms
                        .saturating_sub(now)
                        .saturating_sub(self.timings.min_ttl_ms);
                    if kind == ErrorKind::NonRecoverable || left <= 0 {
                        tracing::info!(
                            code = e.code(),
                            "credential refresh failed; evicting the entry"
                        );
                        if cache.remove(&key) {
                            self.metrics.evicted();
                        }
                    } else {
                        let retry = self.timings.retry_ms;
                        let next = (retry + jitter(retry)).min(left / 2).max(1000);
                        tracing::info!(
                            code = e.code(),
                            retry_in_ms = next,
                            "credential refresh failed; serving the cached credentials"
                        );
                        entry
                            .refresh_at_ms
                            .store(now.saturating_add(next), Ordering::Relaxed);
                    }
                }
            }
        }
    }
}

fn lost() -> UpstreamError {
    UpstreamError::Local {
        code: "InternalError",
        message: "the credentials fetch was abandoned".into(),
    }
}
