//! Synthetic Windows: scenario-driven kernel dumps that look real to a walker.
