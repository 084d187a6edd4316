//! Walkers of tcpip.sys's endpoint structures.

pub mod hash;
