//! An in-memory [`Target`] for tests of the engine and of the extension's fake debugger.
//!
//! Memory is sparse (4 KiB pages created on write); symbols, types and modules are plain maps.
//! Unwritten memory is unreadable, as absent pages are in a kernel dump.

use crate::kernel::EprocessOffsets;
use crate::target::{ModuleInfo, Target, TargetClock, TargetError};
use std::cell::Cell;
use std::collections::HashMap;

const PAGE: u64 = 0x1000;

#[derive(Debug, Default, Clone)]
pub struct MemTarget {
    pages: HashMap<u64, Box<[u8; PAGE as usize]>>,
    pub symbols: HashMap<(String, String), u64>,
    pub types: HashMap<(String, String), u64>,
    pub fields: HashMap<(String, String, String), u64>,
    pub modules: Vec<ModuleInfo>,
    pub clock: TargetClock,
    pub build: Option<u32>,
    /// When set, `interrupted()` answers true after this many calls.
    pub interrupt_after: Option<u64>,
    polls: Cell<u64>,
}

impl MemTarget {
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes bytes, creating pages as needed.
    pub fn put(&mut self, va: u64, bytes: &[u8]) {
        for (i, b) in bytes.iter().enumerate() {
            let a = va.wrapping_add(i as u64);
            let page = self
                .pages
                .entry(a & !(PAGE - 1))
                .or_insert_with(|| Box::new([0; PAGE as usize]));
            page[(a & (PAGE - 1)) as usize] = *b;
        }
    }
    pub fn put_u16(&mut self, va: u64, v: u16) {
        self.put(va, &v.to_le_bytes());
    }
    pub fn put_u32(&mut self, va: u64, v: u32) {
        self.put(va, &v.to_le_bytes());
    }
    pub fn put_u64(&mut self, va: u64, v: u64) {
        self.put(va, &v.to_le_bytes());
    }
    /// Makes a page readable (zero-filled) without writing data.
    pub fn map_page(&mut self, va: u64) {
        self.pages
            .entry(va & !(PAGE - 1))
            .or_insert_with(|| Box::new([0; PAGE as usize]));
    }
    /// Forgets a page, making it unreadable (a page missing from the dump).
    pub fn unmap_page(&mut self, va: u64) {
        self.pages.remove(&(va & !(PAGE - 1)));
    }
    pub fn add_symbol(&mut self, module: &str, name: &str, va: u64) {
        self.symbols.insert((module.into(), name.into()), va);
    }
    pub fn add_field(&mut self, module: &str, ty: &str, field: &str, off: u64) {
        self.fields
            .insert((module.into(), ty.into(), field.into()), off);
    }

    /// A process list as the kernel keeps it: `nt!PsActiveProcessHead` at `head`, the
    /// `nt!_EPROCESS` field offsets of `offsets`, and for each `(pid, image, eprocess)` an EPROCESS
    /// with `Pcb.Header.Type` 3, its pid and NUL-terminated image name, linked both ways in order.
    pub fn add_process_list(
        &mut self,
        head: u64,
        offsets: &EprocessOffsets,
        procs: &[(u64, &str, u64)],
    ) {
        self.add_symbol("nt", "PsActiveProcessHead", head);
        for (field, off) in [
            ("UniqueProcessId", offsets.unique_process_id),
            ("ActiveProcessLinks", offsets.active_process_links),
            ("CreateTime", offsets.create_time),
            ("ExitTime", offsets.exit_time),
            ("ImageFileName", offsets.image_file_name),
            ("InheritedFromUniqueProcessId", offsets.inherited_from),
        ] {
            self.add_field("nt", "_EPROCESS", field, off);
        }
        let mut links = vec![head];
        links.extend(procs.iter().map(|p| p.2 + offsets.active_process_links));
        for &(pid, image, eprocess) in procs {
            // KPROCESS.Header.Type = ProcessObject (3), which the engine checks.
            self.put(eprocess, &[3]);
            self.put_u64(eprocess + offsets.unique_process_id, pid);
            self.put(eprocess + offsets.image_file_name, image.as_bytes());
            self.put(
                eprocess + offsets.image_file_name + image.len() as u64,
                &[0],
            );
        }
        for (i, &link) in links.iter().enumerate() {
            self.put_u64(link, links[(i + 1) % links.len()]);
            self.put_u64(link + 8, links[(i + links.len() - 1) % links.len()]);
        }
    }
}

