//! A counting allocator: the fuzzer's memory oracle. It tracks live heap bytes and the peak
//! of each execution; an allocation that takes the live total over the soft limit is an
//! over-allocation finding (its backtrace goes to stderr, where the supervisor reads it),
//! and one over the hard limit is refused, which aborts the child like an out-of-memory kill.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

pub struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
/// Limits (bytes of live heap); usize::MAX until the child sets them.
static SOFT: AtomicUsize = AtomicUsize::new(usize::MAX);
static HARD: AtomicUsize = AtomicUsize::new(usize::MAX);
/// Largest single request that crossed the soft limit in this execution (0: none).
static OVER: AtomicUsize = AtomicUsize::new(0);

/// The backtrace of the first over-limit request since [`reset`].
static TRACE: Mutex<Option<String>> = Mutex::new(None);

thread_local! {
    /// Set while the allocator itself captures a backtrace (which allocates).
    static INSIDE: Cell<bool> = const { Cell::new(false) };
}

pub fn set_limits(soft: usize, hard: usize) {
    SOFT.store(soft, Ordering::Relaxed);
    HARD.store(hard, Ordering::Relaxed);
}

/// Starts a new execution's accounting.
pub fn reset() {
    PEAK.store(LIVE.load(Ordering::Relaxed), Ordering::Relaxed);
    OVER.store(0, Ordering::Relaxed);
    let _ = take_trace();
}

/// Takes the backtrace of the first over-limit request, if one was recorded.
pub fn take_trace() -> Option<String> {
    TRACE.lock().ok().and_then(|mut t| t.take())
}
pub fn peak() -> usize {
    PEAK.load(Ordering::Relaxed)
}
/// The largest over-limit request since [`reset`], if any.
pub fn over() -> Option<usize> {
    Some(OVER.load(Ordering::Relaxed)).filter(|&n| n > 0)
}

fn grow(size: usize) -> bool {
    let live = LIVE.fetch_add(size, Ordering::Relaxed) + size;
    PEAK.fetch_max(live, Ordering::Relaxed);
    if live <= SOFT.load(Ordering::Relaxed) {
        return true;
    }
    let first = OVER.fetch_max(size, Ordering::Relaxed) == 0;
    if first && !INSIDE.with(|i| i.replace(true)) {
        // Where it came from, for the crash report. Reentrant allocations pass through.
        let bt = std::backtrace::Backtrace::force_capture().to_string();
        eprintln!("OVER-ALLOCATION {size} bytes with {} live\n{bt}", live - size);
        if let Ok(mut t) = TRACE.lock() {
            *t = Some(bt);
        }
        INSIDE.with(|i| i.set(false));
    }
    if live > HARD.load(Ordering::Relaxed) {
        LIVE.fetch_sub(size, Ordering::Relaxed);
        return false;
    }
    true
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !grow(layout.size()) {
            return std::ptr::null_mut();
        }
        let p = System.alloc(layout);
        if p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if !grow(layout.size()) {
            return std::ptr::null_mut();
        }
        let p = System.alloc_zeroed(layout);
        if p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let old = layout.size();
        if new_size > old && !grow(new_size - old) {
            return std::ptr::null_mut();
        }
        let p = System.realloc(ptr, layout, new_size);
        if p.is_null() {
            if new_size > old {
                LIVE.fetch_sub(new_size - old, Ordering::Relaxed);
            }
        } else if new_size < old {
            LIVE.fetch_sub(old - new_size, Ordering::Relaxed);
        }
        p
    }
}
