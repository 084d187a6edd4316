//! Bounded, cycle-checked walks of kernel `LIST_ENTRY` chains.
//!
//! Every list in a dump may be cut (a page missing), corrupt (a Flink pointing anywhere) or
//! cyclic without passing through its head (a freed entry relinked). The walk stops at the first
//! such link, records why, and returns what it had.

use crate::diag::Diagnostics;
use crate::target::{Target, TargetExt};
use std::collections::HashSet;

/// True for a canonical x64 kernel-space address (top 17 bits set).
pub fn is_kernel_va(va: u64) -> bool {
    va >= 0xFFFF_8000_0000_0000
}

/// True for a kernel address aligned to `align` bytes (a power of two).
pub fn is_kernel_ptr(va: u64, align: u64) -> bool {
    is_kernel_va(va) && va & (align - 1) == 0
}

/// How a list walk ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListEnd {
    /// Back at the head: the list was walked completely.
    Complete,
    /// A Flink could not be read.
    Unreadable,
    /// A Flink was not a kernel pointer.
    BadLink,
    /// An entry came round again without passing the head.
    Cycle,
    /// More entries than the caller's bound.
    TooLong,
    /// The user interrupted.
    Interrupted,
}

/// Walks the `LIST_ENTRY` chain starting at `head` and returns the addresses of the entries'
/// `LIST_ENTRY` fields (not including the head), at most `max` of them. Problems are recorded in
/// `diag` under `what` (e.g. "process list").
pub fn walk_list(
    target: &dyn Target,
    head: u64,
    max: usize,
    what: &str,
    diag: &mut Diagnostics,
) -> (Vec<u64>, ListEnd) {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut link = match target.read_u64(head) {
        Ok(v) => v,
        Err(e) => {
            diag.warn("list-unreadable", format!("{what}: head {head:#x}: {e}"));
            return (out, ListEnd::Unreadable);
        }
    };
    loop {
        if link == head {
            return (out, ListEnd::Complete);
        }
        if target.interrupted() {
            return (out, ListEnd::Interrupted);
        }
        if !is_kernel_ptr(link, 8) {
            diag.warn(
                "list-bad-link",
                format!(
                    "{what}: link {link:#x} after {} entries is not a kernel pointer",
                    out.len()
                ),
            );
            return (out, ListEnd::BadLink);
        }
        if !seen.insert(link) {
            diag.warn(
                "list-cycle",
                format!(
                    "{what}: entry {link:#x} came round again after {} entries",
                    out.len()
                ),
            );
            return (out, ListEnd::Cycle);
        }
        if out.len() >= max {
            diag.warn(
                "list-too-long",
                format!("{what}: stopped after {max} entries"),
            );
            return (out, ListEnd::TooLong);
        }
        out.push(link);
        link = match target.read_u64(link) {
            Ok(v) => v,
            Err(e) => {
                diag.warn("list-unreadable", format!("{what}: entry {link:#x}: {e}"));
                return (out, ListEnd::Unreadable);
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::MemTarget;

    const HEAD: u64 = 0xFFFF_F800_0000_1000;

    fn ring(t: &mut MemTarget, entries: &[u64]) {
        let mut all = vec![HEAD];
        all.extend_from_slice(entries);
        for (i, &e) in all.iter().enumerate() {
            let next = all[(i + 1) % all.len()];
            let prev = all[(i + all.len() - 1) % all.len()];
            t.put_u64(e, next);
            t.put_u64(e + 8, prev);
        }
    }

    #[test]
    fn complete_ring() {
        let mut t = MemTarget::new();
        let e = [HEAD + 0x100, HEAD + 0x200, HEAD + 0x300];
        ring(&mut t, &e);
        let mut d = Diagnostics::new();
        let (v, end) = walk_list(&t, HEAD, 100, "test", &mut d);
        assert_eq!(v, e);
        assert_eq!(end, ListEnd::Complete);
        assert!(d.is_empty());
    }

    #[test]
    fn cycle_not_through_head_is_cut() {
        let mut t = MemTarget::new();
        let (a, b) = (HEAD + 0x100, HEAD + 0x200);
        t.put_u64(HEAD, a);
        t.put_u64(a, b);
        t.put_u64(b, a);
        let mut d = Diagnostics::new();
        let (v, end) = walk_list(&t, HEAD, 100, "test", &mut d);
        assert_eq!(v, vec![a, b]);
        assert_eq!(end, ListEnd::Cycle);
        assert_eq!(d.count("list-cycle"), 1);
    }

    #[test]
    fn unreadable_and_bad_links_stop_the_walk() {
        let mut t = MemTarget::new();
        // The entry lives on a page the test memory does not have.
        let far = HEAD + 0x10_0000;
        t.put_u64(HEAD, far);
        let mut d = Diagnostics::new();
        let (v, end) = walk_list(&t, HEAD, 100, "test", &mut d);
        assert_eq!((v.len(), end), (1, ListEnd::Unreadable));
        t.put_u64(far, 0x1234);
        let (v, end) = walk_list(&t, HEAD, 100, "test", &mut d);
        assert_eq!((v.len(), end), (1, ListEnd::BadLink));
    }

    #[test]
    fn bound_is_respected() {
        let mut t = MemTarget::new();
        let e: Vec<u64> = (1..=50).map(|i| HEAD + i * 0x20).collect();
        ring(&mut t, &e);
        let mut d = Diagnostics::new();
        let (v, end) = walk_list(&t, HEAD, 10, "test", &mut d);
        assert_eq!((v.len(), end), (10, ListEnd::TooLong));
    }
}
