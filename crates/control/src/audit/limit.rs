//! How many refusals the trail keeps. A refused request costs its caller nothing and writes
//! nothing else, so refusals are the events a caller can make at will; unlimited, one caller
//! could fill the disk the store lives on, for every account of the installation. Events of
//! requests that were answered are not limited: what they record, the caller was allowed to do.
//!
//! - Refusals of unsigned requests (tokens, which anyone who reaches serve may send) share one
//!   allowance ([`ANONYMOUS`]); their events are also kept small where they are built.
//! - Refusals of signed requests have an allowance per caller ([`PER_CALLER`]), per account
//!   ([`PER_ACCOUNT`]: a tenant making many users or roles cannot use up the next one alone),
//!   and all of them together one more ([`ALL_SIGNED`]). A caller is its user, its account's
//!   root, or, for a role session, the role: sessions are minted at will by whoever may assume
//!   the role, and must not each bring a fresh allowance.
//!
//! Past an allowance, events are counted as suppressed and not written.

use std::collections::HashMap;
use std::time::Instant;

/// An allowance: so many events and bytes a second, after a burst.
#[derive(Clone, Copy, Debug)]
pub struct Rate {
    /// Events a second.
    pub events: f64,
    /// Events at once.
    pub events_burst: f64,
    /// Bytes (of JSON record) a second.
    pub bytes: f64,
    /// Bytes at once.
    pub bytes_burst: f64,
}

/// Refusals of unsigned requests, for the whole installation: however large the events a
/// caller contrives, anonymous callers add at most 512 KiB a second to the store.
pub const ANONYMOUS: Rate = Rate {
    events: 200.0,
    events_burst: 2000.0,
    bytes: 512.0 * 1024.0,
    bytes_burst: 8.0 * 1024.0 * 1024.0,
};

/// Refusals of one signed caller.
pub const PER_CALLER: Rate = Rate {
    events: 20.0,
    events_burst: 500.0,
    bytes: 64.0 * 1024.0,
    bytes_burst: 4.0 * 1024.0 * 1024.0,
};

/// Refusals of all signed callers of one account together: one tenant's callers cannot use up
/// [`ALL_SIGNED`] alone.
pub const PER_ACCOUNT: Rate = Rate {
    events: 200.0,
    events_burst: 5000.0,
    bytes: 512.0 * 1024.0,
    bytes_burst: 16.0 * 1024.0 * 1024.0,
};

/// Refusals of all signed callers together.
pub const ALL_SIGNED: Rate = Rate {
    events: 1000.0,
    events_burst: 20_000.0,
    bytes: 2.0 * 1024.0 * 1024.0,
    bytes_burst: 64.0 * 1024.0 * 1024.0,
};

/// Signed callers (and accounts) whose allowance is remembered at once; past it, those idle
/// long enough to have refilled are forgotten (looked for at most once a second), and until
/// some are, new ones share one allowance.
const TRACKED_CALLERS: usize = 4096;

/// How often a warning names the refusals not kept.
const WARN_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// What is left of an allowance, and when it was last topped up.
#[derive(Clone, Copy, Debug)]
struct Allowance {
    events: f64,
    bytes: f64,
    at: Instant,
}

impl Allowance {
    fn full(rate: &Rate, now: Instant) -> Self {
        Self {
            events: rate.events_burst,
            bytes: rate.bytes_burst,
            at: now,
        }
    }

    fn refill(&mut self, rate: &Rate, now: Instant) {
        let secs = now.saturating_duration_since(self.at).as_secs_f64();
        self.events = secs
            .mul_add(rate.events, self.events)
            .min(rate.events_burst);
        self.bytes = secs.mul_add(rate.bytes, self.bytes).min(rate.bytes_burst);
        self.at = now;
    }

    fn has(&self, bytes: f64) -> bool {
        self.events >= 1.0 && self.bytes >= bytes
    }

    fn take(&mut self, bytes: f64) {
        self.events -= 1.0;
        self.bytes -= bytes;
    }

    fn is_full(&self, rate: &Rate) -> bool {
        self.events >= rate.events_burst && self.bytes >= rate.bytes_burst
    }
}

/// The allowance a refusal found used up; `as usize`, its place in [`Self::ALL`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exhausted {
    /// Unsigned requests' ([`ANONYMOUS`]).
    Anonymous,
    /// The caller's own ([`PER_CALLER`]).
    Caller,
    /// The caller's account's ([`PER_ACCOUNT`]).
    Account,
    /// All signed callers' ([`ALL_SIGNED`]).
    AllSigned,
}

impl Exhausted {
    /// Every allowance, in the order of [`Self::label`]s a metric shows.
    pub const ALL: [Exhausted; 4] = [
        Exhausted::Anonymous,
        Exhausted::Caller,
        Exhausted::Account,
        Exhausted::AllSigned,
    ];

    /// The allowance's name in metrics.
    pub fn label(self) -> &'static str {
        match self {
            Exhausted::Anonymous => "anonymous",
            Exhausted::Caller => "caller",
            Exhausted::Account => "account",
            Exhausted::AllSigned => "all_signed",
        }
    }
}

