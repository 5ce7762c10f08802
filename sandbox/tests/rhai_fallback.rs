//! The Rhai memory budget without `CountingAlloc` installed: the backend
//! falls back to glibc's process-wide heap figure and still stops
//! index-assignment growth.
#![allow(missing_docs)]

mod common;

#[test]
fn index_growth_is_stopped_without_the_counting_allocator() {
    assert!(!sandbox::alloc::counting_installed());
    let l = sandbox::Limits { memory_bytes: 64 << 20, ..common::attack_limits() };
    let o = common::attack("index_growth.rhai", &l);
    assert_eq!(o.kind(), sandbox::VerdictKind::MemoryLimit, "{:?}", o.result);
}
