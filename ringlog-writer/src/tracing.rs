//! [`tracing`] integrations (cargo feature `tracing`), two ways:
//!
//! - [`Writer`] itself is a `MakeWriter` for `tracing_subscriber::fmt`
//!   (`fmt().with_writer(writer)`), which keeps formatting events as it always does; each event becomes exactly one record (the writer it makes
//!   buffers what the fmt layer writes and commits it as one record when dropped), with the
//!   event's level and target in the record header.
//! - [`RingLayer`]: a `Layer` that writes each event as one structured record itself: level and
//!   target in the header, and the message `span1:span2: message key=value key2="text"` (the
//!   event's span context from the root, its message, its other fields), formatted straight
//!   into the ring. The drain's `text` and `json` formats show it with time, level, pid, tid
//!   and target.
//!
//! ```no_run
//! use tracing_subscriber::prelude::*;
//! use ringlog_writer::tracing::RingLayer;
//!
//! // The structured layer:
//! tracing_subscriber::registry().with(RingLayer::open("myservice")?).init();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//! ```no_run
//! // Or the fmt layer's own formatting (the drain adds time, level and target):
//! let writer = ringlog_writer::Writer::open("myservice")?;
//! tracing_subscriber::fmt()
//!     .with_writer(writer.clone()) // keep `writer` for stats() and drain_alive()
//!     .with_ansi(false)
//!     .without_time()
//!     .with_level(false)
//!     .with_target(false)
//!     .init();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Neither allocates per event on the steady path: buffers are per thread and reused. Neither
//! writes the file (the drain does). Write errors have nowhere to go from a subscriber: a
//! record dropped on a full ring is counted (see [`Writer::stats`]); one larger than the ring's
//! max record size is cut to fit and marked `[ringlog: truncated, N bytes in all]`.

use crate::formatted::{give_back, take_buffer, write_fitted, write_formatted};
use crate::{Level, OpenError, Writer};
use ::tracing::field::{Field, Visit};
use ::tracing::span::{Attributes, Id, Record};
use ::tracing::{Event, Metadata, Subscriber};
use std::fmt;
use std::io;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

/// The ringlog level of a `tracing` level (they correspond one to one).
pub fn level(level: ::tracing::Level) -> Level {
    if level == ::tracing::Level::ERROR {
        Level::Error
    } else if level == ::tracing::Level::WARN {
        Level::Warn
    } else if level == ::tracing::Level::INFO {
        Level::Info
    } else if level == ::tracing::Level::DEBUG {
        Level::Debug
    } else {
        Level::Trace
    }
}

/// `Writer` is a `tracing_subscriber::fmt::MakeWriter`: one event, one record.
///
/// Each writer it makes collects the bytes written to it in a reused thread-local buffer and
/// writes them as one record when dropped (the fmt layer makes one writer per event, writes the
/// formatted event, drops it). `flush` does not end the record. One trailing newline is
/// removed (the drain ends every record's line itself). Writers made for an event
/// (`make_writer_for`) carry its level and target into the record header.
impl<'a> MakeWriter<'a> for Writer {
    type Writer = EventWriter<'a>;

    fn make_writer(&'a self) -> EventWriter<'a> {
        EventWriter::new(self, Level::None, "")
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> EventWriter<'a> {
        EventWriter::new(self, level(*meta.level()), meta.target())
    }
}

/// The name the `MakeWriter` had before [`Writer`] became one itself:
/// `RingMakeWriter::open(name)` is `Writer::open(name)`.
pub type RingMakeWriter = Writer;

/// Collects one event's bytes and writes them as one record when dropped. Made by
/// [`Writer`]'s `MakeWriter` implementation.
#[derive(Debug)]
pub struct EventWriter<'a> {
    writer: &'a Writer,
    level: Level,
    /// The target, then the message bytes written so far.
    buf: Vec<u8>,
    target_len: usize,
    /// Whether anything was written (an empty event still makes a record).
    wrote: bool,
}

impl<'a> EventWriter<'a> {
    fn new(writer: &'a Writer, level: Level, target: &str) -> EventWriter<'a> {
        let mut buf = take_buffer();
        let target = &target.as_bytes()[..target.len().min(u16::MAX as usize)];
        buf.extend_from_slice(target);
        EventWriter {
            writer,
            level,
            target_len: target.len(),
            buf,
            wrote: false,
        }
    }
}

impl io::Write for EventWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        self.wrote = true;
        Ok(bytes.len())
    }
    /// Does not end the record: the record is written when the writer is dropped.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for EventWriter<'_> {
    fn drop(&mut self) {
        if self.wrote {
            let (target, message) = self.buf.split_at(self.target_len);
            let message = message.strip_suffix(b"\n").unwrap_or(message);
            // Cut at a byte boundary of a `&str`, so always valid.
            let target = std::str::from_utf8(target).unwrap_or("");
            // Errors: see the module docs.
            let _ = write_fitted(self.writer, self.level, target, message);
        }
        give_back(std::mem::take(&mut self.buf));
    }
}

