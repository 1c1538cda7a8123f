//! Acknowledged delivery over RELP: a window of messages in flight, each kept until the
//! receiver acknowledged its transaction, and after a broken connection a new session that
//! sends again what was sent but not acknowledged. Owns the session, the window, and the
//! counts (`sent`, `acknowledged`, `resent`) that tell how many duplicates a receiver may hold.
//!
//! It never loses a message: [`Delivery::deliver`] returns how far acknowledgements reached, and
//! its callers release (or checkpoint) only that far.

use crate::connection::Connection;
use crate::events::{DeliveryEvent, DrainEvent, Events};
use crate::relp::{RelpError, Session};
use crate::tls::TlsClient;
use std::collections::VecDeque;
use std::fmt;

/// Default number of messages sent ahead of their acknowledgements (librelp's and omrelp's
/// default window too).
pub const DEFAULT_WINDOW: usize = 128;

/// Free slots in the window before it is refilled: half of it.
fn refill_threshold(window: usize) -> usize {
    (window / 2).max(1)
}

/// How far a batch got, reported to the caller of [`Delivery::deliver`] as it moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// The first this-many messages of the batch are about to be handed to the connection (said
    /// before the bytes leave, so a record of it covers everything the receiver may hold).
    Sending(usize),
    /// The first this-many messages of the batch are acknowledged.
    Acknowledged(usize),
}

/// Counts over the life of a delivery.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Messages sent (a message sent again counts again).
    pub sent: u64,
    /// Messages the receiver acknowledged.
    pub acknowledged: u64,
    /// Messages sent again after a broken connection: sent before, never acknowledged. The
    /// receiver may have kept them the first time too, so this bounds the duplicates it holds.
    pub resent: u64,
}

/// What a delivery sent, got acknowledged and sent again, for the operator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Totals {
    /// The receiver, `HOST:PORT`.
    pub address: String,
    /// The counts.
    pub counts: Counts,
}

impl fmt::Display for Totals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = self.counts;
        write!(
            f,
            "RELP to {}: sent {}, acknowledged {}, resent {} (the receiver may hold up to {} \
             duplicates)",
            self.address, c.sent, c.acknowledged, c.resent, c.resent
        )
    }
}

/// Why a delivery stopped short.
#[derive(Debug)]
pub struct DeliveryError {
    /// The receiver, `HOST:PORT`.
    pub address: String,
    /// Messages of the batch acknowledged before the failure (a prefix).
    pub acknowledged: usize,
    /// Messages of the batch sent but not acknowledged when it failed.
    pub unacknowledged: usize,
    /// The cause.
    pub source: RelpError,
}

impl fmt::Display for DeliveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "RELP delivery to {} failed with {} messages sent and not acknowledged",
            self.address, self.unacknowledged
        )
    }
}

impl std::error::Error for DeliveryError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// While it lives, the calling thread runs under Linux's `SCHED_BATCH` policy (when it ran under
/// the default one), which it gets back on drop.
///
/// Why: waiting for acknowledgements, the delivering thread wakes up for every segment of
/// answers, and the kernel runs a woken thread on its waker's CPU at once, preempting it. On
/// loopback (or any host where the receiver shares the CPUs) the waker is the receiver, in the
/// middle of its messages: measured with rsyslog, each of the drain's ~24,000 wake-ups per
/// 100,000 messages cost `imrelp` an involuntary context switch and a wait for the CPU, and the
/// rate halved. A `SCHED_BATCH` thread is woken the same but does not preempt: it runs when the
/// CPU is free or its turn comes, and then takes every answer that arrived meanwhile (~1,000
/// wake-ups per 100,000 messages). The same priority and nice value: only the wake-up
/// preemption goes. Unprivileged, per thread; if the kernel refuses, nothing changes.
#[derive(Debug)]
struct BatchScheduling {
    switched: bool,
}

