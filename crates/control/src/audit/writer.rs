//! The audit queue and its writer.
//!
//! A request hands its built event to [`AuditSink::submit`], which pushes it on a bounded queue
//! (a vector behind a lock held for the push) and wakes nobody: nothing waits on the store or
//! on the writer. One thread takes everything queued every [`FLUSH_EVERY`] (sooner when
//! [`MAX_BATCH`] events wait, or when a request waits for its event), appends it to the
//! JSON-lines log if there is one and writes it to the store in one transaction per
//! [`MAX_BATCH`]. Waking the writer per event would cost each credential call a futex wake and
//! the machine a context switch. What a `kill -9` can lose is what is queued or being written:
//! the last [`FLUSH_EVERY`] of events and the batch in flight (docs/audit.md).
//!
//! Events of refused requests may fill only half the queue, so a flood of junk tokens cannot
//! crowd out the events of credentials issued; and refusals are kept within the allowances of
//! [`super::limit`] (unsigned requests together, each signed caller, all signed callers), the
//! rest counted as suppressed, so that no caller can fill the disk the store lives on. When the
//! queue is full an event is dropped and counted ([`AuditStats::dropped`]) — unless `required`
//! is set: then a credential's event is waited for, and if it cannot be written the credential
//! is withheld.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};
use podiam_store::{AuditRow, Store};
use tokio::sync::{oneshot, watch};

use super::limit::{RefusalLimits, Refused};
use super::record::Built;

/// Most events written in one transaction; a queue this long wakes the writer early.
pub const MAX_BATCH: usize = 1024;
/// How often the writer takes what is queued.
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);
/// Queue size by default.
pub const DEFAULT_CAPACITY: usize = 8192;
/// How often old events are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Where events go besides the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuditLog {
    /// JSON lines on standard output.
    Stdout,
    /// JSON lines appended to a file (created 0600).
    File(PathBuf),
}

/// How auditing runs.
#[derive(Clone, Debug)]
pub struct AuditConfig {
    /// Keep events in the store (for `LookupEvents`) this many days; 0 keeps none there.
    pub retention_days: u32,
    /// Also write each event as a JSON line here.
    pub log: Option<AuditLog>,
    /// Withhold credentials whose event cannot be written.
    pub required: bool,
    /// Queue size, in events.
    pub capacity: usize,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            retention_days: 90,
            log: None,
            required: false,
            capacity: DEFAULT_CAPACITY,
        }
    }
}

/// Counters of the writer, for `/metrics`.
#[derive(Debug, Default)]
pub struct AuditStats {
    /// Events written (to the store, or to the log when the store keeps none).
    pub written: AtomicU64,
    /// Events dropped because the queue was full.
    pub dropped: AtomicU64,
    /// Events that could not be written (the store or the log refused their batch).
    pub failed: AtomicU64,
    /// Refusals not kept, past their allowance ([`super::limit`]).
    pub suppressed: AtomicU64,
    /// The same, by the allowance found used up, in the order of
    /// [`super::limit::Exhausted::ALL`].
    pub suppressed_by: [AtomicU64; 4],
    /// Whether the last batch was written.
    pub healthy: AtomicBool,
}

/// What became of a submitted event.
#[derive(Debug)]
pub enum Enqueued {
    /// Queued; it will be written in the background.
    Queued,
    /// Queued, and `required`: the receiver says whether it was written.
    Wait(oneshot::Receiver<bool>),
    /// Not queued: the queue was full.
    Dropped,
}

struct Pending {
    json: String,
    rows: Vec<AuditRow>,
    ack: Option<oneshot::Sender<bool>>,
}

/// What the requests and the writer share.
#[derive(Debug)]
struct Queue {
    items: Mutex<Vec<Pending>>,
    /// Wakes the writer before its next round (a full batch, a waiting request, a flush).
    wake: Condvar,
    /// Set by [`AuditSink::close`]: the writer abandons what it is doing and ends.
    closing: watch::Sender<bool>,
}

impl Queue {
    fn closing(&self) -> bool {
        *self.closing.borrow()
    }
}

