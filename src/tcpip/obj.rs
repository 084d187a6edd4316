//! Reading tcpip objects: pool tags, candidate offsets, addresses.
//!
//! Layout tables give every field as a list of candidate offsets (sources disagree). An object's
//! bytes are read once and each field is taken from the first candidate whose value validates;
//! the candidate that worked is tried first next time, so a walk settles on one layout quickly.

use crate::target::{Target, TargetExt};
use crate::walk::is_kernel_ptr;
use std::cell::Cell;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use symbols::layouts::{AddrPath, Offset, PoolTag, Tags};

/// x64 small-pool objects follow a 16-byte POOL_HEADER whose tag sits at object - 0x0C
/// (tcpip-afd-facts 2.1, MPF `VMM_POOLTAG_PREPENDED`).
pub const POOL_TAG_BACK: u64 = 0x0C;

pub const AF_INET: u16 = 2;
pub const AF_INET6: u16 = 0x17;

/// The pool tag in front of `obj`, if readable.
pub fn pool_tag(target: &dyn Target, obj: u64) -> Option<PoolTag> {
    let mut b = [0u8; 4];
    target
        .read_exact(obj.wrapping_sub(POOL_TAG_BACK), &mut b)
        .ok()?;
    Some(PoolTag(b))
}

/// True when `obj` carries one of `tags`.
pub fn has_tag(target: &dyn Target, obj: u64, tags: &Tags) -> bool {
    pool_tag(target, obj).is_some_and(|t| tags.accepts(t))
}

/// An object's bytes, read once; fields beyond a partial read are absent.
pub struct Obj {
    pub va: u64,
    pub bytes: Vec<u8>,
}

impl Obj {
    /// Reads up to `size` bytes at `va`; `None` if not even the first byte is readable.
    pub fn read(target: &dyn Target, va: u64, size: u32) -> Option<Self> {
        let mut bytes = vec![0u8; size as usize];
        let n = target.read_virtual(va, &mut bytes).ok()?;
        bytes.truncate(n);
        Some(Self { va, bytes })
    }
    pub fn u16(&self, off: u32) -> Option<u16> {
        let o = off as usize;
        Some(u16::from_le_bytes(
            self.bytes.get(o..o + 2)?.try_into().ok()?,
        ))
    }
    /// Ports are stored big-endian (tcpip-afd-facts 1.3).
    pub fn port(&self, off: u32) -> Option<u16> {
        self.u16(off).map(u16::swap_bytes)
    }
    pub fn u32(&self, off: u32) -> Option<u32> {
        let o = off as usize;
        Some(u32::from_le_bytes(
            self.bytes.get(o..o + 4)?.try_into().ok()?,
        ))
    }
    pub fn u64(&self, off: u32) -> Option<u64> {
        let o = off as usize;
        Some(u64::from_le_bytes(
            self.bytes.get(o..o + 8)?.try_into().ok()?,
        ))
    }
    pub fn slice(&self, off: u32, len: usize) -> Option<&[u8]> {
        self.bytes.get(off as usize..off as usize + len)
    }
}

/// Remembers which candidate of a field validated last, and tries it first.
#[derive(Debug, Default)]
pub struct Sticky(Cell<Option<u32>>);

impl Sticky {
    /// The first candidate (the last good one first) for which `f` returns a value.
    pub fn pick<T>(&self, field: &Offset, mut f: impl FnMut(u32) -> Option<T>) -> Option<(u32, T)> {
        let last = self.0.get();
        let order = last.into_iter().chain(
            field
                .candidates
                .iter()
                .copied()
                .filter(move |&c| Some(c) != last),
        );
        for c in order {
            if let Some(v) = f(c) {
                self.0.set(Some(c));
                return Some((c, v));
            }
        }
        None
    }
}

