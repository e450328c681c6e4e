//! # gan-alloc: the global allocator that xray-gan's programs declare
//!
//! jemalloc, keeping freed pages, with zeroed allocations zeroed in place. The libraries impose
//! no allocator; each binary (the `xray-gan` CLI, the benchmarks, the timing examples) declares
//! this one in its `main.rs`:
//!
//! ```ignore
//! #[global_allocator]
//! static ALLOCATOR: gan_alloc::KeepPages = gan_alloc::KeepPages;
//! ```
//!
//! A training step allocates and frees tensors of up to hundreds of MiB (the seed's attention
//! energies are 64 × 1024 × 1024 floats). glibc's malloc returns such blocks to the kernel on
//! free, and jemalloc by default purges them after a delay and serves a zeroed request (candle's
//! `zeros`, every gradient accumulator in a backward pass) by handing the pages back to the
//! kernel with `MADV_DONTNEED`. Either way the next touch faults each 4 KiB page in again and the
//! kernel clears it: measured, 29 million page faults and more system time than user time over
//! three seed training steps. Here purging is off and `alloc_zeroed` writes zeros into memory
//! that stays mapped. Resident memory stays at the process's peak, which it reached anyway.

use std::alloc::{GlobalAlloc, Layout};

#[cfg(target_env = "msvc")]
use std::alloc::System as Jemalloc;
#[cfg(not(target_env = "msvc"))]
use tikv_jemallocator::Jemalloc;

/// jemalloc with freed pages kept mapped and `alloc_zeroed` zeroing in place (with MSVC, where
/// jemalloc does not build, the system allocator).
pub struct KeepPages;

// SAFETY: every method forwards to jemalloc with the same arguments; `alloc_zeroed` zeroes the
// whole block it got from `alloc`, which is what the trait promises.
unsafe impl GlobalAlloc for KeepPages {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        unsafe { Jemalloc.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        unsafe {
            let p = Jemalloc.alloc(layout);
            if !p.is_null() {
                std::ptr::write_bytes(p, 0, layout.size());
            }
            p
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { Jemalloc.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        unsafe { Jemalloc.realloc(ptr, layout, new_size) }
    }
}

/// jemalloc's built-in options (`malloc_conf`, prefixed `_rjem_` by tikv-jemalloc-sys): never
/// purge dirty or muzzy pages, and no separate arena (with its own purging) for blocks over 8 MiB.
/// `_RJEM_MALLOC_CONF` in the environment still overrides it. Read only by jemalloc, so only in
/// a program that declares [`KeepPages`].
#[cfg(not(target_env = "msvc"))]
#[allow(non_upper_case_globals)]
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static malloc_conf: &[u8; 57] = b"oversize_threshold:0,dirty_decay_ms:-1,muzzy_decay_ms:-1\0";