impl Target for MemTarget {
    fn read_virtual(&self, va: u64, buf: &mut [u8]) -> Result<usize, TargetError> {
        let mut done = 0usize;
        while done < buf.len() {
            let a = va.wrapping_add(done as u64);
            let Some(page) = self.pages.get(&(a & !(PAGE - 1))) else {
                break;
            };
            let off = (a & (PAGE - 1)) as usize;
            let n = (PAGE as usize - off).min(buf.len() - done);
            buf[done..done + n].copy_from_slice(&page[off..off + n]);
            done += n;
        }
        if done == 0 && !buf.is_empty() {
            return Err(TargetError::Unreadable {
                va,
                len: buf.len(),
                reason: "page not present in the test memory".into(),
            });
        }
        Ok(done)
    }

    fn modules(&self) -> Result<Vec<ModuleInfo>, TargetError> {
        Ok(self.modules.clone())
    }

    fn symbol_address(&self, module: &str, symbol: &str) -> Result<u64, TargetError> {
        self.symbols
            .get(&(module.into(), symbol.into()))
            .copied()
            .ok_or_else(|| TargetError::NoSymbol {
                module: module.into(),
                symbol: symbol.into(),
                reason: "not in the test symbol map".into(),
            })
    }

    fn type_size(&self, module: &str, ty: &str) -> Result<u64, TargetError> {
        self.types
            .get(&(module.into(), ty.into()))
            .copied()
            .ok_or_else(|| TargetError::NoType {
                module: module.into(),
                ty: ty.into(),
                field: None,
                reason: "not in the test type map".into(),
            })
    }

    fn field_offset(&self, module: &str, ty: &str, field: &str) -> Result<u64, TargetError> {
        self.fields
            .get(&(module.into(), ty.into(), field.into()))
            .copied()
            .ok_or_else(|| TargetError::NoType {
                module: module.into(),
                ty: ty.into(),
                field: Some(field.into()),
                reason: "not in the test type map".into(),
            })
    }

    fn clock(&self) -> TargetClock {
        self.clock
    }

    fn build_number(&self) -> Option<u32> {
        self.build
    }

    fn interrupted(&self) -> bool {
        let n = self.polls.get() + 1;
        self.polls.set(n);
        self.interrupt_after.is_some_and(|k| n > k)
    }

    fn describe(&self) -> String {
        "in-memory test target".into()
    }
}

/// Wraps a target to watch the engine: counts the distinct 4 KiB pages it reads, and (when
/// `interrupt_after` is set) reports Ctrl+Break once that many interrupt polls have passed.
pub struct Watched<'a> {
    pub inner: &'a dyn Target,
    pub interrupt_after: Option<u64>,
    pages: std::cell::RefCell<std::collections::HashSet<u64>>,
    polls: Cell<u64>,
}

impl<'a> Watched<'a> {
    pub fn new(inner: &'a dyn Target) -> Self {
        Self {
            inner,
            interrupt_after: None,
            pages: Default::default(),
            polls: Cell::new(0),
        }
    }

    /// Distinct pages read so far.
    pub fn pages_read(&self) -> usize {
        self.pages.borrow().len()
    }
}

impl Target for Watched<'_> {
    fn read_virtual(&self, va: u64, buf: &mut [u8]) -> Result<usize, TargetError> {
        let n = self.inner.read_virtual(va, buf)?;
        let mut pages = self.pages.borrow_mut();
        let mut p = va & !(PAGE - 1);
        while p < va.saturating_add(n as u64) {
            pages.insert(p);
            p += PAGE;
        }
        Ok(n)
    }
    fn modules(&self) -> Result<Vec<ModuleInfo>, TargetError> {
        self.inner.modules()
    }
    fn symbol_address(&self, module: &str, symbol: &str) -> Result<u64, TargetError> {
        self.inner.symbol_address(module, symbol)
    }
    fn type_size(&self, module: &str, ty: &str) -> Result<u64, TargetError> {
        self.inner.type_size(module, ty)
    }
    fn field_offset(&self, module: &str, ty: &str, field: &str) -> Result<u64, TargetError> {
        self.inner.field_offset(module, ty, field)
    }
    fn clock(&self) -> TargetClock {
        self.inner.clock()
    }
    fn build_number(&self) -> Option<u32> {
        self.inner.build_number()
    }
    fn process_list_head(&self) -> Option<u64> {
        self.inner.process_list_head()
    }
    fn interrupted(&self) -> bool {
        let n = self.polls.get() + 1;
        self.polls.set(n);
        self.interrupt_after.is_some_and(|k| n > k) || self.inner.interrupted()
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
}
