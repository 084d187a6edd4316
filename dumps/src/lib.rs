//! Reader of 64-bit Windows kernel crash dumps (MEMORY.DMP, DumpTypes 1, 5, 6, 8, 9, 10) and the
//! writer of synthetic dumps used by the tests.
