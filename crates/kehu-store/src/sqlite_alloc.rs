//! SQLite's own allocations — its page cache, statements, the row values it
//! hands to sqlx — go to mimalloc like the Rust side's, and without SQLite's
//! memory statistics, which take a global mutex on every allocation. A
//! profile of an import's dry run found about a quarter of SQLite's thread
//! in glibc `malloc`/`free` (BENCHMARKS, sessions 29 and 31).

use libmimalloc_sys as mi;
use rusqlite::ffi;
use std::os::raw::{c_int, c_void};

unsafe extern "C" fn x_malloc(n: c_int) -> *mut c_void {
    // SAFETY: mimalloc's malloc takes any size; SQLite never asks for < 1.
    unsafe { mi::mi_malloc(n.max(0) as usize) }
}

unsafe extern "C" fn x_free(p: *mut c_void) {
    // SAFETY: SQLite frees only what `x_malloc`/`x_realloc` returned.
    unsafe { mi::mi_free(p) }
}

unsafe extern "C" fn x_realloc(p: *mut c_void, n: c_int) -> *mut c_void {
    // SAFETY: `p` came from `x_malloc`/`x_realloc` (SQLite's contract).
    unsafe { mi::mi_realloc(p, n.max(0) as usize) }
}

unsafe extern "C" fn x_size(p: *mut c_void) -> c_int {
    // SAFETY: as for `x_free`; SQLite may use all of the usable size.
    let size = unsafe { mi::mi_usable_size(p) };
    size.min(c_int::MAX as usize) as c_int
}

unsafe extern "C" fn x_roundup(n: c_int) -> c_int {
    // SAFETY: a pure size computation.
    let size = unsafe { mi::mi_good_size(n.max(0) as usize) };
    size.min(c_int::MAX as usize) as c_int
}

unsafe extern "C" fn x_init(_: *mut c_void) -> c_int {
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_shutdown(_: *mut c_void) {}

/// Points SQLite at mimalloc, once per process, before its first
/// connection. SQLite accepts this only before it initializes: should
/// something have opened a database first, it keeps its own allocator
/// (said in the log) and works as before.
pub(crate) fn configure() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let methods = ffi::sqlite3_mem_methods {
            xMalloc: Some(x_malloc),
            xFree: Some(x_free),
            xRealloc: Some(x_realloc),
            xSize: Some(x_size),
            xRoundup: Some(x_roundup),
            xInit: Some(x_init),
            xShutdown: Some(x_shutdown),
            pAppData: std::ptr::null_mut(),
        };
        // SAFETY: both options are set before SQLite initializes (or
        // refused with SQLITE_MISUSE); SQLite copies `methods`.
        let (malloc, memstatus) = unsafe {
            (
                ffi::sqlite3_config(ffi::SQLITE_CONFIG_MALLOC, &methods as *const _),
                ffi::sqlite3_config(ffi::SQLITE_CONFIG_MEMSTATUS, 0 as c_int),
            )
        };
        if malloc != ffi::SQLITE_OK || memstatus != ffi::SQLITE_OK {
            tracing::info!(
                malloc,
                memstatus,
                "SQLite was initialized before kehu configured its allocator; it keeps its own"
            );
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_allocates_through_mimalloc() {
        configure();
        // The methods in force are ours (readable only before SQLite
        // initializes, which the connection below does).
        let mut current = ffi::sqlite3_mem_methods {
            xMalloc: None,
            xFree: None,
            xRealloc: None,
            xSize: None,
            xRoundup: None,
            xInit: None,
            xShutdown: None,
            pAppData: std::ptr::null_mut(),
        };
        // SAFETY: GETMALLOC writes the current methods into `current`.
        let rc =
            unsafe { ffi::sqlite3_config(ffi::SQLITE_CONFIG_GETMALLOC, &mut current as *mut _) };
        assert_eq!(rc, ffi::SQLITE_OK);
        assert_eq!(
            current.xMalloc.map(|f| f as usize),
            Some(x_malloc as *const () as usize)
        );
        assert_eq!(
            current.xSize.map(|f| f as usize),
            Some(x_size as *const () as usize)
        );

        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let text: String = conn
            .query_row(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000) \
                 SELECT group_concat(i, ',') FROM n",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(text.split(',').count(), 20000);
        // No statistics kept: SQLite counted nothing it allocated.
        // SAFETY: a read of a counter.
        assert_eq!(unsafe { ffi::sqlite3_memory_used() }, 0);
    }
}
