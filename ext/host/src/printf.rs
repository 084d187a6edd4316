//! What the fake engine does with Output text: printf formatting (only `%%`, since the extension
//! passes no arguments) and a strict DML reader that checks well-formedness and recovers the
//! visible text.

/// Formats a printf format with no arguments. Any conversion other than `%%` would make a real
/// engine read a missing argument; it is kept literally and reported.
pub fn format(s: &str) -> (String, Option<String>) {
    let mut out = String::with_capacity(s.len());
    let mut err = None;
    let mut it = s.char_indices().peekable();
    while let Some((i, c)) = it.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match it.peek() {
            Some((_, '%')) => {
                it.next();
                out.push('%');
            }
            next => {
                let conv = next.map_or(String::from("end of text"), |(_, n)| format!("'%{n}'"));
                err.get_or_insert(format!("unescaped printf conversion {conv} at byte {i}"));
                out.push('%');
            }
        }
    }
    (out, err)
}

/// Tags the extension may use, with the attribute each needs.
const TAGS: [(&str, Option<&str>); 4] =
    [("b", None), ("i", None), ("u", None), ("link", Some("cmd"))];

/// A DML link found while reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub label: String,
    pub cmd: String,
}

/// Reads DML: checks that tags are known and balanced, that `&`, `<`, `>` and `"` in text are
/// entities, and returns the visible text (tags dropped, entities decoded) and the links.
pub fn read_dml(s: &str) -> Result<(String, Vec<Link>), String> {
    let mut text = String::new();
    let mut links = Vec::new();
    let mut stack: Vec<(String, usize, String)> = Vec::new();
    let mut rest = s;
    let mut pos = 0usize;
    while let Some(c) = rest.chars().next() {
        match c {
            '<' => {
                let end = rest
                    .find('>')
                    .ok_or_else(|| format!("unterminated tag at byte {pos}"))?;
                let tag = &rest[1..end];
                if let Some(name) = tag.strip_prefix('/') {
                    let (open, start, cmd) = stack
                        .pop()
                        .ok_or_else(|| format!("</{name}> without an open tag at byte {pos}"))?;
                    if open != name {
                        return Err(format!("</{name}> closes <{open}> at byte {pos}"));
                    }
                    if name == "link" {
                        links.push(Link {
                            label: text[start..].to_string(),
                            cmd,
                        });
                    }
                } else {
                    let (name, attrs) = tag.split_once(' ').unwrap_or((tag, ""));
                    let (_, need) = TAGS
                        .iter()
                        .find(|(t, _)| *t == name)
                        .ok_or_else(|| format!("unknown tag <{name}> at byte {pos}"))?;
                    let mut cmd = String::new();
                    if let Some(attr) = need {
                        let v = attrs
                            .trim()
                            .strip_prefix(&format!("{attr}=\""))
                            .and_then(|v| v.strip_suffix('"'))
                            .ok_or_else(|| {
                                format!("<{name}> lacks {attr}=\"...\" at byte {pos}")
                            })?;
                        if v.contains('"') || v.contains('<') {
                            return Err(format!(
                                "unescaped character in {attr} of <{name}> at byte {pos}"
                            ));
                        }
                        cmd = decode(v).map_err(|e| format!("{e} in {attr} at byte {pos}"))?;
                    } else if !attrs.is_empty() {
                        return Err(format!("<{name}> takes no attributes at byte {pos}"));
                    }
                    stack.push((name.to_string(), text.len(), cmd));
                }
                pos += end + 1;
                rest = &rest[end + 1..];
            }
            '&' => {
                let end = rest
                    .find(';')
                    .filter(|e| *e <= 6)
                    .ok_or_else(|| format!("bare '&' at byte {pos}"))?;
                text.push_str(&decode(&rest[..=end]).map_err(|e| format!("{e} at byte {pos}"))?);
                pos += end + 1;
                rest = &rest[end + 1..];
            }
            '>' | '"' => return Err(format!("unescaped '{c}' in text at byte {pos}")),
            c => {
                text.push(c);
                pos += c.len_utf8();
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    if let Some((open, _, _)) = stack.pop() {
        return Err(format!("<{open}> is never closed"));
    }
    Ok((text, links))
}

fn decode(s: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let end = rest[i..].find(';').ok_or("bare '&'")?;
        out.push(match &rest[i..i + end + 1] {
            "&amp;" => '&',
            "&lt;" => '<',
            "&gt;" => '>',
            "&quot;" => '"',
            other => return Err(format!("unknown entity {other}")),
        });
        rest = &rest[i + end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}
