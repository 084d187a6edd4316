//! The extension's [`Markup`] sink, independent of DbgEng so it is tested on Linux.
//!
//! Text is collected and handed to an [`Emit`] in chunks that end at a line break, so the debugger
//! gets a few large Output calls instead of one per cell, and every chunk is well-formed DML on its
//! own: tags never span a line break (labels have their line breaks removed, bold text is closed
//! per line), so a chunk cut at `\n` never splits an element.

use portleak::render::Markup;

/// The output classes of `IDebugControl::Output` (DEBUG_OUTPUT_NORMAL/ERROR/WARNING/VERBOSE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mask {
    Normal,
    Error,
    Warning,
    Verbose,
}

/// Where finished chunks go: the debugger's output in the DLL, a vector in tests.
pub trait Emit {
    /// `chunk` is the text to show; `dml` says whether it is DML markup. The implementation applies
    /// the escaping its API needs (printf `%` for DbgEng).
    fn emit(&mut self, mask: Mask, dml: bool, chunk: &str);
}

/// Chunks of at least this many bytes are passed on as soon as a line ends.
const FLUSH_AT: usize = 4096;
/// No chunk is longer than this. DbgEng formats each Output call into a bounded buffer and
/// truncates what does not fit (a 16 KiB limit is the commonly cited figure; not verified here), so
/// chunks stay well below that even after `%` doubling.
const MAX_CHUNK: usize = 7680;