/// The queue into the writer.
#[derive(Debug)]
pub struct AuditSink {
    queue: Arc<Queue>,
    capacity: usize,
    required: bool,
    stats: Arc<AuditStats>,
    /// What is left of the refusals' allowances.
    limits: parking_lot::Mutex<RefusalLimits>,
    /// Resolves when the writer thread has ended.
    done: parking_lot::Mutex<Option<oneshot::Receiver<()>>>,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending").finish_non_exhaustive()
    }
}

impl AuditSink {
    /// Start the writer thread (and, with a retention, the pruner on the current Tokio
    /// runtime). Fails if the log file cannot be opened.
    pub fn start(
        config: &AuditConfig,
        store: Arc<dyn Store>,
        clock: Arc<dyn crate::Clock>,
    ) -> std::io::Result<Self> {
        let capacity = config.capacity.max(2);
        let queue = Arc::new(Queue {
            items: Mutex::default(),
            wake: Condvar::new(),
            closing: watch::Sender::new(false),
        });
        let (done_tx, done) = oneshot::channel();
        let log: Option<Box<dyn std::io::Write + Send>> = match &config.log {
            None => None,
            Some(AuditLog::Stdout) => Some(Box::new(std::io::stdout())),
            Some(AuditLog::File(p)) => Some(Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .mode(0o600)
                    .open(p)?,
            )),
        };
        let stats = Arc::new(AuditStats {
            healthy: AtomicBool::new(true),
            ..AuditStats::default()
        });
        let keep = config.retention_days > 0;
        let handle = tokio::runtime::Handle::current();
        let writer = Writer {
            queue: Arc::clone(&queue),
            log,
            store: keep.then(|| Arc::clone(&store)),
            handle: handle.clone(),
            stats: Arc::clone(&stats),
            _done: done_tx,
        };
        std::thread::Builder::new()
            .name("podiam-audit".into())
            .spawn(move || writer.run())?;
        if keep {
            let days = i64::from(config.retention_days);
            handle.spawn(async move {
                loop {
                    let before = clock.now_ms().saturating_sub(days * 86_400_000);
                    match store.prune_audit(before).await {
                        Ok(n) if n > 0 => tracing::info!(deleted = n, "old audit events pruned"),
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "pruning audit events failed"),
                    }
                    tokio::time::sleep(PRUNE_EVERY).await;
                }
            });
        }
        Ok(Self {
            queue,
            capacity,
            required: config.required,
            stats,
            limits: parking_lot::Mutex::new(RefusalLimits::new(std::time::Instant::now())),
            done: parking_lot::Mutex::new(Some(done)),
        })
    }

    /// Whether credentials wait for their event.
    pub fn required(&self) -> bool {
        self.required
    }

    /// The counters.
    pub fn stats(&self) -> &AuditStats {
        &self.stats
    }

    /// Events waiting to be written.
    pub fn queued(&self) -> usize {
        self.queue.items.lock().len()
    }

    /// Queue `p` unless the queue holds `limit` events already; wakes the writer when `p`
    /// is waited for or a batch is full. Gives `p` back when it was not queued.
    fn push(&self, p: Pending, limit: usize) -> Result<(), Pending> {
        let mut items = self.queue.items.lock();
        if items.len() >= limit {
            return Err(p);
        }
        let wake = p.ack.is_some() || items.len() + 1 >= MAX_BATCH;
        items.push(p);
        drop(items);
        if wake {
            self.queue.wake.notify_one();
        }
        Ok(())
    }

    /// Wait (up to `limit`) until every event queued before now is written: at shutdown.
    /// `false` if the time ran out or the last batch could not be written.
    pub async fn flush(&self, limit: Duration) -> bool {
        let (s, r) = oneshot::channel();
        let marker = Pending {
            json: String::new(),
            rows: Vec::new(),
            ack: Some(s),
        };
        // A flush may go past the bound: it adds no event.
        if self.push(marker, usize::MAX).is_err() {
            return false;
        }
        tokio::time::timeout(limit, r)
            .await
            .is_ok_and(|r| r == Ok(true))
    }

    /// Stop the writer: what it is writing is abandoned (a store that does not answer is not
    /// waited for), what is queued is not written. Waits up to `limit` for the writer thread to
    /// end, so that it never outlives the runtime its store calls run on; `false` if it did not.
    /// [`Self::flush`] first to write what is queued.
    pub async fn close(&self, limit: Duration) -> bool {
        self.queue.closing.send_replace(true);
        self.queue.wake.notify_one();
        let done = self.done.lock().take();
        match done {
            Some(done) => tokio::time::timeout(limit, done).await.is_ok(),
            None => true,
        }
    }

    /// Queue an event. Never blocks.
    pub fn submit(&self, b: Built) -> Enqueued {
        let refused = if b.anonymous_refusal {
            Some(Refused::Anonymous)
        } else {
            b.refused_by.as_ref().map(|r| Refused::Signed {
                account: &r.account,
                caller: &r.caller,
            })
        };
        if let Some(who) = refused {
            let now = std::time::Instant::now();
            let mut limits = self.limits.lock();
            if let Err(used_up) = limits.check(who, b.json.len(), now) {
                self.stats.suppressed.fetch_add(1, Ordering::Relaxed);
                if let Some(n) = self.stats.suppressed_by.get(used_up as usize) {
                    n.fetch_add(1, Ordering::Relaxed);
                }
                let tell = limits.suppressed(now);
                drop(limits);
                if let Some(n) = tell {
                    let caller = match who {
                        Refused::Anonymous => "unsigned requests",
                        Refused::Signed { caller, .. } => caller,
                    };
                    tracing::warn!(
                        suppressed = n,
                        caller,
                        allowance = used_up.label(),
                        "audit: refusals past their allowance are not kept (counted in podiam_audit_events_total{{outcome=\"suppressed\"}})"
                    );
                }
                return Enqueued::Dropped;
            }
        }
        // Refusals may use half the queue; issued credentials all of it.
        let limit = if b.issued {
            self.capacity
        } else {
            self.capacity / 2
        };
        let (ack, wait) = if self.required && b.issued {
            let (s, r) = oneshot::channel();
            (Some(s), Some(r))
        } else {
            (None, None)
        };
        let p = Pending {
            json: b.json,
            rows: b.rows,
            ack,
        };
        match self.push(p, limit) {
            Ok(()) => wait.map_or(Enqueued::Queued, Enqueued::Wait),
            Err(_) => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                Enqueued::Dropped
            }
        }
    }
}

