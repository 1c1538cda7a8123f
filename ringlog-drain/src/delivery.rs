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

/// Bytes of answers that must arrive before the delivery loop can do anything: the shortest
/// acknowledgements of the oldest unanswered messages in flight, as many as must be answered
/// before the window is refilled (or all of them once nothing is left to send). Never more:
/// the connection sleeps until that many bytes are there (see [`Connection::await_bytes`]).
///
/// Why: woken for every segment of answers, the delivering thread cost the receiver a
/// cross-CPU wake-up inside its `send` about every third message (measured on loopback with
/// rsyslog on a quiet machine: 28,000-32,700 wake-ups per 100,000 messages).
fn awaited_bytes(in_flight: &VecDeque<(u32, bool)>, window: usize, unsent: usize) -> usize {
    let free = window - in_flight.len();
    let needed = if unsent == 0 {
        in_flight.len()
    } else {
        // The loop refills once half the window is free, or all that is left fits.
        (refill_threshold(window).min(unsent)).saturating_sub(free)
    };
    in_flight
        .iter()
        .filter(|&&(_, done)| !done)
        .take(needed.max(1))
        .map(|&(txnr, _)| crate::relp::shortest_acknowledgement(txnr))
        .sum::<usize>()
        .max(1)
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
#[non_exhaustive]
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
            let awaited = awaited_bytes(&in_flight, self.window, messages.len() - *sent);
            session.acknowledgements(&mut answers, awaited)?;
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

    use crate::relp::{self, shortest_acknowledgement};
    use std::io::{self, Read, Write};
    use std::net::{Shutdown, TcpListener};
    use std::sync::mpsc;
    use std::time::Duration;

    /// A RELP receiver on loopback that acknowledges every message with the shortest answer
    /// the specification allows (`TXNR rsp 3 200`), each in two writes of its own so that the
    /// client also reads answers cut in two; after `answers` acknowledgements it closes its
    /// side of the connection.
    fn terse_receiver(answers: usize) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            let (mut socket, _) = listener.accept().unwrap();
            socket.set_nodelay(true).unwrap();
            let mut received = Vec::new();
            let mut acknowledged = 0;
            let mut chunk = [0u8; 64 * 1024];
            loop {
                while let Some((frame, used)) = relp::parse(&received).unwrap() {
                    let (txnr, command) = (frame.txnr, frame.command.to_owned());
                    received.drain(..used);
                    let answer = match command.as_str() {
                        "open" => "200 OK\nrelp_version=0\ncommands=syslog",
                        "syslog" if acknowledged == answers => {
                            // A FIN, not a reset: read on until the client goes.
                            let _ = socket.shutdown(Shutdown::Write);
                            while matches!(socket.read(&mut chunk), Ok(n) if n > 0) {}
                            return;
                        }
                        _ => "200",
                    };
                    acknowledged += usize::from(command == "syslog");
                    let mut out = Vec::new();
                    relp::encode(&mut out, txnr, "rsp", answer.as_bytes());
                    let (head, tail) = out.split_at(out.len() / 2);
                    if socket
                        .write_all(head)
                        .and_then(|_| socket.write_all(tail))
                        .is_err()
                    {
                        return;
                    }
                }
                match socket.read(&mut chunk) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => received.extend_from_slice(&chunk[..n]),
                }
            }
        });
        address
    }

    /// Delivers `n` messages to `address` on a thread of its own; the result, or `None` if
    /// it has not come after a minute (a wait that would never end).
    fn deliver_to(address: String, n: usize) -> Option<Result<Counts, io::ErrorKind>> {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let messages: Vec<Vec<u8>> = (0..n).map(|i| format!("m{i}").into_bytes()).collect();
            let messages: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
            let mut delivery = Delivery::new(address, None, 128, Events::new("lowat"));
            let result = delivery.deliver(&messages, |_| {});
            let _ = tx.send(
                result
                    .map(|()| delivery.counts())
                    .map_err(|e| match e.source {
                        RelpError::Io(e) => e.kind(),
                        other => panic!("not an I/O error: {other}"),
                    }),
            );
        });
        rx.recv_timeout(Duration::from_secs(60)).ok()
    }

    /// The bytes of the shortest answers to `txnrs`, as a receiver would send them.
    fn terse(txnrs: impl Iterator<Item = u32>) -> usize {
        let mut out = Vec::new();
        for txnr in txnrs {
            relp::encode(&mut out, txnr, "rsp", b"200");
        }
        out.len()
    }

    #[test]
    fn a_wait_asks_for_no_more_than_the_shortest_answers_that_must_come() {
        assert_eq!(shortest_acknowledgement(7), terse(7..8));
        assert_eq!(
            shortest_acknowledgement(999_999_999),
            terse(999_999_999..1_000_000_000)
        );
        // A full window with more to send: the refill needs the oldest 64 answered.
        let mut in_flight: VecDeque<(u32, bool)> = (1..=128).map(|t| (t, false)).collect();
        assert_eq!(awaited_bytes(&in_flight, 128, 1_000), terse(1..=64));
        // Two answered out of order: they are not awaited, the two after the 64th are.
        in_flight[1].1 = true;
        in_flight[5].1 = true;
        let rest = (1..=66).filter(|&t| t != 2 && t != 6);
        assert_eq!(awaited_bytes(&in_flight, 128, 1_000), terse(rest));
        // Ten left to send, room for none: the refill waits for room for those ten.
        let full: VecDeque<(u32, bool)> = (1..=128).map(|t| (t, false)).collect();
        assert_eq!(awaited_bytes(&full, 128, 10), terse(1..=10));
        // Nothing left to send: every answer in flight, across the wrap of the numbers.
        let txnrs = || (999_999_995..=999_999_999).chain(1..=5);
        let tail: VecDeque<(u32, bool)> = txnrs().map(|t| (t, false)).collect();
        assert_eq!(awaited_bytes(&tail, 128, 0), terse(txnrs()));
    }

    #[test]
    fn windows_answered_tersely_and_in_pieces_are_delivered_whole() {
        // 1,000 messages: transaction numbers of 1 to 4 digits (answers of 12 to 15 bytes,
        // as few bytes as a wait may ask for), and a last window that is not full.
        let result = deliver_to(terse_receiver(usize::MAX), 1_000).expect("the delivery hung");
        let counts = result.expect("the delivery failed (waiting for bytes that never came?)");
        assert_eq!((counts.sent, counts.acknowledged), (1_000, 1_000));
    }

    #[test]
    fn a_receiver_that_hangs_up_mid_window_ends_the_wait() {
        // 100 answered, then the connection closes with 28 of the first window unanswered:
        // the wait must end on the close, not on the read timeout.
        let result = deliver_to(terse_receiver(100), 1_000).expect("the delivery hung");
        assert_eq!(result, Err(io::ErrorKind::UnexpectedEof));
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
