//! `scim_fold(text)`: SQLite's `lower()` folds ASCII only; this folds exactly as
//! `scimd_proto::value::fold_case` does, so SQL and in-memory comparisons agree on
//! every script.

use libsqlite3_sys as ffi;
use std::ffi::{c_char, c_int};
use std::ptr::NonNull;

unsafe extern "C" fn scim_fold(ctx: *mut ffi::sqlite3_context, argc: c_int, argv: *mut *mut ffi::sqlite3_value) {
    // SAFETY: SQLite calls this with `argc` valid argument pointers (registered with
    // nArg = 1), and the text pointer it returns is valid for `sqlite3_value_bytes` bytes
    // until the value is next converted, which we do not do.
    unsafe {
        if argc != 1 {
            ffi::sqlite3_result_null(ctx);
            return;
        }
        let value = *argv;
        if ffi::sqlite3_value_type(value) == ffi::SQLITE_NULL {
            ffi::sqlite3_result_null(ctx);
            return;
        }
        let text = ffi::sqlite3_value_text(value);
        let len = ffi::sqlite3_value_bytes(value);
        if text.is_null() || len < 0 {
            ffi::sqlite3_result_null(ctx);
            return;
        }
        let bytes = std::slice::from_raw_parts(text, len as usize);
        let folded = scimd_proto::value::fold_case(&String::from_utf8_lossy(bytes));
        ffi::sqlite3_result_text(ctx, folded.as_ptr() as *const c_char, folded.len() as c_int, ffi::SQLITE_TRANSIENT());
    }
}

/// Registers `scim_fold` on a connection.
pub fn register(handle: NonNull<ffi::sqlite3>) -> Result<(), String> {
    let name = c"scim_fold";
    // SAFETY: `handle` is an open connection owned by the caller for the duration of the
    // call; the function pointer is a plain `extern "C" fn` with no user data.
    let rc = unsafe {
        ffi::sqlite3_create_function_v2(
            handle.as_ptr(),
            name.as_ptr(),
            1,
            ffi::SQLITE_UTF8 | ffi::SQLITE_DETERMINISTIC,
            std::ptr::null_mut(),
            Some(scim_fold),
            None,
            None,
            None,
        )
    };
    if rc == ffi::SQLITE_OK { Ok(()) } else { Err(format!("sqlite3_create_function_v2 failed with code {rc}")) }
}