/// How one write went.
enum Attempt {
    Written,
    /// The store refused the data (it would again).
    Refused,
    /// The store did not answer, three times.
    Unavailable,
    /// [`AuditSink::close`] was called meanwhile.
    Closed,
}

struct Writer {
    queue: Arc<Queue>,
    log: Option<Box<dyn std::io::Write + Send>>,
    store: Option<Arc<dyn Store>>,
    handle: tokio::runtime::Handle,
    stats: Arc<AuditStats>,
    /// Dropped when the thread ends, which [`AuditSink::close`] waits for.
    _done: oneshot::Sender<()>,
}

impl Writer {
    fn run(mut self) {
        let mut taken: Vec<Pending> = Vec::with_capacity(MAX_BATCH);
        let mut rows: Vec<AuditRow> = Vec::with_capacity(MAX_BATCH);
        loop {
            {
                let mut items = self.queue.items.lock();
                if items.is_empty() && !self.queue.closing() {
                    self.queue.wake.wait_for(&mut items, FLUSH_EVERY);
                }
                std::mem::swap(&mut *items, &mut taken);
            }
            // One transaction per MAX_BATCH events, oldest first.
            while !taken.is_empty() && !self.queue.closing() {
                let n = taken.len().min(MAX_BATCH);
                let batch: Vec<Pending> = taken.drain(..n).collect();
                self.write(batch, &mut rows);
            }
            // Closed, or the sink is gone (the process is ending): nothing more will be written.
            if self.queue.closing() || Arc::strong_count(&self.queue) == 1 {
                let mut items = self.queue.items.lock();
                let lost = taken.drain(..).chain(items.drain(..));
                let n = lost.filter(|p| !p.json.is_empty()).count() as u64;
                self.stats.failed.fetch_add(n, Ordering::Relaxed);
                return;
            }
        }
    }

