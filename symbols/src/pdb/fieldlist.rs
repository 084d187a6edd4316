//! `LF_FIELDLIST` records, and the checked reader all record decoding uses.
//!
//! `pdb` 0.8 reads `LF_INDEX` (the continuation of a field list too long for one record) as a
//! 2-byte leaf followed directly by the type index, but the record has a 2-byte pad in between
//! (cvinfo.h `lfIndex`: leaf, `_2BYTEPAD pad0`, `CV_typ_t index`; LLVM's ContinuationRecord agrees).
//! The crate then misreads the index and fails on the bytes left over, losing the whole list. Any
//! struct with more members than fit in one record (about 3,000) hits this. Field lists are
//! therefore read here, with the subrecord layouts from cvinfo.h.

use super::nodes::Member;
use super::resolve::BASE_MEMBER;

const LF_INDEX: u16 = 0x1404;
const LF_BCLASS: u16 = 0x1400;
const LF_VBCLASS: u16 = 0x1401;
const LF_IVBCLASS: u16 = 0x1402;
const LF_VFUNCTAB: u16 = 0x1409;
const LF_FRIENDCLS: u16 = 0x140b;
const LF_ENUMERATE: u16 = 0x1502;
const LF_FRIENDFCN: u16 = 0x150c;
const LF_MEMBER: u16 = 0x150d;
const LF_STMEMBER: u16 = 0x150e;
const LF_METHOD: u16 = 0x150f;
const LF_NESTTYPE: u16 = 0x1510;
const LF_ONEMETHOD: u16 = 0x1511;
const LF_NESTTYPEEX: u16 = 0x1512;
const LF_FIELDLIST: u16 = 0x1203;

/// A reader over one record's bytes; every read is checked and `None` at the end.
pub(crate) struct Leaf<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Leaf<'a> {
    pub fn new(b: &'a [u8]) -> Leaf<'a> {
        Leaf { b, pos: 0 }
    }
    pub fn u8(&mut self) -> Option<u8> {
        let v = *self.b.get(self.pos)?;
        self.pos += 1;
        Some(v)
    }
    pub fn u16(&mut self) -> Option<u16> {
        let v = u16::from_le_bytes(self.b.get(self.pos..self.pos + 2)?.try_into().ok()?);
        self.pos += 2;
        Some(v)
    }
    pub fn u32(&mut self) -> Option<u32> {
        let v = u32::from_le_bytes(self.b.get(self.pos..self.pos + 4)?.try_into().ok()?);
        self.pos += 4;
        Some(v)
    }
    pub fn skip(&mut self, n: usize) -> Option<()> {
        (self.pos + n <= self.b.len()).then(|| self.pos += n)
    }
    /// A numeric leaf: the value itself below 0x8000, else a kind followed by the value.
    pub fn numeric(&mut self) -> Option<u64> {
        let v = self.u16()?;
        if v < 0x8000 {
            return Some(u64::from(v));
        }
        let size = match v {
            0x8000 => 1,          // LF_CHAR
            0x8001 | 0x8002 => 2, // LF_SHORT, LF_USHORT
            0x8003 | 0x8004 => 4, // LF_LONG, LF_ULONG
            0x8009 | 0x800a => 8, // LF_QUADWORD, LF_UQUADWORD
            _ => return None,
        };
        let bytes = self.b.get(self.pos..self.pos + size)?;
        self.pos += size;
        let mut buf = [0u8; 8];
        buf[..size].copy_from_slice(bytes);
        Some(u64::from_le_bytes(buf))
    }
    pub fn name(&mut self) -> Option<String> {
        let rest = self.b.get(self.pos..)?;
        let end = rest.iter().position(|&c| c == 0)?;
        self.pos += end + 1;
        Some(String::from_utf8_lossy(&rest[..end]).into_owned())
    }
    /// Subrecords are aligned with LF_PADn bytes (0xF0 + n) that say how many bytes to skip.
    pub fn pad(&mut self) {
        if let Some(&b) = self.b.get(self.pos) {
            if b >= 0xF0 {
                self.pos += usize::from(b & 0x0F).max(1);
            }
        }
    }
}

/// Members and continuation of one raw `LF_FIELDLIST` record. `Err` names the subrecord kind that
/// could not be read; the members before it are returned with it so a caller can still use them.
/// Members read and the continuation index; on failure, the members read so far and why.
pub(crate) type Parsed = Result<(Vec<Member>, Option<u32>), (Vec<Member>, String)>;