impl BatchScheduling {
    fn enter() -> BatchScheduling {
        // SAFETY: sched_getscheduler only reads the policy of the thread it names (0: this one).
        let policy = unsafe { libc::sched_getscheduler(0) };
        BatchScheduling {
            switched: policy == libc::SCHED_OTHER && set_policy(libc::SCHED_BATCH),
        }
    }
}

impl Drop for BatchScheduling {
    fn drop(&mut self) {
        if self.switched {
            set_policy(libc::SCHED_OTHER);
        }
    }
}

/// Sets the calling thread's policy (static priority 0); whether the kernel agreed.
fn set_policy(policy: libc::c_int) -> bool {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `param` is a live local the kernel only reads; pid 0 names the calling thread.
    unsafe { libc::sched_setscheduler(0, policy, &param) == 0 }
}

/// A RELP client that delivers batches of messages, reconnecting as needed.
#[derive(Debug)]
pub struct Delivery {
    address: String,
    tls: Option<TlsClient>,
    window: usize,
    session: Option<Session<Connection>>,
    /// Messages sent on a connection that broke before they were acknowledged: the next
    /// batch's first this-many messages are being sent again.
    unacknowledged_at_break: usize,
    counts: Counts,
    events: Events,
}

impl Delivery {
    /// A delivery to `address` (`HOST:PORT`), over TLS if `tls` is given, with `window`
    /// messages at most in flight, telling `events` what the operator should know. Connects on
    /// first use.
    pub fn new(address: String, tls: Option<TlsClient>, window: usize, events: Events) -> Delivery {
        Delivery {
            address,
            tls,
            window: window.max(1),
            session: None,
            unacknowledged_at_break: 0,
            counts: Counts::default(),
            events,
        }
    }

    /// Counts so far.
    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// The receiver, `HOST:PORT`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Delivers `messages` in order. `on_progress` hears before each write how many leading
    /// messages will have been sent, and each time acknowledgements advance how many leading
    /// messages are acknowledged. Returns once all are acknowledged, or on the first failure
    /// (the connection is then dropped; call again with the messages from the acknowledged
    /// prefix on, and those sent before are counted as resent).
    pub fn deliver(
        &mut self,
        messages: &[&[u8]],
        mut on_progress: impl FnMut(Progress),
    ) -> Result<(), DeliveryError> {
        let mut sent = 0usize;
        let mut acked = 0usize;
        let resending = std::mem::take(&mut self.unacknowledged_at_break);
        let _batch = (!messages.is_empty()).then(BatchScheduling::enter);
        let result = self.run(messages, resending, &mut sent, &mut acked, &mut on_progress);
        result.map_err(|source| {
            self.session = None;
            // Messages sent but not acknowledged, on this connection or an earlier one.
            self.unacknowledged_at_break = sent.max(resending) - acked;
            DeliveryError {
                address: self.address.clone(),
                acknowledged: acked,
                unacknowledged: sent - acked,
                source,
            }
        })
    }

