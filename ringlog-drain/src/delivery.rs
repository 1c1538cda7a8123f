//! Acknowledged delivery over RELP: a window of messages in flight, each kept until the
//! receiver acknowledged its transaction, and after a broken connection a new session that
//! sends again what was sent but not acknowledged. Owns the session, the window, and the
//! counts (`sent`, `acknowledged`, `resent`) that tell how many duplicates a receiver may hold.
//!
//! It never loses a message: [`Delivery::deliver`] returns how far acknowledgements reached, and
//! its callers release (or checkpoint) only that far.

use crate::connection::Connection;
use crate::relp::{RelpError, Session};
use crate::tls::TlsClient;
use std::collections::VecDeque;
use std::fmt;

/// Default number of messages sent ahead of their acknowledgements (librelp's and omrelp's
/// default window too).
pub const DEFAULT_WINDOW: usize = 128;

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
}

impl Delivery {
    /// A delivery to `address` (`HOST:PORT`), over TLS if `tls` is given, with `window`
    /// messages at most in flight. Connects on first use.
    pub fn new(address: String, tls: Option<TlsClient>, window: usize) -> Delivery {
        Delivery {
            address,
            tls,
            window: window.max(1),
            session: None,
            unacknowledged_at_break: 0,
            counts: Counts::default(),
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

    /// Delivers `messages` in order. `on_acknowledged(n)` is called each time acknowledgements
    /// advance, with the number of leading messages acknowledged so far. Returns once all are
    /// acknowledged, or on the first failure (the connection is then dropped; call again with
    /// the messages from the acknowledged prefix on, and those sent before are counted as
    /// resent).
    pub fn deliver(
        &mut self,
        messages: &[&[u8]],
        mut on_acknowledged: impl FnMut(usize),
    ) -> Result<(), DeliveryError> {
        let mut sent = 0usize;
        let mut acked = 0usize;
        let resending = std::mem::take(&mut self.unacknowledged_at_break);
        let result = self.run(
            messages,
            resending,
            &mut sent,
            &mut acked,
            &mut on_acknowledged,
        );
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
        on_acknowledged: &mut impl FnMut(usize),
    ) -> Result<(), RelpError> {
        if messages.is_empty() {
            return Ok(());
        }
        if self.session.is_none() {
            let connection = Connection::open(&self.address, self.tls.as_ref())?;
            self.session = Some(Session::open(connection)?);
            if resending > 0 {
                eprintln!(
                    "ringlog-drain: RELP session with {} open; sending again {resending} messages \
                     sent before and never acknowledged (the receiver may hold them twice)",
                    self.address
                );
            }
        }
        let session = self.session.as_mut().expect("opened above");
        // Transaction numbers in flight, oldest first; acknowledgements come in order, but a
        // receiver is free to answer out of order, so each is matched by number.
        let mut in_flight: VecDeque<(u32, bool)> = VecDeque::with_capacity(self.window);
        let mut answers = Vec::with_capacity(self.window);
        while *acked < messages.len() {
            while *sent < messages.len() && in_flight.len() < self.window {
                let txnr = session.queue_syslog(messages[*sent]);
                in_flight.push_back((txnr, false));
                *sent += 1;
                self.counts.sent += 1;
                if *sent <= resending {
                    self.counts.resent += 1;
                }
            }
            session.flush()?;
            answers.clear();
            session.acknowledgements(&mut answers)?;
            for &txnr in &answers {
                match in_flight.iter_mut().find(|(t, _)| *t == txnr) {
                    Some(entry) => entry.1 = true,
                    None => {
                        return Err(RelpError::Protocol(format!(
                            "acknowledgement of transaction {txnr}, which is not in flight"
                        )))
                    }
                }
            }
            let before = *acked;
            while in_flight.front().is_some_and(|&(_, done)| done) {
                in_flight.pop_front();
                *acked += 1;
            }
            if *acked > before {
                self.counts.acknowledged += (*acked - before) as u64;
                on_acknowledged(*acked);
            }
        }
        Ok(())
    }

    /// Declares that the first `n` messages of the next batch were sent before (by a previous
    /// drain) and never acknowledged: they count as resent.
    pub fn assume_unacknowledged(&mut self, n: u64) {
        self.unacknowledged_at_break = n as usize;
    }

    /// One line for the operator: what was sent, acknowledged and sent again.
    pub fn totals(&self) -> String {
        let c = self.counts;
        format!(
            "RELP to {}: sent {}, acknowledged {}, resent {} (the receiver may hold up to {} \
             duplicates)",
            self.address, c.sent, c.acknowledged, c.resent, c.resent
        )
    }

    /// Closes the session politely, if one is open.
    pub fn close(&mut self) {
        if let Some(s) = self.session.take() {
            s.close();
        }
    }
}