pub(crate) fn parse(record: &[u8]) -> Parsed {
    let mut c = Leaf::new(record);
    let mut out = Vec::new();
    if c.u16() != Some(LF_FIELDLIST) {
        return Err((out, "the record is not a field list".into()));
    }
    let mut next = None;
    while c.pos < record.len() {
        let at = c.pos;
        let Some(kind) = c.u16() else { break };
        let ok = match kind {
            LF_MEMBER => (|| {
                c.u16()?;
                let ty = c.u32()?;
                let offset = c.numeric()?;
                out.push(Member {
                    name: c.name()?,
                    offset,
                    ty,
                });
                Some(())
            })(),
            LF_BCLASS => (|| {
                c.u16()?;
                let ty = c.u32()?;
                let offset = c.numeric()?;
                out.push(Member {
                    name: BASE_MEMBER.to_string(),
                    offset,
                    ty,
                });
                Some(())
            })(),
            LF_INDEX => (|| {
                c.u16()?; // pad0
                next = Some(c.u32()?);
                Some(())
            })(),
            LF_STMEMBER | LF_NESTTYPEEX => c
                .u16()
                .and_then(|_| c.u32())
                .and_then(|_| c.name())
                .map(|_| ()),
            LF_NESTTYPE | LF_FRIENDFCN => c
                .u16()
                .and_then(|_| c.u32())
                .and_then(|_| c.name())
                .map(|_| ()),
            LF_VFUNCTAB | LF_FRIENDCLS => c.u16().and_then(|_| c.u32()).map(|_| ()),
            LF_VBCLASS | LF_IVBCLASS => (|| {
                c.u16()?;
                c.u32()?;
                c.u32()?;
                c.numeric()?;
                c.numeric()?;
                Some(())
            })(),
            LF_ENUMERATE => c
                .u16()
                .and_then(|_| c.numeric())
                .and_then(|_| c.name())
                .map(|_| ()),
            LF_METHOD => c
                .u16()
                .and_then(|_| c.u32())
                .and_then(|_| c.name())
                .map(|_| ()),
            LF_ONEMETHOD => (|| {
                let attr = c.u16()?;
                c.u32()?;
                // Introducing virtuals (mprop 4 and 6, cvinfo.h CV_MTintro/CV_MTpureintro) carry a
                // vtable offset.
                if matches!((attr >> 2) & 7, 4 | 6) {
                    c.skip(4)?;
                }
                c.name()?;
                Some(())
            })(),
            _ => None,
        };
        if ok.is_none() {
            return Err((
                out,
                format!("field list subrecord {kind:#06x} at byte {at} cannot be read"),
            ));
        }
        c.pad();
    }
    Ok((out, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str, ty: u32, offset: &[u8]) -> Vec<u8> {
        let mut v = LF_MEMBER.to_le_bytes().to_vec();
        v.extend_from_slice(&3u16.to_le_bytes());
        v.extend_from_slice(&ty.to_le_bytes());
        v.extend_from_slice(offset);
        v.extend_from_slice(name.as_bytes());
        v.push(0);
        while v.len() % 4 != 0 {
            v.push(0xF0 | (4 - v.len() % 4) as u8);
        }
        v
    }

    #[test]
    fn members_numeric_leaves_pads_and_a_padded_continuation() {
        let mut rec = LF_FIELDLIST.to_le_bytes().to_vec();
        rec.extend(member("Small", 0x22, &0x30u16.to_le_bytes()));
        let mut ulong = 0x8004u16.to_le_bytes().to_vec();
        ulong.extend_from_slice(&0x12340u32.to_le_bytes());
        rec.extend(member("Far", 0x1005, &ulong));
        // LF_NESTTYPE carries no layout and is skipped.
        rec.extend_from_slice(&LF_NESTTYPE.to_le_bytes());
        rec.extend_from_slice(&[0, 0, 0x10, 0x10, 0, 0, b'N', 0]);
        // LF_INDEX: leaf, 2-byte pad, then the 4-byte index (cvinfo.h lfIndex).
        rec.extend_from_slice(&LF_INDEX.to_le_bytes());
        rec.extend_from_slice(&[0, 0]);
        rec.extend_from_slice(&0x2_1234u32.to_le_bytes());
        let (m, next) = parse(&rec).unwrap();
        assert_eq!(
            m.iter()
                .map(|m| (m.name.as_str(), m.offset, m.ty))
                .collect::<Vec<_>>(),
            vec![("Small", 0x30, 0x22), ("Far", 0x12340, 0x1005)]
        );
        assert_eq!(next, Some(0x2_1234));
    }

    #[test]
    fn an_unknown_subrecord_keeps_what_came_before_and_says_where() {
        let mut rec = LF_FIELDLIST.to_le_bytes().to_vec();
        rec.extend(member("A", 0x22, &4u16.to_le_bytes()));
        rec.extend_from_slice(&0x1599u16.to_le_bytes());
        rec.extend_from_slice(&[1, 2, 3, 4]);
        let (m, why) = parse(&rec).unwrap_err();
        assert_eq!(m.len(), 1);
        assert!(why.contains("0x1599"), "{why}");
        // A truncated member is an error too, never a panic.
        let cut = &rec[..rec.len() - 9];
        assert!(parse(cut).is_err());
        assert!(parse(&[0x03]).is_err());
    }
}