    fn run(
        &mut self,
        messages: &[&[u8]],
        resending: usize,
        sent: &mut usize,
        acked: &mut usize,
        on_progress: &mut impl FnMut(Progress),
    ) -> Result<(), RelpError> {
        if messages.is_empty() {
            return Ok(());
        }
        if self.session.is_none() {
            let connection = Connection::open(&self.address, self.tls.as_ref())?;
            self.session = Some(Session::open(connection)?);
            if resending > 0 {
                self.events
                    .emit(DrainEvent::Delivery(DeliveryEvent::Resending {
                        address: self.address.clone(),
                        messages: resending,
                    }));
            }
        }
        let session = self.session.as_mut().expect("opened above");
        // Transaction numbers in flight, oldest first; acknowledgements come in order, but a
        // receiver is free to answer out of order, so each is matched by number.
        let mut in_flight: VecDeque<(u32, bool)> = VecDeque::with_capacity(self.window);
        let mut answers = Vec::with_capacity(self.window);
        while *acked < messages.len() {
            // Refill the window in bulk: topping it up by each message as its acknowledgement
            // arrives puts the two sides in lock step, one write, one read and one wake-up of
            // the receiver per message (measured: a fifth of plain TCP's rate). Waiting until
            // half the window is free sends many messages per write and reads many answers per
            // read, while the other half keeps the receiver busy.
            let free = self.window - in_flight.len();
            let unsent = messages.len() - *sent;
            if free >= refill_threshold(self.window) || (unsent > 0 && unsent <= free) {
                Self::fill(
                    session,
                    messages,
                    resending,
                    self.window,
                    &mut in_flight,
                    sent,
                    &mut self.counts,
                );
                on_progress(Progress::Sending(*sent));
            }
            session.flush()?;
            answers.clear();
            session.acknowledgements(&mut answers)?;
            for &txnr in &answers {
                // Transaction numbers are consecutive, so the answer's place in the window is
                // its distance from the oldest; search only if the receiver answered oddly.
                let oldest = in_flight.front().map_or(0, |&(t, _)| t);
                let guess = txnr.wrapping_sub(oldest) as usize;
                let entry = match in_flight.get_mut(guess) {
                    Some(entry) if entry.0 == txnr => Some(entry),
                    _ => in_flight.iter_mut().find(|(t, _)| *t == txnr),
                };
                match entry {
                    Some(entry) => entry.1 = true,
                    None => return Err(RelpError::AnswerNotInFlight { txnr }),
                }
            }
            let before = *acked;
            while in_flight.front().is_some_and(|&(_, done)| done) {
                in_flight.pop_front();
                *acked += 1;
            }
            if *acked > before {
                self.counts.acknowledged += (*acked - before) as u64;
                on_progress(Progress::Acknowledged(*acked));
            }
        }
        Ok(())
    }

    /// Queues messages from `sent` on until `window` are in flight or none is left.
    fn fill(
        session: &mut Session<Connection>,
        messages: &[&[u8]],
        resending: usize,
        window: usize,
        in_flight: &mut VecDeque<(u32, bool)>,
        sent: &mut usize,
        counts: &mut Counts,
    ) {
        while *sent < messages.len() && in_flight.len() < window {
            let txnr = session.queue_syslog(messages[*sent]);
            in_flight.push_back((txnr, false));
            *sent += 1;
            counts.sent += 1;
            if *sent <= resending {
                counts.resent += 1;
            }
        }
    }

    /// Declares that the first `n` messages of the next batch were sent before (by a previous
    /// drain) and never acknowledged: they count as resent.
    pub fn assume_unacknowledged(&mut self, n: u64) {
        self.unacknowledged_at_break = n as usize;
    }

    /// What was sent, acknowledged and sent again, for the operator.
    pub fn totals(&self) -> Totals {
        Totals {
            address: self.address.clone(),
            counts: self.counts,
        }
    }

    /// Closes the session politely, if one is open.
    pub fn close(&mut self) {
        if let Some(s) = self.session.take() {
            s.close();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> libc::c_int {
        // SAFETY: reads the calling thread's policy only.
        unsafe { libc::sched_getscheduler(0) }
    }

    #[test]
    fn waiting_for_acknowledgements_runs_batch_scheduled_and_gives_the_policy_back() {
        // A thread of its own: the policy is per thread, and other tests run beside this one.
        std::thread::spawn(|| {
            assert_eq!(policy(), libc::SCHED_OTHER);
            {
                let guard = BatchScheduling::enter();
                assert!(guard.switched, "the kernel refused SCHED_BATCH");
                assert_eq!(policy(), libc::SCHED_BATCH);
            }
            assert_eq!(policy(), libc::SCHED_OTHER);
            // A thread someone else scheduled otherwise is left as it is.
            assert!(set_policy(libc::SCHED_IDLE));
            assert!(!BatchScheduling::enter().switched);
            assert_eq!(policy(), libc::SCHED_IDLE);
        })
        .join()
        .unwrap();
    }
}
