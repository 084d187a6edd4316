//! afd.sys endpoints: one per user-mode socket, on afd!AfdEndpointListHead (facts 2.6,
//! MEMORY-MODEL.md "afd").

use std::collections::BTreeMap;

use crate::gen::{Ep, Kind};
use crate::kernel::link_list;
use crate::layout::Layout;
use crate::space::{Obj, Pages, Pool};
use crate::Error;

/// Type signatures at the endpoint start. Public sources only say "0xAFDx" (GH checks
/// `sig & 0xAFD0 == 0xAFD0`); which x means what is not public, so the builder uses 0xAFD1 for
/// stream sockets and 0xAFD2 for datagram sockets, and documents that as its own choice.
const SIG_STREAM: u16 = 0xAFD1;
const SIG_DATAGRAM: u16 = 0xAFD2;

/// Writes an AFD endpoint for every endpoint with `afd` set and links them on the list head at
/// `head`. Returns the endpoint VA per input index (None where no socket exists).
pub fn write(
    sp: &mut Pages,
    pool: &mut Pool,
    l: &Layout,
    eprocess: &BTreeMap<u32, u64>,
    head: u64,
    eps: &[Ep],
) -> Result<Vec<Option<u64>>, Error> {
    let size = l.afd_size();
    let mut links = Vec::new();
    let mut out = Vec::with_capacity(eps.len());
    for e in eps {
        let owner = e.pid.and_then(|p| eprocess.get(&p).copied());
        let Some(owner) = owner.filter(|_| e.afd) else {
            out.push(None);
            continue;
        };
        let va = pool.alloc(sp, b"AfdE", size)?;
        let sig = if e.kind == Kind::Udp {
            SIG_DATAGRAM
        } else {
            SIG_STREAM
        };
        let mut o = Obj::new(size);
        o.u16(0, sig).u64(l.afd_owner, owner);
        o.store(sp, va)?;
        links.push(va + u64::from(l.afd_link));
        out.push(Some(va));
    }
    link_list(sp, head, &links)?;
    Ok(out)
}
