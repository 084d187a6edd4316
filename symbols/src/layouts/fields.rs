//! Uniform field enumeration over every layout structure, so consistency checks (offset plus
//! width inside the read window, no overlaps, distinct candidates) and documentation can treat
//! all tables alike.

use super::afd::AfdEndpointLayout;
use super::nt::{EprocessLayout, KdbgLayout, KldrLayout, KuserLayout};
use super::tcpip::*;
use super::types::{AddrStorage, Offset};

/// One field of a layout structure: its name, offset candidates and the width in bytes of the
/// value stored there (pointer 8, LIST_ENTRY 16, port 2, ...).
#[derive(Debug, Clone, Copy)]
pub struct FieldRef<'a> {
    /// Field name as used in the data files.
    pub name: &'static str,
    /// The offset and its candidates.
    pub offset: &'a Offset,
    /// Width in bytes of the value in its preferred form.
    pub width: u32,
    /// Largest width over the forms the field may take (differs only for the TIME_WAIT remote
    /// address: 8 as a pointer, 16 inline); every candidate plus this must fit the read window.
    pub max_width: u32,
}

/// A structure whose fields can be enumerated.
pub trait StructLayout {
    /// The Windows structure (or pool object) name.
    fn struct_name(&self) -> &'static str;
    /// The read window in bytes.
    fn size(&self) -> u32;
    /// All fields that are present for this build.
    fn fields(&self) -> Vec<FieldRef<'_>>;
}

const PTR: u32 = 8;
const LIST: u32 = 16;
const U16: u32 = 2;
const U32: u32 = 4;
const U64: u32 = 8;
const KSYSTEM_TIME: u32 = 12;

fn f<'a>(name: &'static str, offset: &'a Offset, width: u32) -> FieldRef<'a> {
    FieldRef {
        name,
        offset,
        width,
        max_width: width,
    }
}

fn opt<'a>(v: &mut Vec<FieldRef<'a>>, name: &'static str, o: &'a Option<Offset>, width: u32) {
    if let Some(o) = o {
        v.push(f(name, o, width));
    }
}

impl StructLayout for TcbLayout {
    fn struct_name(&self) -> &'static str {
        "_TCP_ENDPOINT"
    }
    fn size(&self) -> u32 {
        self.size
    }
    fn fields(&self) -> Vec<FieldRef<'_>> {
        let mut v = vec![
            f("hash_link", &self.hash_link, LIST),
            f("inet_af", &self.inet_af, PTR),
            f("addr_info", &self.addr_info, PTR),
            f("state", &self.state, U32),
            f("local_port", &self.local_port, U16),
            f("remote_port", &self.remote_port, U16),
            f("owner", &self.owner, PTR),
        ];
        opt(&mut v, "create_time", &self.create_time, U64);
        v
    }
}

impl StructLayout for TimeWaitLayout {
    fn struct_name(&self) -> &'static str {
        "_TCP_TIMEWAIT_ENDPOINT"
    }
    fn size(&self) -> u32 {
        self.size
    }
    fn fields(&self) -> Vec<FieldRef<'_>> {
        let width_of = |s: &AddrStorage| match s {
            AddrStorage::Inline => 16,
            AddrStorage::Pointer => PTR,
        };
        let remote = FieldRef {
            name: "remote_addr",
            offset: &self.remote_addr,
            width: self.remote_addr_storage.first().map_or(PTR, width_of),
            max_width: self
                .remote_addr_storage
                .iter()
                .map(width_of)
                .max()
                .unwrap_or(PTR),
        };
        let mut v = vec![
            f("link", &self.link, LIST),
            f("inet_af", &self.inet_af, PTR),
            f("local_port", &self.local_port, U16),
            f("remote_port", &self.remote_port, U16),
            f("local_addr", &self.local_addr, PTR),
            remote,
        ];
        opt(&mut v, "time", &self.time, U64);
        v
    }
}

impl StructLayout for SynLayout {
    fn struct_name(&self) -> &'static str {
        "_TCP_SYN_ENDPOINT"
    }
    fn size(&self) -> u32 {
        self.size
    }
    fn fields(&self) -> Vec<FieldRef<'_>> {
        vec![
            f("list_entry", &self.list_entry, LIST),
            f("inet_af", &self.inet_af, PTR),
            f("local_addr", &self.local_addr, PTR),
            f("owner", &self.owner, PTR),
            f("remote_addr", &self.remote_addr, PTR),
            f("local_port", &self.local_port, U16),
            f("remote_port", &self.remote_port, U16),
        ]
    }
}

