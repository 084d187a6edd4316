//! Output that both front doors share: the CLI prints plain text, the extension prints DML.
//!
//! Renderers write through [`Markup`], so a process id can become a clickable `!portleak -process`
//! link in WinDbg while the CLI prints the same characters without markup. The visible text is
//! identical in both, which is what lets the tests compare `!portleak -report` with
//! `portleak report` byte for byte.

/// A sink for rendered output.
pub trait Markup {
    /// Plain text, printed as is (the sink escapes it if its format needs that).
    fn text(&mut self, s: &str);
    /// `label` shown as a link that runs the debugger command `command` when clicked.
    fn link(&mut self, label: &str, command: &str) {
        let _ = command;
        self.text(label);
    }
    /// Emphasised text (headings, verdicts).
    fn bold(&mut self, s: &str) {
        self.text(s);
    }
}

/// Plain text into a `String`; links and emphasis show only their label.
#[derive(Debug, Default, Clone)]
pub struct PlainText(pub String);

impl Markup for PlainText {
    fn text(&mut self, s: &str) {
        self.0.push_str(s);
    }
}
