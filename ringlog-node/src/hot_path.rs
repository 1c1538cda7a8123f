//! The write calls, as plain N-API callbacks: `write(handle, message)`,
//! `writeRecord(handle, level, target, message)` and `writeLine(handle, level, line)`. Each
//! reads its arguments in place or into the writer's reused buffer and writes one record: no
//! allocation, no syscall, no lock. True when written, false when the full policy dropped the
//! record (counted; the drain reports it); any other failure throws.

use crate::handle::{self, WriterState};
use crate::js_bytes::{self, Bytes, NotBytes};
use crate::js_error::{guard, Failure};
use crate::{level, not_a_handle, open_writer};
use napi::{sys, Env};
use ringlog::Status;
use ringlog_writer::{Level, WriteError};
use std::ptr;

/// Adds the write calls to `exports`.
///
/// # Safety
/// `env` and `exports` must be the live handles of module initialisation.
pub(crate) unsafe fn install(env: sys::napi_env, exports: sys::napi_value) -> napi::Result<()> {
    let calls: [(&std::ffi::CStr, sys::napi_callback); 3] = [
        (c"write", Some(write)),
        (c"writeRecord", Some(write_record)),
        (c"writeLine", Some(write_line)),
    ];
    for (name, callback) in calls {
        let mut function = ptr::null_mut();
        // SAFETY: live env; `name` is NUL-terminated (length -1 = up to the NUL).
        let status = unsafe {
            sys::napi_create_function(
                env,
                name.as_ptr(),
                -1,
                callback,
                ptr::null_mut(),
                &mut function,
            )
        };
        let status = match status {
            // SAFETY: as above; `function` was just created.
            sys::Status::napi_ok => unsafe {
                sys::napi_set_named_property(env, exports, name.as_ptr(), function)
            },
            failed => failed,
        };
        if status != sys::Status::napi_ok {
            return Err(napi::Error::new(
                napi::Status::GenericFailure,
                format!("cannot install ringlog's {name:?}"),
            ));
        }
    }
    Ok(())
}

/// `write(handle, message)`: one record with no level and no target.
unsafe extern "C" fn write(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    // SAFETY: node calls this with the live env and callback info of the call.
    unsafe {
        call(env, info, |state, [message]: [sys::napi_value; 1]| {
            write_bytes(env, state, Level::None, None, message, false)
        })
    }
}

/// `writeRecord(handle, level, target, message)`: one record with a level and a target.
unsafe extern "C" fn write_record(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    // SAFETY: node calls this with the live env and callback info of the call.
    unsafe {
        call(
            env,
            info,
            |state, [level, target, message]: [sys::napi_value; 3]| {
                // SAFETY: live handles of this call.
                let level = level::read(env, level).ok_or_else(bad_level)?;
                write_bytes(env, state, level, Some(target), message, false)
            },
        )
    }
}

/// `writeLine(handle, level, line)`: one record of `line` without its trailing newline (what
/// pino hands a destination).
unsafe extern "C" fn write_line(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    // SAFETY: node calls this with the live env and callback info of the call.
    unsafe {
        call(env, info, |state, [level, line]: [sys::napi_value; 2]| {
            // SAFETY: live handles of this call.
            let level = level::read(env, level).ok_or_else(bad_level)?;
            write_bytes(env, state, level, None, line, true)
        })
    }
}

fn bad_level() -> Failure {
    Failure::new(
        Status::RINGLOG_BAD_ARGUMENT,
        "level must be 'error', 'warn', 'info', 'debug', 'trace', 'none' or a number 0 to 5",
    )
}