/// Who a refused request came from.
#[derive(Clone, Copy, Debug)]
pub enum Refused<'a> {
    /// No signature vouched for it.
    Anonymous,
    /// A signed caller ([`super::record::RefusedBy`]).
    Signed {
        /// Its account.
        account: &'a str,
        /// Its user, root or role ARN.
        caller: &'a str,
    },
}

/// Allowances by key (a caller, an account), at most [`TRACKED_CALLERS`] of them.
#[derive(Debug)]
struct Keyed {
    rate: Rate,
    map: HashMap<String, Allowance>,
    /// Shared by keys not remembered while [`TRACKED_CALLERS`] are.
    overflow: Allowance,
    /// When refilled keys were last forgotten.
    swept: Instant,
}

impl Keyed {
    fn new(rate: Rate, now: Instant) -> Self {
        Self {
            rate,
            map: HashMap::new(),
            overflow: Allowance::full(&rate, now),
            swept: now,
        }
    }

    /// The key's allowance, topped up.
    fn get(&mut self, key: &str, now: Instant) -> &mut Allowance {
        let rate = self.rate;
        if self.map.len() >= TRACKED_CALLERS
            && !self.map.contains_key(key)
            && now.saturating_duration_since(self.swept).as_secs() >= 1
        {
            self.swept = now;
            self.map.retain(|_, a| {
                a.refill(&rate, now);
                !a.is_full(&rate)
            });
        }
        if !self.map.contains_key(key) && self.map.len() < TRACKED_CALLERS {
            self.map.insert(key.to_owned(), Allowance::full(&rate, now));
        }
        let own = self.map.get_mut(key).unwrap_or(&mut self.overflow);
        own.refill(&rate, now);
        own
    }
}

/// The allowances of refusals.
#[derive(Debug)]
pub struct RefusalLimits {
    anonymous: Allowance,
    signed: Allowance,
    accounts: Keyed,
    callers: Keyed,
    /// Refusals suppressed since the last warning, and when that was.
    unwarned: (u64, Option<Instant>),
}

impl RefusalLimits {
    /// Every allowance full.
    pub fn new(now: Instant) -> Self {
        Self {
            anonymous: Allowance::full(&ANONYMOUS, now),
            signed: Allowance::full(&ALL_SIGNED, now),
            accounts: Keyed::new(PER_ACCOUNT, now),
            callers: Keyed::new(PER_CALLER, now),
            unwarned: (0, None),
        }
    }

    /// Notes a refusal not kept; says how many went unmentioned (this one included) when it is
    /// time to warn of them: at the first, then at most every [`WARN_EVERY`].
    pub fn suppressed(&mut self, now: Instant) -> Option<u64> {
        self.unwarned.0 += 1;
        let due = self
            .unwarned
            .1
            .is_none_or(|t| now.saturating_duration_since(t) >= WARN_EVERY);
        due.then(|| {
            self.unwarned.1 = Some(now);
            std::mem::take(&mut self.unwarned.0)
        })
    }

