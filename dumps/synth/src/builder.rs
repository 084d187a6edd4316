//! From a scenario to a dump, a symbol store and the truth.

use std::fs;
use std::path::Path;

use crate::gen::{self, Ep};
use crate::kernel::{self, KdbgInputs, Loaded, TICKS_PER_SEC_100NS};
use crate::layout::Layout;
use crate::modules::{self, BuildModules};
use crate::scenario::Scenario;
use crate::space::{Pages, Pool, Space};
use crate::tcpip::{self, Ctx};
use crate::truth::{self, Truth, TruthModule, TruthProcess};
use crate::{dump, Built, Error};

/// Kernel virtual addresses of one build: Windows 7 put drivers at 0xFFFFF880`..., the kernel at
/// 0xFFFFF800`02xxxxxx and nonpaged pool at 0xFFFFFA80`...; Windows 10+ randomises within
/// 0xFFFFF80x`... (images) and 0xFFFF8xxx`...-0xFFFFBxxx`... (pool). The values are plausible
/// picks, fixed so that dumps are reproducible.
struct Bases {
    nt: u64,
    tcpip: u64,
    afd: u64,
    pool: u64,
}

fn bases(build: u32) -> Bases {
    if build < 9200 {
        Bases {
            nt: 0xFFFF_F800_02A0_0000,
            tcpip: 0xFFFF_F880_0160_0000,
            afd: 0xFFFF_F880_0240_0000,
            pool: 0xFFFF_FA80_0180_0000,
        }
    } else {
        Bases {
            nt: 0xFFFF_F807_3C60_0000,
            tcpip: 0xFFFF_F807_4100_0000,
            afd: 0xFFFF_F807_4350_0000,
            pool: 0xFFFF_A00C_4E00_0000,
        }
    }
}

/// The layout for a build: the shared tables' preferred candidates (MEMORY-MODEL.md).
pub fn layout_for(build: u32, tcpip_version: Option<[u16; 4]>) -> Result<Layout, Error> {
    Layout::from_tables(build, tcpip_version)
}

/// Builds the scenario into `out_dir` (created if needed).
pub fn build(s: &Scenario, out_dir: &Path) -> Result<Built, Error> {
    let io =
        |what: &str, p: &Path, e: std::io::Error| Error::Io(format!("{what} {}: {e}", p.display()));
    fs::create_dir_all(out_dir).map_err(|e| io("creating", out_dir, e))?;
    let m = modules::for_build(s.system.build)?;
    let l = layout_for(s.system.build, Some(m.tcpip.version))?;
    let eps = gen::expand(s)?;
    let now = crate::unix_to_filetime(s.system.system_time_unix);
    let uptime = s.system.uptime_secs * TICKS_PER_SEC_100NS;
    let boot = now
        .checked_sub(uptime)
        .ok_or_else(|| Error::Scenario("uptime reaches before 1601".into()))?;

    let b = bases(s.system.build);
    let mut sp = Pages::new();
    let mut pool = Pool::new(b.pool);
    let nt = kernel::map_image(&mut sp, b.nt, m.nt.image)?;
    let tcpip_img = kernel::map_image(&mut sp, b.tcpip, m.tcpip.image)?;
    let afd_img = kernel::map_image(&mut sp, b.afd, m.afd.image)?;
    let o = &m.offsets;

    // The kernel address space has one DTB; every process shares it in this model. The value is
    // only known after the physical pass, so a placeholder is patched below.
    let proc_head = nt.va(m.nt.rva("PsActiveProcessHead")?);
    let eprocess = kernel::processes(&mut sp, &mut pool, o, s, proc_head, 0, boot)?;
    let mods_head = nt.va(m.nt.rva("PsLoadedModuleList")?);
    kernel::module_list(
        &mut sp,
        &mut pool,
        o,
        mods_head,
        &[(&m.nt, &nt), (&m.tcpip, &tcpip_img), (&m.afd, &afd_img)],
    )?;
    kernel::kuser(&mut sp, o, s, now)?;
    let kdbg_va = nt.va(m.nt.rva("KdDebuggerDataBlock")?);
    let kdbg_size =
        m.nt.global_sizes
            .get("KdDebuggerDataBlock")
            .copied()
            .unwrap_or(0x368);
    let kd = KdbgInputs {
        kern_base: nt.base,
        ps_loaded_module_list: mods_head,
        ps_active_process_head: proc_head,
        eprocess_size: o.eprocess_size,
        eprocess_dtb: o.eprocess_dtb,
        size: kdbg_size,
    };
    kernel::kdbg(&mut sp, o, kdbg_va, &kd)?;

    let ctx = Ctx {
        l: &l,
        eprocess: &eprocess,
        now,
        partitions: s.system.partition_count,
        hash: &s.hash,
    };
    let (placed, g) = tcpip::write(&mut sp, &mut pool, &ctx, &eps)?;
    patch_tcpip(&mut sp, &m, &tcpip_img, &l, &g)?;
    let afd_head = afd_img.va(m.afd.rva("AfdEndpointListHead")?);
    let afd = crate::afd::write(&mut sp, &mut pool, &l, &eprocess, afd_head, &eps)?;
    // Last pool allocation: the big-page table lists every big block allocated before it.
    let entry = if s.system.build >= 20348 { 0x20 } else { 0x18 };
    let (big, big_count) = pool.big_page_table(&mut sp, entry)?;
    sp.write(nt.va(m.nt.rva("PoolBigPageTable")?), &big.to_le_bytes())?;
    sp.write(
        nt.va(m.nt.rva("PoolBigPageTableSize")?),
        &big_count.to_le_bytes(),
    )?;

    // Physical pass, then the DTB into every EPROCESS (same frames, so patch the Memory).
    let mut phys = dump::physical(&sp)?;
    for &ep in eprocess.values() {
        let pt = dumps::synth::PageTables {
            pml4: dumps::Gpa(phys.dtb),
        };
        pt.write_virt(
            &mut phys.mem,
            dumps::Gva(ep + u64::from(o.eprocess_dtb)),
            &phys.dtb.to_le_bytes(),
        )
        .map_err(|e| Error::Layout(format!("patching the DTB of EPROCESS {ep:#x}: {e}")))?;
    }
    let dump_path = out_dir.join(format!("{}.dmp", s.name));
    let header = dump::Header {
        dump_type: s.system.dump_type,
        build: s.system.build,
        processors: s.system.processors,
        system_time: now,
        uptime_100ns: uptime,
        product_type: s.system.product_type,
        ps_loaded_module_list: mods_head,
        ps_active_process_head: proc_head,
        kd_debugger_data_block: kdbg_va,
        pfn_database: nt.va(m.nt.rva("MmPfnDatabase").unwrap_or(0)),
        ram_pages: s.system.ram_mib << 8,
        filler: s.system.filler,
        comment: format!("portleak synthetic scenario {}", s.name),
    };
    let dump_size = dump::write(&dump_path, &phys, &header)?;

    let symbols_dir = out_dir.join("symbols");
    for md in [&m.nt, &m.tcpip, &m.afd] {
        let dir = symbols_dir.join(&md.pdb_name).join(&md.pdb_symstore);
        fs::create_dir_all(&dir).map_err(|e| io("creating", &dir, e))?;
        let p = dir.join(&md.pdb_name);
        fs::write(&p, md.pdb).map_err(|e| io("writing", &p, e))?;
    }

    let truth_data = make_truth(
        s,
        &m,
        &eps,
        &placed,
        &afd,
        &eprocess,
        boot,
        phys.dtb,
        [&nt, &tcpip_img, &afd_img],
    )?;
    let truth_path = out_dir.join(format!("{}.truth.json", s.name));
    let json = serde_json::to_string_pretty(&truth_data)
        .map_err(|e| Error::Io(format!("serialising the truth: {e}")))?;
    fs::write(&truth_path, json).map_err(|e| io("writing", &truth_path, e))?;
    Ok(Built {
        dump: dump_path,
        symbols_dir,
        truth: truth_path,
        truth_data,
        dump_size,
        frames: phys.mem.frame_count() as u64,
    })
}