/// Reads the handle and `N` more arguments (missing ones are `undefined`), runs `body`, and
/// returns its answer as a JS boolean; a failure or a panic is thrown (returns null).
///
/// # Safety
/// `env` and `info` must be the live handles of the current callback.
unsafe fn call<const N: usize>(
    env: sys::napi_env,
    info: sys::napi_callback_info,
    body: impl FnOnce(&mut WriterState, [sys::napi_value; N]) -> Result<bool, Failure>,
) -> sys::napi_value {
    let wrapped = Env::from_raw(env);
    let answer = guard(&wrapped, || {
        let mut argv = [ptr::null_mut(); 4];
        let mut argc = N + 1;
        // SAFETY: live handles (caller); `argv` has room for `argc` <= 4 values.
        let status = unsafe {
            sys::napi_get_cb_info(
                env,
                info,
                &mut argc,
                argv.as_mut_ptr(),
                ptr::null_mut(),
                ptr::null_mut(),
            )
        };
        if status != sys::Status::napi_ok {
            return Err(Failure::new(
                Status::RINGLOG_IO,
                "cannot read the call's arguments",
            ));
        }
        let mut id = 0u32;
        // SAFETY: `argv[0]` is a live value of this call; a non-number answers an error.
        if unsafe { sys::napi_get_value_uint32(env, argv[0], &mut id) } != sys::Status::napi_ok {
            return Err(not_a_handle());
        }
        let args: [sys::napi_value; N] = std::array::from_fn(|i| argv[i + 1]);
        handle::with_state(id, |state| body(state, args)).ok_or_else(not_a_handle)?
    });
    match answer {
        Ok(value) => {
            let mut result = ptr::null_mut();
            // SAFETY: live env.
            unsafe { sys::napi_get_boolean(env, value, &mut result) };
            result
        }
        // Thrown already.
        Err(_) => ptr::null_mut(),
    }
}

/// The shared path of every write: read the arguments as bytes, write one record.
///
/// # Safety
/// `env`, `target` and `message` must be live handles of the current callback.
unsafe fn write_bytes(
    env: sys::napi_env,
    state: &mut WriterState,
    level: Level,
    target: Option<sys::napi_value>,
    message: sys::napi_value,
    strip_newline: bool,
) -> Result<bool, Failure> {
    let writer = open_writer(&state.writer)?;
    let max = writer.max_record() as usize;
    let too_large = |len| {
        Failure::from_error(&WriteError::TooLarge {
            len,
            max: max as u64,
        })
    };
    let scratch = &mut state.scratch;
    scratch.clear();
    let target = match target {
        None => None,
        // SAFETY: live handles (caller); the bytes are used within this call.
        Some(target) => match unsafe { js_bytes::read(env, target, scratch, max) } {
            Ok(Bytes::Converted(range)) => Some(range),
            Ok(Bytes::InPlace(_)) | Err(NotBytes::WrongType) => {
                return Err(Failure::new(
                    Status::RINGLOG_BAD_ARGUMENT,
                    "target must be a string",
                ))
            }
            Err(NotBytes::TooLong { len }) => return Err(too_large(len)),
        },
    };
    // SAFETY: live handles (caller); the bytes are used within this call.
    let message = match unsafe { js_bytes::read(env, message, scratch, max) } {
        Ok(bytes) => bytes,
        Err(NotBytes::WrongType) => {
            return Err(Failure::new(
                Status::RINGLOG_BAD_ARGUMENT,
                "message must be a string or a Buffer",
            ))
        }
        Err(NotBytes::TooLong { len }) => return Err(too_large(len)),
    };
    let mut message: &[u8] = match message {
        Bytes::Converted(range) => &scratch[range],
        Bytes::InPlace(bytes) => bytes,
    };
    if strip_newline {
        message = message.strip_suffix(b"\n").unwrap_or(message);
    }
    let target = match target {
        // Node's UTF-8 is valid by construction; checked anyway rather than assumed.
        Some(range) => std::str::from_utf8(&scratch[range])
            .map_err(|_| Failure::new(Status::RINGLOG_BAD_ARGUMENT, "target is not valid UTF-8"))?,
        None => "",
    };
    match writer.write_record(level, target, message) {
        Ok(()) => Ok(true),
        Err(WriteError::Dropped) => Ok(false),
        Err(e) => Err(Failure::from_error(&e)),
    }
}
