//! Allocator settings for tensor work on CPU (training and inference alike).
//!
//! - [`keep_freed_memory`]: by default glibc serves every block above an adaptive threshold
//!   (128 KiB rising to 32 MiB) with its own `mmap` and unmaps it on free, so each training
//!   step gave its activation buffers back to the OS and faulted ~2 GB of fresh zeroed pages
//!   in again. In a 6-step NER run (m3e-small, batch 32, 1 thread) that was 3.3-4.9 M page
//!   faults and about a quarter of the CPU time. It makes blocks up to 32 MiB (the most glibc
//!   allows) come from the heap and stops trimming it: 0.7 M faults, ~26% less CPU time, ~34%
//!   more tokens/s.
//! - [`HugePageAlloc`]: blocks above 32 MiB (a K-BERT batch's intermediate activations,
//!   attention scores) are still mapped and unmapped each time; faulting them in 4 KiB pages
//!   cost 11.4 M page faults in a 1 MB NER run. Advising those blocks to use transparent huge
//!   pages (`madvise(MADV_HUGEPAGE)`, honoured when the system's THP mode is `madvise` or
//!   `always`) takes 512 times fewer faults: 0.16 M, and the run 25-35% less wall time on 2
//!   threads (benches/RESULTS.md).
//!
//! The `zhishi` binary installs both first thing; a service embedding the library can do the
//! same (or use an allocator of its own).
use std::alloc::{GlobalAlloc, Layout, System};

/// Tunes glibc's `malloc` to keep freed memory for reuse. Call it before starting threads.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn keep_freed_memory() {
    // SAFETY: `mallopt` only sets allocator parameters and may be called at any time; the
    // values are in range.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}

/// Does nothing: the tuning is for glibc.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn keep_freed_memory() {}

/// The size of a transparent huge page on x86-64 and aarch64 (4 KiB base pages).
const HUGE_PAGE: usize = 2 << 20;

/// Blocks at least this large are advised to use huge pages.
pub const HUGE_BLOCK: usize = 4 << 20;

/// The system allocator, with every block of at least [`HUGE_BLOCK`] bytes advised to use
/// transparent huge pages (the whole 2 MiB pages inside it). Install it with
/// `#[global_allocator] static ALLOC: HugePageAlloc = HugePageAlloc;`.
#[derive(Debug, Clone, Copy, Default)]
pub struct HugePageAlloc;

// SAFETY: every call is forwarded to `System` unchanged; the advice only changes how the
// kernel backs the pages of a block the caller owns, never its contents or layout.
unsafe impl GlobalAlloc for HugePageAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { System.alloc(layout) };
        advise_huge_pages(p, layout.size());
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { System.alloc_zeroed(layout) };
        advise_huge_pages(p, layout.size());
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        advise_huge_pages(p, new_size);
        p
    }
}

/// Advises the whole huge pages inside `[p, p + len)` to be backed by transparent huge pages,
/// when the block is large enough (a hint: errors are ignored).
fn advise_huge_pages(p: *mut u8, len: usize) {
    if p.is_null() || len < HUGE_BLOCK {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        let start = (p as usize).next_multiple_of(HUGE_PAGE);
        let end = (p as usize + len) & !(HUGE_PAGE - 1);
        if end > start {
            // SAFETY: the range lies inside a block this process just allocated; the advice
            // changes how the kernel backs its pages, not what they hold.
            unsafe {
                libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_and_small_blocks_round_trip_through_the_hinting_allocator() {
        let a = HugePageAlloc;
        for size in [16, HUGE_BLOCK - 1, HUGE_BLOCK, 3 * HUGE_BLOCK + 12345] {
            let layout = Layout::from_size_align(size, 64).unwrap();
            // SAFETY: non-zero size; the block is written, read and freed with its layout.
            unsafe {
                let p = a.alloc_zeroed(layout);
                assert!(!p.is_null());
                assert_eq!(*p.add(size - 1), 0, "zeroed");
                *p.add(size - 1) = 7;
                let q = a.realloc(p, layout, size * 2);
                assert_eq!(*q.add(size - 1), 7, "realloc keeps the contents");
                a.dealloc(q, Layout::from_size_align(size * 2, 64).unwrap());
            }
        }
    }
}
