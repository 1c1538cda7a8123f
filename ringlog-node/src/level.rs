//! The `level` argument of `writeRecord`: a ringlog level by name (`'error'`, `'warn'`,
//! `'info'`, `'debug'`, `'trace'`, `'none'`, any case) or by number (0 none ... 5 trace),
//! read without allocating.

use napi::sys;
use ringlog_writer::Level;

/// Reads a level, or `None` if `value` is no level.
///
/// # Safety
/// `env` and `value` must be live handles of the current native call.
pub(crate) unsafe fn read(env: sys::napi_env, value: sys::napi_value) -> Option<Level> {
    let mut number = 0f64;
    // SAFETY: valid handles (caller); a non-number answers `napi_number_expected`.
    if unsafe { sys::napi_get_value_double(env, value, &mut number) } == sys::Status::napi_ok {
        return match number {
            n if n.fract() != 0.0 => None,
            n if (0.0..=5.0).contains(&n) => Some(Level::from_u8(n as u8)),
            _ => None,
        };
    }
    // Longest name is 5 bytes: 8 leaves room to see that a longer string is none of them.
    let mut name = [0u8; 8];
    let mut len = 0usize;
    // SAFETY: valid handles; node writes at most `name.len()` bytes, NUL included.
    let status = unsafe {
        sys::napi_get_value_string_utf8(env, value, name.as_mut_ptr().cast(), name.len(), &mut len)
    };
    if status != sys::Status::napi_ok {
        return None;
    }
    by_name(&name[..len])
}

/// A level from its name, ASCII case ignored.
pub(crate) fn by_name(name: &[u8]) -> Option<Level> {
    [
        Level::None,
        Level::Error,
        Level::Warn,
        Level::Info,
        Level::Debug,
        Level::Trace,
    ]
    .into_iter()
    .find(|level| name_of(*level).as_bytes().eq_ignore_ascii_case(name))
}

fn name_of(level: Level) -> &'static str {
    match level {
        Level::None => "none",
        other => other.as_str(),
    }
}
