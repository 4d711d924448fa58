//! How tapegrad asks the C allocator to keep freed memory for reuse.
//!
//! A training step frees and allocates the same large buffers every step: activations, their
//! gradients, im2col columns. With its default settings glibc's `malloc` returns a block above
//! its mmap threshold to the kernel when it is freed, and trims the top of the heap once more than
//! a few hundred KiB there are free, so the next step faults every page of those buffers in again
//! (in a profile of the CNN training step, 12 to 25% of the time went to page faults).
//!
//! So, the first time a tensor is made, tapegrad sets glibc's `M_MMAP_THRESHOLD` to 32 MiB (the
//! most glibc's own adaptive threshold reaches), `M_TRIM_THRESHOLD` to 256 MiB and `M_TOP_PAD` to
//! 16 MiB: blocks up to 32 MiB come from the heap and freed memory stays with the process for the
//! next allocation, which is what PyTorch's caching allocator does for GPU memory. The cost is
//! that up to 256 MiB of freed heap can stay mapped; [`release_free_memory`] hands it back.
//!
//! The settings are process-wide. Set the environment variable `TAPEGRAD_MALLOC_TUNING=0` before
//! the first tensor is made to leave the allocator alone (for example when the program tunes
//! malloc itself or uses another global allocator, on which the settings have no effect). Off
//! Linux with glibc, nothing is changed.
//!
//! ```
//! use tapegrad::prelude::*;
//! let _x = Tensor::zeros(&[2, 2]); // the first tensor applies the settings
//! # #[cfg(all(target_os = "linux", target_env = "gnu"))]
//! assert_eq!(tapegrad::memory::malloc_tuned(), std::env::var("TAPEGRAD_MALLOC_TUNING").as_deref() != Ok("0"));
//! tapegrad::memory::release_free_memory(); // back to the OS, e.g. after training
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;

static TUNE: Once = Once::new();
static TUNED: AtomicBool = AtomicBool::new(false);

/// Applies the settings once per process (called when a tensor is made).
#[inline]
pub(crate) fn tune_malloc_once() {
    TUNE.call_once(|| {
        let off = std::env::var("TAPEGRAD_MALLOC_TUNING").is_ok_and(|v| v.trim() == "0");
        if !off {
            TUNED.store(apply(), Ordering::Relaxed);
        }
    });
}

/// Whether tapegrad changed the allocator's settings (false when opted out or not on glibc).
pub fn malloc_tuned() -> bool {
    tune_malloc_once();
    TUNED.load(Ordering::Relaxed)
}

/// Returns the free memory the allocator holds to the operating system (glibc's `malloc_trim`),
/// e.g. after training, before a long phase that needs little memory. Does nothing off glibc.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn apply() -> bool {
    const MIB: libc::c_int = 1 << 20;
    // SAFETY: mallopt only changes glibc's tuning parameters; each call reports success as 1.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 * MIB) == 1
            && libc::mallopt(libc::M_TRIM_THRESHOLD, 256 * MIB) == 1
            && libc::mallopt(libc::M_TOP_PAD, 16 * MIB) == 1
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn apply() -> bool {
    false
}