/// Reads the address family of the INETAF object `inet_af` points to; only AF_INET and AF_INET6
/// count as valid (tcpip-afd-facts 2.5, V3).
pub fn address_family(
    target: &dyn Target,
    inet_af: u64,
    af_field: &Offset,
    sticky: &Sticky,
) -> Option<u16> {
    if !is_kernel_ptr(inet_af, 8) {
        return None;
    }
    sticky
        .pick(af_field, |off| {
            target
                .read_u16(inet_af + u64::from(off))
                .ok()
                .filter(|&af| af == AF_INET || af == AF_INET6)
        })
        .map(|(_, af)| af)
}

/// Reads `af`-sized address bytes at `va`.
pub fn read_ip(target: &dyn Target, va: u64, af: u16) -> Option<IpAddr> {
    if af == AF_INET6 {
        let mut b = [0u8; 16];
        target.read_exact(va, &mut b).ok()?;
        Some(IpAddr::V6(Ipv6Addr::from(b)))
    } else {
        let mut b = [0u8; 4];
        target.read_exact(va, &mut b).ok()?;
        Some(IpAddr::V4(Ipv4Addr::from(b)))
    }
}

/// Follows an address path (a chain of pointer reads, then the IP bytes) from `start`.
pub fn follow_path(target: &dyn Target, start: u64, path: &AddrPath, af: u16) -> Option<IpAddr> {
    let mut p = start;
    for &d in &path.derefs {
        if !is_kernel_ptr(p, 8) {
            return None;
        }
        p = target.read_u64(p + u64::from(d)).ok()?;
    }
    if !is_kernel_ptr(p, 4) {
        return None;
    }
    read_ip(target, p + u64::from(path.ip_at), af)
}

/// The unspecified address of a family (a wildcard bind).
pub fn unspecified(af: u16) -> IpAddr {
    if af == AF_INET6 {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    }
}

/// A FILETIME is plausible when its top byte is 0x01 (1601 + 2^56 x 100 ns spans 1829-2057;
/// MemProcFS accepts listener/UDP times only so) — used to reject a wrong candidate offset.
pub fn plausible_filetime(t: u64) -> bool {
    t >> 56 == 0x01
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::MemTarget;
    use symbols::layouts::Confidence;

    fn offset(c: &[u32]) -> Offset {
        Offset {
            candidates: c.to_vec(),
            source: "test".into(),
            confidence: Confidence::Stated,
            note: None,
        }
    }

    #[test]
    fn sticky_prefers_the_last_good_candidate() {
        let s = Sticky::default();
        let f = offset(&[0x10, 0x18]);
        let mut tried = Vec::new();
        assert_eq!(
            s.pick(&f, |o| {
                tried.push(o);
                (o == 0x18).then_some(())
            }),
            Some((0x18, ()))
        );
        assert_eq!(tried, vec![0x10, 0x18]);
        tried.clear();
        s.pick(&f, |o| {
            tried.push(o);
            Some(())
        });
        assert_eq!(tried, vec![0x18]);
    }

    #[test]
    fn family_and_addresses() {
        let mut t = MemTarget::new();
        let inetaf = 0xFFFF_A000_0000_1000;
        t.put_u16(inetaf + 0x18, AF_INET6);
        let s = Sticky::default();
        assert_eq!(
            address_family(&t, inetaf, &offset(&[0x14, 0x18]), &s),
            Some(AF_INET6)
        );
        assert_eq!(address_family(&t, 0x1000, &offset(&[0x14, 0x18]), &s), None);
        let ip = 0xFFFF_A000_0000_2000;
        t.put(ip, &[10, 1, 2, 3]);
        assert_eq!(read_ip(&t, ip, AF_INET), Some("10.1.2.3".parse().unwrap()));
        t.put_u64(inetaf + 0x100, ip - 0x8);
        let path = AddrPath {
            derefs: vec![0x100],
            ip_at: 8,
            source: "t".into(),
            confidence: Confidence::Stated,
        };
        assert_eq!(
            follow_path(&t, inetaf, &path, AF_INET),
            Some("10.1.2.3".parse().unwrap())
        );
    }

    #[test]
    fn ports_are_big_endian() {
        let o = Obj {
            va: 0,
            bytes: vec![0x01, 0xBB],
        };
        assert_eq!(o.port(0), Some(443));
        assert_eq!(o.port(1), None);
    }
}