/// A `tracing_subscriber::Layer` that writes each event as one structured record. See the
/// [module docs](self) for the record's layout.
///
/// Needs a subscriber that stores spans (`tracing_subscriber::registry()`), for the span
/// context. Filter it as any layer (`.with_filter(LevelFilter::INFO)`, or a global filter).
#[derive(Debug, Clone)]
pub struct RingLayer {
    writer: Writer,
    span_fields: bool,
}

impl RingLayer {
    /// Writes through `writer`.
    pub fn new(writer: Writer) -> RingLayer {
        RingLayer {
            writer,
            span_fields: false,
        }
    }
    /// Opens (or creates) ring `name` with default options.
    pub fn open(name: &str) -> Result<RingLayer, OpenError> {
        Ok(RingLayer::new(Writer::open(name)?))
    }
    /// Also writes each span's fields in the span context: `span1{id=7}:span2: message`
    /// (default off: only span names). Costs an allocation per span created, not per event.
    pub fn with_span_fields(mut self, on: bool) -> Self {
        self.span_fields = on;
        self
    }
    /// The writer it writes through (for [`Writer::stats`]).
    pub fn writer(&self) -> &Writer {
        &self.writer
    }
}

/// A span's fields formatted as `key=value ...`, kept in its extensions when
/// [`RingLayer::with_span_fields`] is on.
#[derive(Debug, Default)]
struct SpanFields(String);

impl<S> Layer<S> for RingLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if !self.span_fields {
            return;
        }
        let Some(span) = ctx.span(id) else { return };
        let mut text = String::new();
        attrs.record(&mut Fields::all(&mut text));
        span.extensions_mut().insert(SpanFields(text));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if !self.span_fields {
            return;
        }
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        if let Some(SpanFields(text)) = extensions.get_mut::<SpanFields>() {
            let mut fields = Fields::all(text);
            fields.space = !fields.out.is_empty();
            values.record(&mut fields);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        // Errors: see the module docs.
        let _ = write_formatted(&self.writer, level(*meta.level()), meta.target(), |w| {
            let mut space = false;
            if let Some(scope) = ctx.event_scope(event) {
                for span in scope.from_root() {
                    w.write_str(span.name())?;
                    if self.span_fields {
                        if let Some(SpanFields(text)) = span.extensions().get::<SpanFields>() {
                            if !text.is_empty() {
                                write!(w, "{{{text}}}")?;
                            }
                        }
                    }
                    w.write_char(':')?;
                    space = true;
                }
            }
            let mut message = Message {
                out: w,
                space,
                wrote: false,
                result: Ok(()),
            };
            event.record(&mut message);
            message.result?;
            let space = space || message.wrote;
            let mut fields = Fields {
                out: w,
                space,
                skip_message: true,
                result: Ok(()),
            };
            event.record(&mut fields);
            fields.result
        });
    }
}

/// Writes an event's `message` field.
struct Message<'w> {
    out: &'w mut dyn fmt::Write,
    /// Whether to write a space first.
    space: bool,
    wrote: bool,
    result: fmt::Result,
}

impl Message<'_> {
    fn write(&mut self, value: fmt::Arguments<'_>) {
        if self.result.is_ok() {
            if self.space {
                self.result = self.out.write_char(' ');
            }
            if self.result.is_ok() {
                self.result = self.out.write_fmt(value);
            }
            self.wrote = true;
        }
    }
}

impl Visit for Message<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.write(format_args!("{value}"));
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            // The message is `format_args!(...)`, whose Debug is its Display.
            self.write(format_args!("{value:?}"));
        }
    }
}

/// Writes fields as ` key=value` (strings quoted and escaped, as `Debug` does).
struct Fields<'w, W: fmt::Write + ?Sized> {
    out: &'w mut W,
    /// Whether to write a space before the next field.
    space: bool,
    skip_message: bool,
    result: fmt::Result,
}

impl<'w> Fields<'w, String> {
    /// Every field, message included (for span fields).
    fn all(out: &'w mut String) -> Self {
        Fields {
            out,
            space: false,
            skip_message: false,
            result: Ok(()),
        }
    }
}

impl<W: fmt::Write + ?Sized> Fields<'_, W> {
    fn write(&mut self, field: &Field, value: fmt::Arguments<'_>) {
        let name = field.name();
        // `log.*` are the fields tracing-log adds to events that came from `log`.
        if self.result.is_err()
            || (self.skip_message && name == "message")
            || name.starts_with("log.")
        {
            return;
        }
        let name = name.strip_prefix("r#").unwrap_or(name);
        self.result = if self.space {
            write!(self.out, " {name}={value}")
        } else {
            write!(self.out, "{name}={value}")
        };
        self.space = true;
    }
}

