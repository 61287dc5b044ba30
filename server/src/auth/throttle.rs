//! Bounds on password verification, so that no client can buy the server's
//! CPU and memory with bad logins.
//!
//! - [`Gate`]: at most one argon2 verification per core at a time (each
//!   costs 19 MiB and tens of milliseconds), a bounded queue behind them, and
//!   a 429 for whoever finds the queue full or waits too long.
//! - [`Throttle`]: failed logins counted per client address and per username
//!   in a fixed window; past the limit, the next attempts are answered 429
//!   without any verification until the window ends. The table is bounded:
//!   expired windows are pruned, and when it is full of live ones it is
//!   cleared (the gate still bounds the cost).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A request that must wait: answer 429 with `Retry-After`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy {
    pub retry_after: Duration,
}

/// Concurrency bound on argon2.
#[derive(Debug)]
pub struct Gate {
    permits: std::sync::Arc<Semaphore>,
    waiting: AtomicUsize,
    max_waiting: usize,
    max_wait: Duration,
}

impl Gate {
    /// `slots` concurrent verifications, `max_waiting` queued behind them,
    /// none waiting longer than `max_wait`.
    pub fn new(slots: usize, max_waiting: usize, max_wait: Duration) -> Gate {
        Gate {
            permits: std::sync::Arc::new(Semaphore::new(slots.max(1))),
            waiting: AtomicUsize::new(0),
            max_waiting,
            max_wait,
        }
    }

    /// One slot per core, sixteen waiting per core, two seconds at most.
    pub fn per_core() -> Gate {
        let cores = crate::cores();
        Gate::new(cores, 16 * cores, Duration::from_secs(2))
    }

    /// A slot, or [`Busy`] when the queue is full or the wait too long.
    pub async fn enter(&self) -> Result<OwnedSemaphorePermit, Busy> {
        let busy = Busy {
            retry_after: Duration::from_secs(1),
        };
        if let Ok(p) = self.permits.clone().try_acquire_owned() {
            return Ok(p);
        }
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(busy);
        }
        let got = tokio::time::timeout(self.max_wait, self.permits.clone().acquire_owned()).await;
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        match got {
            Ok(Ok(p)) => Ok(p),
            _ => Err(busy),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    failures: u32,
}

/// Failed attempts per key (a client address, a username) in a fixed window.
#[derive(Debug)]
pub struct Throttle {
    windows: Mutex<HashMap<String, Window>>,
    limit: u32,
    window: Duration,
    max_keys: usize,
}

impl Throttle {
    pub fn new(limit: u32, window: Duration, max_keys: usize) -> Throttle {
        Throttle {
            windows: Mutex::new(HashMap::new()),
            limit,
            window,
            max_keys,
        }
    }

    /// `Err` with the time left when `key` has used up its failures.
    pub fn check(&self, key: &str, now: Instant) -> Result<(), Busy> {
        let Ok(windows) = self.windows.lock() else {
            return Ok(());
        };
        match windows.get(key) {
            Some(w) if now.duration_since(w.started) < self.window && w.failures >= self.limit => {
                let left = self.window.saturating_sub(now.duration_since(w.started));
                Err(Busy {
                    retry_after: left.max(Duration::from_secs(1)),
                })
            }
            _ => Ok(()),
        }
    }

    /// Counts a failure of `key`.
    pub fn fail(&self, key: &str, now: Instant) {
        let Ok(mut windows) = self.windows.lock() else {
            return;
        };
        if windows.len() >= self.max_keys && !windows.contains_key(key) {
            let window = self.window;
            windows.retain(|_, w| now.duration_since(w.started) < window);
            if windows.len() >= self.max_keys {
                tracing::warn!(keys = windows.len(), "login throttle table full; cleared");
                windows.clear();
            }
        }
        let w = windows.entry(key.to_owned()).or_insert(Window {
            started: now,
            failures: 0,
        });
        if now.duration_since(w.started) >= self.window {
            *w = Window {
                started: now,
                failures: 0,
            };
        }
        w.failures = w.failures.saturating_add(1);
    }

    /// Keys held now (for the memory bound's test).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.windows.lock().map_or(0, |w| w.len())
    }
}

/// The server's login limits: by default 30 failures a minute per address
/// and 10 per username ([`LoginLimits::DEFAULT`]).
#[derive(Debug)]
pub struct LoginLimits {
    pub gate: Gate,
    pub by_address: Throttle,
    pub by_username: Throttle,
}

/// Failed logins allowed a minute, per client address and per username.
#[derive(Debug, Clone, Copy)]
pub struct FailureLimits {
    pub per_address: u32,
    pub per_username: u32,
}

impl LoginLimits {
    pub const DEFAULT: FailureLimits = FailureLimits {
        per_address: 30,
        per_username: 10,
    };

    /// The limits with `f` failures a minute (`VOUCH_LOGIN_FAILURES_PER_ADDRESS`,
    /// `VOUCH_LOGIN_FAILURES_PER_USER`: many users behind one address, or a
    /// test client that tries bad credentials on purpose).
    pub fn new(f: FailureLimits) -> Self {
        LoginLimits {
            gate: Gate::per_core(),
            by_address: Throttle::new(f.per_address.max(1), Duration::from_secs(60), 100_000),
            by_username: Throttle::new(f.per_username.max(1), Duration::from_secs(60), 100_000),
        }
    }
}

impl Default for LoginLimits {
    fn default() -> Self {
        LoginLimits::new(LoginLimits::DEFAULT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_past_the_limit_wait_for_the_window() {
        let t = Throttle::new(3, Duration::from_secs(60), 10);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(t.check("ip:1", t0).is_ok());
            t.fail("ip:1", t0);
        }
        let busy = t.check("ip:1", t0 + Duration::from_secs(20)).unwrap_err();
        assert_eq!(busy.retry_after, Duration::from_secs(40));
        assert!(t.check("ip:2", t0).is_ok(), "other keys are not affected");
        assert!(t.check("ip:1", t0 + Duration::from_secs(60)).is_ok());
    }

    #[test]
    fn the_table_stays_bounded() {
        let t = Throttle::new(3, Duration::from_secs(60), 100);
        let t0 = Instant::now();
        for i in 0..10_000 {
            t.fail(&format!("ip:{i}"), t0);
        }
        assert!(t.len() <= 100);
    }

    #[tokio::test]
    async fn the_gate_admits_its_slots_and_refuses_past_its_queue() {
        let gate = std::sync::Arc::new(Gate::new(2, 1, Duration::from_millis(100)));
        let a = gate.enter().await.unwrap();
        let _b = gate.enter().await.unwrap();
        // One may wait; it times out while both slots stay taken.
        let waiter = {
            let g = gate.clone();
            tokio::spawn(async move { g.enter().await.map(drop) })
        };
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(gate.enter().await.is_err(), "the queue is full");
        assert!(waiter.await.unwrap().is_err(), "the wait is bounded");
        drop(a);
        assert!(gate.enter().await.is_ok(), "a freed slot is taken");
    }
}