    /// Whether a refusal whose record is `bytes` long may be kept now (taking its allowances);
    /// if not, which allowance it found used up.
    pub fn check(&mut self, who: Refused<'_>, bytes: usize, now: Instant) -> Result<(), Exhausted> {
        // Records are at most a few hundred KiB: the cast is exact.
        #[expect(clippy::cast_precision_loss, reason = "far below 2^52")]
        let bytes = bytes as f64;
        match who {
            Refused::Anonymous => {
                self.anonymous.refill(&ANONYMOUS, now);
                if !self.anonymous.has(bytes) {
                    return Err(Exhausted::Anonymous);
                }
                self.anonymous.take(bytes);
                Ok(())
            }
            Refused::Signed { account, caller } => {
                self.signed.refill(&ALL_SIGNED, now);
                let own = self.callers.get(caller, now);
                if !own.has(bytes) {
                    return Err(Exhausted::Caller);
                }
                let accounts = self.accounts.get(account, now);
                if !accounts.has(bytes) {
                    return Err(Exhausted::Account);
                }
                if !self.signed.has(bytes) {
                    return Err(Exhausted::AllSigned);
                }
                own.take(bytes);
                accounts.take(bytes);
                self.signed.take(bytes);
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A signed caller named by its ARN, in the ARN's account.
    fn signed(caller: &str) -> Refused<'_> {
        Refused::Signed {
            account: caller.split(':').nth(4).unwrap_or_default(),
            caller,
        }
    }

    fn kept(
        l: &mut RefusalLimits,
        who: Refused<'_>,
        n: usize,
        bytes: usize,
        now: Instant,
    ) -> usize {
        (0..n).filter(|_| l.check(who, bytes, now).is_ok()).count()
    }

    #[test]
    fn each_caller_has_its_own_allowance_and_all_share_one() {
        let t = Instant::now();
        let mut l = RefusalLimits::new(t);
        let burst = PER_CALLER.events_burst as usize;
        assert_eq!(
            kept(
                &mut l,
                signed("arn:aws:iam::111122223333:user/a"),
                burst + 50,
                100,
                t
            ),
            burst
        );
        // Another caller is not held back by the first.
        assert_eq!(
            kept(
                &mut l,
                signed("arn:aws:iam::111122223333:user/b"),
                10,
                100,
                t
            ),
            10
        );
        // Nor are anonymous refusals, which have their own.
        assert_eq!(kept(&mut l, Refused::Anonymous, 10, 100, t), 10);
        // A second later, the first caller has its rate back, no more.
        let later = t + Duration::from_secs(1);
        let rate = PER_CALLER.events as usize;
        assert_eq!(
            kept(
                &mut l,
                signed("arn:aws:iam::111122223333:user/a"),
                rate + 5,
                100,
                later
            ),
            rate
        );
        // Large events run out of bytes first.
        let big = 512 * 1024;
        let fits = (PER_CALLER.bytes_burst / 512.0 / 1024.0) as usize;
        assert_eq!(
            kept(
                &mut l,
                signed("arn:aws:iam::111122223333:user/c"),
                fits + 5,
                big,
                t
            ),
            fits
        );
    }

    #[test]
    fn one_accounts_callers_together_have_the_accounts_allowance() {
        let t = Instant::now();
        let mut l = RefusalLimits::new(t);
        let mut total = 0;
        for i in 0..100 {
            let caller = format!("arn:aws:iam::111122223333:user/u{i}");
            total += kept(&mut l, signed(&caller), 100, 10, t);
        }
        assert_eq!(total, PER_ACCOUNT.events_burst as usize);
        // Another account's callers are not held back by the first account's.
        let other = "arn:aws:iam::444455556666:role/r";
        assert_eq!(kept(&mut l, signed(other), 10, 10, t), 10);
    }

    #[test]
    fn a_refusal_not_kept_names_the_allowance_it_found_used_up() {
        let t = Instant::now();
        let mut l = RefusalLimits::new(t);
        let drain = |l: &mut RefusalLimits, who: &str| {
            while l.check(signed(who), 10, t).is_ok() {}
        };
        let user = |a: usize, u: usize| format!("arn:aws:iam::{a:012}:user/u{u}");
        drain(&mut l, &user(1, 0));
        assert_eq!(l.check(signed(&user(1, 0)), 10, t), Err(Exhausted::Caller));
        // Ten callers use up their account's allowance (5,000 = 10 x 500).
        for u in 1..10 {
            drain(&mut l, &user(1, u));
        }
        assert_eq!(
            l.check(signed(&user(1, 10)), 10, t),
            Err(Exhausted::Account)
        );
        // Three more accounts' worth use up all signed callers' (20,000).
        for a in 2..5 {
            for u in 0..10 {
                drain(&mut l, &user(a, u));
            }
        }
        assert_eq!(
            l.check(signed(&user(9, 0)), 10, t),
            Err(Exhausted::AllSigned)
        );
        while l.check(Refused::Anonymous, 10, t).is_ok() {}
        assert_eq!(
            l.check(Refused::Anonymous, 10, t),
            Err(Exhausted::Anonymous)
        );
    }

    #[test]
    fn each_allowance_is_at_its_own_place() {
        for (i, e) in Exhausted::ALL.iter().enumerate() {
            assert_eq!(*e as usize, i, "{e:?}");
        }
    }

    #[test]
    fn suppression_is_told_at_once_then_every_ten_seconds() {
        let t = Instant::now();
        let mut l = RefusalLimits::new(t);
        assert_eq!(l.suppressed(t), Some(1));
        assert_eq!(l.suppressed(t + Duration::from_secs(1)), None);
        assert_eq!(l.suppressed(t + Duration::from_secs(5)), None);
        assert_eq!(l.suppressed(t + Duration::from_secs(11)), Some(3));
        assert_eq!(l.suppressed(t + Duration::from_secs(12)), None);
    }

    #[test]
    fn many_callers_share_the_signed_allowance_and_are_not_remembered_without_bound() {
        let t = Instant::now();
        let mut l = RefusalLimits::new(t);
        let mut total = 0;
        for i in 0..(2 * TRACKED_CALLERS) {
            let caller = format!("arn:aws:iam::{:012}:user/u{i}", i % 64);
            total += kept(&mut l, signed(&caller), 20, 10, t);
        }
        assert_eq!(total, ALL_SIGNED.events_burst as usize);
        assert!(l.callers.map.len() <= TRACKED_CALLERS);
        // Once their allowances have refilled, idle callers are forgotten for new ones.
        let later = t + Duration::from_secs(3600);
        assert!(
            l.check(signed("arn:aws:iam::111122223333:user/new"), 10, later)
                .is_ok()
        );
        assert!(
            l.callers
                .map
                .contains_key("arn:aws:iam::111122223333:user/new")
        );
        assert!(l.callers.map.len() <= TRACKED_CALLERS);
    }
}