impl<W: fmt::Write + ?Sized> Visit for Fields<'_, W> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.write(field, format_args!("{value:?}"));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.write(field, format_args!("{value}"));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.write(field, format_args!("{value:?}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formatted::testing::{read_all, ring, Read};
    use std::io::Write as _;
    use tracing_subscriber::prelude::*;

    #[test]
    fn every_tracing_level_maps_to_the_ringlog_level_of_the_same_name() {
        use ::tracing::Level as T;
        for l in [T::ERROR, T::WARN, T::INFO, T::DEBUG, T::TRACE] {
            assert_eq!(level(l).as_str(), l.as_str(), "{l:?}");
        }
        assert!(level(T::ERROR) < level(T::WARN) && level(T::DEBUG) < level(T::TRACE));
    }

    #[test]
    fn one_writer_with_many_writes_makes_exactly_one_record() {
        let (_dir, path, writer) = ring();
        let make = writer;
        {
            let mut w = make.make_writer();
            w.write_all(b"part one, ").unwrap();
            w.flush().unwrap();
            w.write_all(b"part two, ").unwrap();
            // `write!` makes one `write` call per piece: "part ", "three".
            let which = "three";
            write!(w, "part {which}").unwrap();
            w.write_all(b"\n").unwrap();
        }
        {
            let _unused = make.make_writer();
        }
        let got = read_all(&path);
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].message, "part one, part two, part three");
    }

    #[test]
    fn the_fmt_layer_writes_each_event_as_one_record_with_its_level_and_target() {
        let (_dir, path, writer) = ring();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(writer)
            .with_ansi(false)
            .without_time()
            .with_level(false)
            .with_target(false)
            .finish();
        // 100 x (4 KB + 1 line) fits the 1 MiB test ring: nothing needs a drain.
        let long = "L".repeat(4000);
        ::tracing::subscriber::with_default(subscriber, || {
            for i in 0..100 {
                ::tracing::info!(i, "event {i}");
                ::tracing::warn!(target: "other", payload = %long, "big");
            }
        });
        let got = read_all(&path);
        assert_eq!(got.len(), 200);
        for (i, pair) in got.chunks(2).enumerate() {
            assert_eq!(pair[0].level, Level::Info);
            assert_eq!(pair[0].target, module_path!());
            assert_eq!(pair[0].message, format!("event {i} i={i}"));
            assert_eq!(pair[1].level, Level::Warn);
            assert_eq!(pair[1].target, "other");
            assert_eq!(pair[1].message, format!("big payload={long}"));
        }
    }

    fn layer_records(span_fields: bool, body: impl FnOnce()) -> Vec<Read> {
        let (_dir, path, writer) = ring();
        let subscriber = tracing_subscriber::registry()
            .with(RingLayer::new(writer).with_span_fields(span_fields));
        ::tracing::subscriber::with_default(subscriber, body);
        read_all(&path)
    }

    #[test]
    fn the_layer_writes_span_context_message_and_fields() {
        let got = layer_records(false, || {
            ::tracing::info!("no spans");
            let outer = ::tracing::info_span!("outer", id = 7);
            let _o = outer.enter();
            let inner = ::tracing::debug_span!("inner");
            let _i = inner.enter();
            ::tracing::warn!(target: "db", rows = 3, who = "a b", ok = true, "slow {}", "query");
            ::tracing::error!(code = 5);
            ::tracing::trace!(r#type = 1.5, "t");
        });
        let got: Vec<_> = got
            .into_iter()
            .map(|r| (r.level, r.target, r.message))
            .collect();
        let row = |l, t: &str, m: &str| (l, t.to_owned(), m.to_owned());
        let me = module_path!();
        assert_eq!(
            got,
            [
                row(Level::Info, me, "no spans"),
                row(
                    Level::Warn,
                    "db",
                    r#"outer:inner: slow query rows=3 who="a b" ok=true"#
                ),
                row(Level::Error, me, "outer:inner: code=5"),
                row(Level::Trace, me, "outer:inner: t type=1.5"),
            ]
        );
    }

    #[test]
    fn the_layer_can_write_span_fields() {
        let got = layer_records(true, || {
            let outer = ::tracing::info_span!("outer", id = 7, later = ::tracing::field::Empty);
            outer.record("later", "x");
            let _o = outer.enter();
            let _i = ::tracing::info_span!("inner").entered();
            ::tracing::info!(n = 1, "hello");
        });
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].message, r#"outer{id=7 later="x"}:inner: hello n=1"#);
    }

    #[test]
    fn an_event_larger_than_the_claim_hint_is_still_one_record() {
        let big = "q".repeat(200_000);
        let got = layer_records(false, || {
            for _ in 0..3 {
                ::tracing::info!(big = %big, "m");
            }
        });
        assert_eq!(got.len(), 3);
        assert!(got.iter().all(|r| r.message == format!("m big={big}")));
    }
}
