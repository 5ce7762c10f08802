//! Heap accounting for the in-process Rhai backend.
//!
//! Rhai's own size limits are checked late for index assignment
//! (`a[i] = big_array` on a pre-padded container grows nested data to GBs
//! before "data too large" fires), so the Rhai backend enforces a byte budget
//! outside Rhai's accounting: it checks the bytes the *calling thread* has
//! allocated since the call began, on every operation.
//!
//! The precise source is [`CountingAlloc`], a counting wrapper around the
//! system allocator that binaries and test harnesses install with
//! `#[global_allocator] static A: sandbox::CountingAlloc = sandbox::CountingAlloc;`
//! (the `gym` binary does). Without it the backend falls back to glibc's
//! `mallinfo2()` process-wide heap figure, sampled every 256 operations —
//! still a hard bound, but approximate when other threads allocate at the
//! same time.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};

thread_local! {
    static THREAD_BYTES: Cell<i64> = const { Cell::new(0) };
}

static INSTALLED: AtomicBool = AtomicBool::new(false);

/// A global allocator that counts bytes allocated minus freed per thread.
#[derive(Debug, Clone, Copy, Default)]
pub struct CountingAlloc;

#[inline]
fn add(delta: i64) {
    let _ = THREAD_BYTES.try_with(|b| b.set(b.get().wrapping_add(delta)));
}

// SAFETY: every method forwards to `System` with the same arguments; the
// bookkeeping touches only a const-initialised thread-local `Cell` (no
// allocation, no destructor).
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !INSTALLED.load(Ordering::Relaxed) {
            INSTALLED.store(true, Ordering::Relaxed);
        }
        let p = System.alloc(layout);
        if !p.is_null() {
            add(layout.size() as i64);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        add(-(layout.size() as i64));
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            add(layout.size() as i64);
        }
        p
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            add(new_size as i64 - layout.size() as i64);
        }
        p
    }
}

/// Whether [`CountingAlloc`] is the global allocator of this process.
pub fn counting_installed() -> bool {
    INSTALLED.load(Ordering::Relaxed)
}

/// Net bytes allocated by the current thread (only meaningful when
/// [`counting_installed`]).
#[inline]
pub fn thread_bytes() -> i64 {
    THREAD_BYTES.try_with(|b| b.get()).unwrap_or(0)
}

/// Bytes currently allocated from the heap by the whole process, per glibc's
/// `mallinfo2` (arena + mmapped chunks). 0 where unavailable.
pub fn process_heap_bytes() -> i64 {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallinfo2 has no preconditions; it returns a plain struct.
        let m = unsafe { libc::mallinfo2() };
        (m.uordblks as i64).saturating_add(m.hblkhd as i64)
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        0
    }
}