impl StructLayout for ListenerLayout {
    fn struct_name(&self) -> &'static str {
        "_TCP_LISTENER"
    }
    fn size(&self) -> u32 {
        self.size
    }
    fn fields(&self) -> Vec<FieldRef<'_>> {
        let mut v = vec![
            f("inet_af", &self.inet_af, PTR),
            f("owner", &self.owner, PTR),
            f("local_addr", &self.local_addr, PTR),
            f("port", &self.port, U16),
            f("link", &self.link, PTR),
        ];
        opt(&mut v, "create_time", &self.create_time, U64);
        v
    }
}

impl StructLayout for UdpLayout {
    fn struct_name(&self) -> &'static str {
        "_UDP_ENDPOINT"
    }
    fn size(&self) -> u32 {
        self.size
    }
    fn fields(&self) -> Vec<FieldRef<'_>> {
        let mut v = vec![
            f("inet_af", &self.inet_af, PTR),
            f("owner", &self.owner, PTR),
            f("local_addr", &self.local_addr, PTR),
            f("port", &self.port, U16),
            f("link", &self.link, PTR),
        ];
        opt(&mut v, "create_time", &self.create_time, U64);
        opt(&mut v, "remote_port", &self.remote_port, U16);
        opt(&mut v, "remote_addr", &self.remote_addr, PTR);
        v
    }
}

impl StructLayout for InetAfLayout {
    fn struct_name(&self) -> &'static str {
        "_INETAF"
    }
    fn size(&self) -> u32 {
        self.size
    }
    fn fields(&self) -> Vec<FieldRef<'_>> {
        vec![f("address_family", &self.address_family, U16)]
    }
}

impl StructLayout for AddrInfoLayout {
    fn struct_name(&self) -> &'static str {
        "_ADDRINFO"
    }
    fn size(&self) -> u32 {
        self.size
    }
    fn fields(&self) -> Vec<FieldRef<'_>> {
        vec![f("local", &self.local, PTR), f("remote", &self.remote, PTR)]
    }
}

impl StructLayout for LocalAddressLayout {
    fn struct_name(&self) -> &'static str {
        if self.win10_udp {
            "_LOCAL_ADDRESS_WIN10_UDP"
        } else {
            "_LOCAL_ADDRESS"
        }
    }
    fn size(&self) -> u32 {
        self.size
    }
    fn fields(&self) -> Vec<FieldRef<'_>> {
        vec![f("pdata", &self.pdata, PTR)]
    }
}

impl StructLayout for PartitionLayout {
    fn struct_name(&self) -> &'static str {
        "_PARTITION"
    }
    fn size(&self) -> u32 {
        // The smallest stride candidate bounds every record field.
        self.stride.candidates.iter().copied().min().unwrap_or(0)
    }
    fn fields(&self) -> Vec<FieldRef<'_>> {
        let mut v = vec![
            f("ht_first", &self.ht_first, PTR),
            f("ht_endpoints", &self.ht_endpoints, PTR),
            f("ht_third", &self.ht_third, PTR),
        ];
        opt(&mut v, "self_linked_probe", &self.self_linked_probe, LIST);
        v
    }
}

impl StructLayout for HashTableLayout {
    fn struct_name(&self) -> &'static str {
        "_RTL_DYNAMIC_HASH_TABLE"
    }
    fn size(&self) -> u32 {
        self.size
    }
    fn fields(&self) -> Vec<FieldRef<'_>> {
        vec![
            f("table_size", &self.table_size, U32),
            f("pivot", &self.pivot, U32),
            f("divisor_mask", &self.divisor_mask, U32),
            f("num_entries", &self.num_entries, U32),
            f("non_empty_buckets", &self.non_empty_buckets, U32),
            f("directory", &self.directory, PTR),
        ]
    }
}

impl StructLayout for PortPoolLayout {
    fn struct_name(&self) -> &'static str {
        "_INET_PORT_POOL"
    }
    fn size(&self) -> u32 {
        self.size
    }
    fn fields(&self) -> Vec<FieldRef<'_>> {
        vec![
            // RTL_BITMAP is 0x10 bytes; the assignment array holds 256 pointers.
            f("port_bitmap", &self.port_bitmap, 0x10),
            f("port_assignments", &self.port_assignments, 256 * PTR),
        ]
    }
}

impl StructLayout for AfdEndpointLayout {
    fn struct_name(&self) -> &'static str {
        "AFD_ENDPOINT"
    }
    fn size(&self) -> u32 {
        self.size
    }
    fn fields(&self) -> Vec<FieldRef<'_>> {
        let mut v = vec![
            f("signature", &self.signature, U16),
            f("owner", &self.owner, PTR),
            f("list_link", &self.list_link, LIST),
        ];
        opt(&mut v, "provider", &self.provider, PTR);
        v
    }
}

