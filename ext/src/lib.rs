//! portleak as a DbgEng extension DLL.
