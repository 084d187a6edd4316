//! Aligned text tables whose cells may be links (DML in the debugger, plain in the CLI).

use crate::render::Markup;

/// One cell: its text and, optionally, the debugger command it links to.
#[derive(Debug, Clone, Default)]
pub struct Cell {
    pub text: String,
    pub link: Option<String>,
    pub right: bool,
}

impl Cell {
    pub fn new(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            ..Self::default()
        }
    }
    pub fn num(n: impl ToString) -> Self {
        Self {
            text: n.to_string(),
            right: true,
            link: None,
        }
    }
    pub fn link(text: impl Into<String>, command: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            link: Some(command.into()),
            right: false,
        }
    }
    pub fn right(mut self) -> Self {
        self.right = true;
        self
    }
}

/// Writes `rows` under `header`, columns padded to their widest cell, each line indented.
pub fn write(out: &mut dyn Markup, indent: &str, header: &[&str], rows: &[Vec<Cell>]) {
    let cols = header.len();
    let mut width: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate().take(cols) {
            width[i] = width[i].max(c.text.chars().count());
        }
    }
    let head: Vec<Cell> = header.iter().map(|h| Cell::new(*h)).collect();
    for (k, r) in std::iter::once(&head).chain(rows.iter()).enumerate() {
        let mut line_started = false;
        out.text(indent);
        for (i, c) in r.iter().enumerate().take(cols) {
            if line_started {
                out.text("  ");
            }
            line_started = true;
            let pad = width[i].saturating_sub(c.text.chars().count());
            let last = i + 1 == cols.min(r.len());
            let right = c.right
                || (k == 0
                    && rows
                        .first()
                        .and_then(|r0| r0.get(i))
                        .is_some_and(|c0| c0.right));
            if right {
                out.text(&" ".repeat(pad));
            }
            match &c.link {
                Some(cmd) => out.link(&c.text, cmd),
                None if k == 0 => out.bold(&c.text),
                None => out.text(&c.text),
            }
            if !right && !last {
                out.text(&" ".repeat(pad));
            }
        }
        out.text("\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::PlainText;

    #[test]
    fn pads_and_aligns() {
        let mut p = PlainText::default();
        write(
            &mut p,
            "  ",
            &["PID", "Image"],
            &[
                vec![Cell::num(4), Cell::new("System")],
                vec![Cell::link("1536", "!x").right(), Cell::new("java.exe")],
            ],
        );
        assert_eq!(p.0, "   PID  Image\n     4  System\n  1536  java.exe\n");
    }
}