impl StructLayout for EprocessLayout {
    fn struct_name(&self) -> &'static str {
        "_EPROCESS"
    }
    fn size(&self) -> u32 {
        self.size
    }
    fn fields(&self) -> Vec<FieldRef<'_>> {
        vec![
            f("header_type", &self.header_type, 1),
            f("directory_table_base", &self.directory_table_base, PTR),
            f("unique_process_id", &self.unique_process_id, PTR),
            f("active_process_links", &self.active_process_links, LIST),
            f("create_time", &self.create_time, U64),
            f("exit_time", &self.exit_time, U64),
            f("object_table", &self.object_table, PTR),
            f(
                "inherited_from_unique_process_id",
                &self.inherited_from_unique_process_id,
                PTR,
            ),
            f("image_file_name", &self.image_file_name, 15),
            f("exit_status", &self.exit_status, U32),
        ]
    }
}

impl StructLayout for KldrLayout {
    fn struct_name(&self) -> &'static str {
        "_KLDR_DATA_TABLE_ENTRY"
    }
    fn size(&self) -> u32 {
        self.size
    }
    fn fields(&self) -> Vec<FieldRef<'_>> {
        vec![
            f("in_load_order_links", &self.in_load_order_links, LIST),
            f("dll_base", &self.dll_base, PTR),
            f("entry_point", &self.entry_point, PTR),
            f("size_of_image", &self.size_of_image, U32),
            f("full_dll_name", &self.full_dll_name, 16),
            f("base_dll_name", &self.base_dll_name, 16),
        ]
    }
}

impl StructLayout for KuserLayout {
    fn struct_name(&self) -> &'static str {
        "_KUSER_SHARED_DATA"
    }
    fn size(&self) -> u32 {
        self.size
    }
    fn fields(&self) -> Vec<FieldRef<'_>> {
        let mut v = vec![
            f("tick_count_multiplier", &self.tick_count_multiplier, U32),
            f("interrupt_time", &self.interrupt_time, KSYSTEM_TIME),
            f("system_time", &self.system_time, KSYSTEM_TIME),
            f("time_zone_bias", &self.time_zone_bias, KSYSTEM_TIME),
            f("nt_product_type", &self.nt_product_type, U32),
            f("nt_major_version", &self.nt_major_version, U32),
            f("nt_minor_version", &self.nt_minor_version, U32),
            f("tick_count_quad", &self.tick_count_quad, U64),
            f("interrupt_time_bias", &self.interrupt_time_bias, U64),
        ];
        opt(&mut v, "nt_build_number", &self.nt_build_number, U32);
        v
    }
}

impl StructLayout for KdbgLayout {
    fn struct_name(&self) -> &'static str {
        "_KDDEBUGGER_DATA64"
    }
    fn size(&self) -> u32 {
        self.size
    }
    fn fields(&self) -> Vec<FieldRef<'_>> {
        let mut v = vec![
            f("owner_tag", &self.owner_tag, U32),
            f("header_size", &self.header_size, U32),
            f("kern_base", &self.kern_base, U64),
            f("ps_loaded_module_list", &self.ps_loaded_module_list, U64),
            f("ps_active_process_head", &self.ps_active_process_head, U64),
            f("ke_time_increment", &self.ke_time_increment, U64),
            f("mm_pfn_database", &self.mm_pfn_database, U64),
            f("ki_processor_block", &self.ki_processor_block, U64),
            f("size_eprocess", &self.size_eprocess, U16),
            f(
                "offset_eprocess_directory_table_base",
                &self.offset_eprocess_directory_table_base,
                U16,
            ),
        ];
        opt(&mut v, "pte_base", &self.pte_base, U64);
        v
    }
}

impl TcpipLayout {
    /// Every structure of the table, for generic checks.
    pub fn structs(&self) -> Vec<&dyn StructLayout> {
        let mut v: Vec<&dyn StructLayout> = vec![
            &self.tcb,
            &self.time_wait,
            &self.listener,
            &self.udp,
            &self.inet_af,
            &self.addr_info,
            &self.local_address,
            &self.partition,
            &self.hash_table,
            &self.port_pool,
        ];
        if let Some(s) = &self.syn {
            v.push(s);
        }
        if let Some(u) = &self.local_address_udp {
            v.push(u);
        }
        v
    }
}

impl super::nt::NtLayout {
    /// Every structure of the table, for generic checks.
    pub fn structs(&self) -> Vec<&dyn StructLayout> {
        vec![&self.eprocess, &self.kldr, &self.kuser, &self.kdbg]
    }
}