fn patch_tcpip(
    sp: &mut Pages,
    m: &BuildModules,
    img: &Loaded,
    l: &Layout,
    g: &tcpip::Globals,
) -> Result<(), Error> {
    sp.write(
        img.va(m.tcpip.rva("PartitionTable")?),
        &g.partition_table.to_le_bytes(),
    )?;
    sp.write(
        img.va(m.tcpip.rva("PartitionCount")?),
        &(g.partition_count as u32).to_le_bytes(),
    )?;
    let (tcp, udp) = if l.compartments {
        ("TcpCompartmentSet", "UdpCompartmentSet")
    } else {
        ("TcpPortPool", "UdpPortPool")
    };
    sp.write(img.va(m.tcpip.rva(tcp)?), &g.tcp_root.to_le_bytes())?;
    sp.write(img.va(m.tcpip.rva(udp)?), &g.udp_root.to_le_bytes())?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn make_truth(
    s: &Scenario,
    m: &BuildModules,
    eps: &[Ep],
    placed: &[tcpip::Placed],
    afd: &[Option<u64>],
    eprocess: &std::collections::BTreeMap<u32, u64>,
    boot: u64,
    dtb: u64,
    imgs: [&Loaded; 3],
) -> Result<Truth, Error> {
    let now = crate::unix_to_filetime(s.system.system_time_unix);
    let rows: Vec<_> = eps
        .iter()
        .zip(placed)
        .zip(afd)
        .map(|((e, p), a)| {
            (
                p.va,
                p.tag,
                *a,
                now.saturating_sub(e.age_secs * TICKS_PER_SEC_100NS),
            )
        })
        .collect();
    let endpoints = truth::endpoints(eps, &rows);
    let (lo, hi) = gen::parse_range(&s.system.dynamic_ports, "dynamic_ports")?;
    let range = (
        u16::try_from(lo).unwrap_or(u16::MAX),
        u16::try_from(hi).unwrap_or(u16::MAX),
    );
    let (counts, dynamic_range, derived) =
        truth::derive(s, Some(m.tcpip.version), &endpoints, range);
    let processes = s
        .processes
        .iter()
        .map(|p| TruthProcess {
            pid: p.pid,
            ppid: p.ppid,
            image: p.image.chars().take(14).collect(),
            eprocess: eprocess[&p.pid],
            create_time: boot + p.started_secs * TICKS_PER_SEC_100NS,
            exit_time: p.exited_secs.map(|x| boot + x * TICKS_PER_SEC_100NS),
        })
        .collect();
    let modules = [&m.nt, &m.tcpip, &m.afd]
        .iter()
        .zip(imgs)
        .map(|(md, at)| TruthModule {
            name: md.file.clone(),
            base: at.base,
            size: at.size,
            file_version: Some(md.version),
            pdb_guid_age: md.pdb_symstore.clone(),
        })
        .collect();
    Ok(Truth {
        scenario: s.name.clone(),
        build: s.system.build,
        dump_type: s.system.dump_type,
        system_time: now,
        uptime_secs: s.system.uptime_secs,
        dtb,
        modules,
        processes,
        endpoints,
        counts,
        dynamic_range,
        derived,
        intended: s.expect.clone(),
    })
}
