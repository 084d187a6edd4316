//! Module identity (PE/RSDS/version), symbol paths and stores, PDB types and publics, and the
//! built-in per-build layouts of tcpip.sys/afd.sys private structures.
