//! Warnings gathered during a walk.
//!
//! A kernel dump is never perfectly consistent: pages are missing, lists are cut, objects are
//! half-freed. The walkers keep going and record what they skipped here. Warnings of one kind
//! are counted, with the first few kept as examples, so 15,000 unreadable entries make one line
//! in the report rather than 15,000.

use serde::Serialize;
use std::collections::BTreeMap;

/// How many example messages one kind of warning keeps.
const EXAMPLES_PER_KIND: usize = 3;

/// One kind of warning with its count and a few examples.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WarningGroup {
    /// Stable identifier, e.g. `tcb-unreadable`, `list-cycle`.
    pub kind: String,
    pub count: u64,
    pub examples: Vec<String>,
}

/// Collects warnings by kind, in first-seen order.
#[derive(Debug, Default, Clone)]
pub struct Diagnostics {
    order: Vec<String>,
    groups: BTreeMap<String, WarningGroup>,
    notes: Vec<String>,
}

impl Diagnostics {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a warning of `kind`; the message is kept if fewer than a few of this kind were.
    pub fn warn(&mut self, kind: &str, message: impl Into<String>) {
        let group = match self.groups.get_mut(kind) {
            Some(g) => g,
            None => {
                self.order.push(kind.to_string());
                self.groups.entry(kind.to_string()).or_insert(WarningGroup {
                    kind: kind.to_string(),
                    count: 0,
                    examples: Vec::new(),
                })
            }
        };
        group.count += 1;
        if group.examples.len() < EXAMPLES_PER_KIND {
            group.examples.push(message.into());
        }
    }

    /// Records an informational note (how a value was obtained, a fallback taken).
    pub fn note(&mut self, message: impl Into<String>) {
        let m = message.into();
        if !self.notes.contains(&m) {
            self.notes.push(m);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Warning groups in first-seen order.
    pub fn groups(&self) -> Vec<WarningGroup> {
        self.order
            .iter()
            .filter_map(|k| self.groups.get(k).cloned())
            .collect()
    }

    pub fn count(&self, kind: &str) -> u64 {
        self.groups.get(kind).map_or(0, |g| g.count)
    }

    pub fn notes(&self) -> &[String] {
        &self.notes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_count_and_keep_few_examples() {
        let mut d = Diagnostics::new();
        for i in 0..10 {
            d.warn("tcb-unreadable", format!("TCB {i}"));
        }
        d.warn("list-cycle", "cycle");
        let g = d.groups();
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].kind, "tcb-unreadable");
        assert_eq!(g[0].count, 10);
        assert_eq!(g[0].examples, vec!["TCB 0", "TCB 1", "TCB 2"]);
        assert_eq!(d.count("list-cycle"), 1);
        assert_eq!(d.count("nothing"), 0);
    }

    #[test]
    fn notes_are_deduplicated() {
        let mut d = Diagnostics::new();
        d.note("a");
        d.note("a");
        d.note("b");
        assert_eq!(d.notes(), &["a".to_string(), "b".to_string()]);
    }
}
