//! Process heap settings for tensor work.

/// Keeps freed tensor buffers in the process heap instead of handing them
/// back to the kernel after every op.
///
/// candle allocates a fresh buffer for every op's output. With glibc's
/// defaults, buffers of a few hundred KiB are `mmap`ed and `munmap`ed each
/// time, so every op pays page faults and the kernel's page zeroing (about
/// a fifth of a CPU GRPO step on the toy model, measured with `perf`). Here
/// blocks under 32 MiB come from the heap and are reused, at most 64 MiB of
/// free memory stays mapped, and the heap grows 16 MiB at a time. Process-wide, so the
/// binary calls it once at start (`gym` does, as do the trainer benches);
/// `GLIBC_TUNABLES` set by the user wins. Returns whether the settings were
/// applied (false off glibc, or when the user set `GLIBC_TUNABLES`).
pub fn tune_heap_for_tensors() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        if std::env::var_os("GLIBC_TUNABLES").is_some() {
            return false;
        }
        // SAFETY: mallopt only changes allocator parameters; any value is
        // accepted or rejected (returning 0) by glibc.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20) == 1
                && libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20) == 1
                && libc::mallopt(libc::M_TOP_PAD, 16 << 20) == 1
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heap_tuning_applies_on_glibc_and_keeps_allocations_working() {
        let applied = tune_heap_for_tensors();
        if cfg!(all(target_os = "linux", target_env = "gnu")) && std::env::var_os("GLIBC_TUNABLES").is_none() {
            assert!(applied, "mallopt refused the tensor heap settings");
        }
        // Blocks on both sides of the thresholds still allocate and free.
        for size in [1usize << 10, 1 << 20, 40 << 20] {
            let v = vec![7u8; size];
            assert_eq!(v[size - 1], 7);
        }
    }
}