    fn write(&mut self, mut batch: Vec<Pending>, rows: &mut Vec<AuditRow>) {
        let mut log_ok = true;
        if let Some(log) = self.log.as_mut() {
            let mut buf = Vec::with_capacity(batch.iter().map(|p| p.json.len() + 1).sum());
            for p in batch.iter().filter(|p| !p.json.is_empty()) {
                buf.extend_from_slice(p.json.as_bytes());
                buf.push(b'\n');
            }
            if let Err(e) = log.write_all(&buf).and_then(|()| log.flush()) {
                tracing::warn!(error = %e, "writing the audit log failed");
                log_ok = false;
            }
        }
        // Each event's rows are `rows[previous end..its end]`; `written` says which were.
        let mut ends = Vec::with_capacity(batch.len());
        let mut written = Vec::new();
        if let Some(store) = &self.store {
            for p in &mut batch {
                rows.append(&mut p.rows);
                ends.push(rows.len());
            }
            written = vec![false; rows.len()];
            self.append(store.as_ref(), rows, &mut written);
            rows.clear();
        }
        let (mut good, mut bad) = (0u64, 0u64);
        let mut start = 0;
        let mut acks = Vec::new();
        for (i, p) in batch.drain(..).enumerate() {
            let end = ends.get(i).copied().unwrap_or(start);
            let ok = log_ok && written.get(start..end).is_none_or(|w| w.iter().all(|&x| x));
            start = end;
            if !p.json.is_empty() {
                if ok {
                    good += 1;
                } else {
                    bad += 1;
                }
            }
            if let Some(a) = p.ack {
                acks.push((a, ok));
            }
        }
        // The counters first: whoever is told its event's fate sees them counted.
        self.stats.written.fetch_add(good, Ordering::Relaxed);
        self.stats.failed.fetch_add(bad, Ordering::Relaxed);
        self.stats.healthy.store(bad == 0, Ordering::Relaxed);
        for (a, ok) in acks {
            let _ = a.send(ok);
        }
    }

    /// Write `rows`, marking in `written` those that were. Rows the store refuses (data it
    /// cannot hold) are isolated by halving, so that one bad event costs only itself, never
    /// the batch of other callers' events it came in; a store that does not answer is tried
    /// three times over about a second, then given up on.
    fn append(&self, store: &dyn Store, rows: &[AuditRow], written: &mut [bool]) {
        if rows.is_empty() {
            return;
        }
        match self.attempt(store, rows) {
            Attempt::Written => written.fill(true),
            Attempt::Refused if rows.len() > 1 => {
                let mid = rows.len() / 2;
                let (a, b) = rows.split_at(mid);
                let (wa, wb) = written.split_at_mut(mid);
                self.append(store, a, wa);
                self.append(store, b, wb);
            }
            Attempt::Refused | Attempt::Unavailable | Attempt::Closed => {}
        }
    }

    /// One write of `rows`, retried while the store does not answer; abandoned when closed.
    fn attempt(&self, store: &dyn Store, rows: &[AuditRow]) -> Attempt {
        let mut closing = self.queue.closing.subscribe();
        for attempt in 0..3u32 {
            let backoff = Duration::from_millis(100 << (2 * attempt));
            let outcome = self.handle.block_on(async {
                let r = tokio::select! {
                    r = store.append_audit(rows) => r,
                    _ = closing.wait_for(|c| *c) => return Attempt::Closed,
                };
                match r {
                    Ok(()) => Attempt::Written,
                    Err(e) if e.is_refused_data() => {
                        tracing::warn!(error = %e, events = rows.len(), "the store refused audit events");
                        Attempt::Refused
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, attempt, events = rows.len(), "writing audit events failed");
                        match tokio::time::timeout(backoff, closing.wait_for(|c| *c)).await {
                            Ok(_) => Attempt::Closed,
                            Err(_) => Attempt::Unavailable,
                        }
                    }
                }
            });
            if !matches!(outcome, Attempt::Unavailable) {
                return outcome;
            }
        }
        Attempt::Unavailable
    }
}