fn floor_char_boundary(s: &str, max: usize) -> usize {
    let mut i = max.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// A [`Markup`] that writes DML (links, bold) or plain text into an [`Emit`].
pub struct Buffered<E: Emit> {
    emit: E,
    dml: bool,
    buf: String,
}

impl<E: Emit> Buffered<E> {
    pub fn new(emit: E, dml: bool) -> Self {
        Self {
            emit,
            dml,
            buf: String::new(),
        }
    }

    pub fn is_dml(&self) -> bool {
        self.dml
    }

    /// Passes on everything collected so far.
    pub fn flush(&mut self) {
        if !self.buf.is_empty() {
            let chunk = std::mem::take(&mut self.buf);
            self.emit.emit(Mask::Normal, self.dml, &chunk);
        }
    }

    /// A whole message on another output class (errors, warnings); normal text collected so far
    /// goes first so the order on screen is the order of the calls. Always plain text.
    pub fn message(&mut self, mask: Mask, text: &str) {
        self.flush();
        let mut line = text.to_string();
        if !line.ends_with('\n') {
            line.push('\n');
        }
        if self.dml {
            self.emit.emit(mask, true, &escape_dml(&line));
        } else {
            self.emit.emit(mask, false, &line);
        }
    }

    /// Flushes and returns the emitter.
    pub fn finish(mut self) -> E {
        self.flush();
        self.emit
    }

    pub fn emitter(&mut self) -> &mut E {
        &mut self.emit
    }

    fn push(&mut self, s: &str) {
        self.buf.push_str(s);
        while self.buf.len() >= FLUSH_AT {
            // Cut at the last line break that keeps the chunk under MAX_CHUNK; a single line longer
            // than that is cut at a character boundary (DbgEng truncates longer format strings).
            let window = floor_char_boundary(&self.buf, MAX_CHUNK);
            let cut = match self.buf[..window].rfind('\n') {
                Some(i) => i + 1,
                None if self.buf.len() > MAX_CHUNK => window,
                None => break,
            };
            let rest = self.buf.split_off(cut);
            let chunk = std::mem::replace(&mut self.buf, rest);
            self.emit.emit(Mask::Normal, self.dml, &chunk);
        }
    }
}

impl<E: Emit> Markup for Buffered<E> {
    fn text(&mut self, s: &str) {
        if self.dml {
            self.push(&escape_dml(s));
        } else {
            self.push(s);
        }
    }

    fn link(&mut self, label: &str, command: &str) {
        if self.dml {
            let label = one_line(label);
            let command = one_line(command);
            self.push(&format!(
                "<link cmd=\"{}\">{}</link>",
                escape_dml(&command),
                escape_dml(&label)
            ));
        } else {
            self.push(label);
        }
    }

    fn bold(&mut self, s: &str) {
        if !self.dml {
            self.push(s);
            return;
        }
        // Close the element before each line break so chunks cut at `\n` stay balanced.
        let mut first = true;
        for line in s.split('\n') {
            if !first {
                self.push("\n");
            }
            first = false;
            if !line.is_empty() {
                self.push(&format!("<b>{}</b>", escape_dml(line)));
            }
        }
    }
}

fn one_line(s: &str) -> String {
    s.replace(['\r', '\n'], " ")
}

/// Escapes the characters DML gives meaning to (the same four entities the engine decodes).
pub fn escape_dml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// Makes `s` safe as the *format* argument of `IDebugControl::Output*`: the engine runs it through
/// printf, so every `%` must be doubled or a process name like `50%.exe` would print garbage or
/// read stray varargs. NUL would end the C string early, so it is shown as `\0`.
pub fn escape_printf(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '%' => out.push_str("%%"),
            '\0' => out.push_str("\\0"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Rec(Vec<(Mask, bool, String)>);
    impl Emit for Rec {
        fn emit(&mut self, mask: Mask, dml: bool, chunk: &str) {
            self.0.push((mask, dml, chunk.to_string()));
        }
    }

    fn render(dml: bool, f: impl FnOnce(&mut Buffered<Rec>)) -> Vec<(Mask, bool, String)> {
        let mut b = Buffered::new(Rec::default(), dml);
        f(&mut b);
        b.finish().0
    }

    #[test]
    fn dml_links_and_entities() {
        let out = render(true, |m| {
            m.text("a<b & \"c\" 5%\n");
            m.link("pid 4", "!portleak -process 4");
            m.link("x<y", "dt nt!_EPROCESS \"q\"");
            m.bold("Head\nTail");
        });
        assert_eq!(out.len(), 1);
        assert_eq!(
            out[0].2,
            "a&lt;b &amp; &quot;c&quot; 5%\n<link cmd=\"!portleak -process 4\">pid 4</link>\
             <link cmd=\"dt nt!_EPROCESS &quot;q&quot;\">x&lt;y</link><b>Head</b>\n<b>Tail</b>"
        );
        assert!(out[0].1);
    }

    #[test]
    fn plain_text_has_labels_only() {
        let out = render(false, |m| {
            m.text("a<b ");
            m.link("4", "!portleak -process 4");
            m.bold(" B");
        });
        assert_eq!(out, vec![(Mask::Normal, false, "a<b 4 B".to_string())]);
    }

    #[test]
    fn chunks_end_at_line_breaks_and_keep_everything() {
        let mut text = String::new();
        let out = render(true, |m| {
            for i in 0..2000 {
                m.link(&format!("{i}"), &format!("!portleak -process {i}"));
                m.text(" line\n");
            }
        });
        assert!(out.len() > 1, "large output is emitted in several chunks");
        for (_, _, c) in &out[..out.len() - 1] {
            assert!(c.ends_with('\n'));
            assert_eq!(c.matches("<link").count(), c.matches("</link>").count());
        }
        for (_, _, c) in &out {
            text.push_str(c);
        }
        assert_eq!(text.matches("</link> line\n").count(), 2000);
    }

    #[test]
    fn one_huge_push_is_split_under_the_limit() {
        let big: String = (0..3000).map(|i| format!("row {i} é%\n")).collect();
        let long_line = "x".repeat(20_000);
        let out = render(false, |m| {
            m.text(&big);
            m.text(&long_line);
        });
        assert!(out.iter().all(|(_, _, c)| c.len() <= MAX_CHUNK));
        let joined: String = out.iter().map(|(_, _, c)| c.as_str()).collect();
        assert_eq!(joined, format!("{big}{long_line}"));
    }

    #[test]
    fn messages_flush_normal_text_first() {
        let out = render(true, |m| {
            m.text("partial ");
            m.message(Mask::Warning, "stopped <early>");
        });
        assert_eq!(out[0], (Mask::Normal, true, "partial ".into()));
        assert_eq!(
            out[1],
            (Mask::Warning, true, "stopped &lt;early&gt;\n".into())
        );
    }

    #[test]
    fn printf_escaping() {
        assert_eq!(escape_printf("100% %s %%"), "100%% %%s %%%%");
        assert_eq!(escape_printf("a\0b"), "a\\0b");
        assert_eq!(escape_printf("plain"), "plain");
    }

    #[test]
    fn link_labels_lose_line_breaks() {
        let out = render(true, |m| m.link("a\nb", "cmd\r\nx"));
        assert_eq!(out[0].2, "<link cmd=\"cmd  x\">a b</link>");
    }
}
