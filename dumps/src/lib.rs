//! Reader of 64-bit Windows kernel crash dumps (MEMORY.DMP, DumpTypes 1, 5, 6, 8, 9, 10) and the
//! low-level writer of synthetic dumps ([`synth`]) used by the tests and the scenario builder.
//!
//! ```no_run
//! let dump = dumps::Dump::open("MEMORY.DMP")?;
//! let kernel = dumps::virt::Reader::new(&dump);
//! let head = kernel.read_u64(dumps::Gva::new(dump.header().ps_active_process_head))?;
//! # Ok::<(), dumps::Error>(())
//! ```
//!
//! Internals and design choices: `docs/DUMPS.md`.

mod dump;
pub mod error;
pub mod gxa;
pub mod header;
mod index;
mod layout;
mod phys;
pub mod pxe;
pub mod synth;
pub mod virt;

pub use dump::Dump;
pub use error::{Error, Level, Result};
pub use gxa::{Gpa, Gva, Pfn, PAGE_SIZE};
pub use header::{Context, DumpType, ExceptionRecord, Header};
pub use index::Run;
pub use layout::Layout;
pub use pxe::PageSize;
pub use virt::{Reader, Translation};
