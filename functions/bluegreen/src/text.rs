//! Text from outside stays text: the one rule for strings bluegreen did not write itself
//! (approval and rejection reasons, config strings, event fields, AWS error messages that quote
//! input) on their way in and on their way out.
//!
//! - **At the edge** ([`check`], [`reason`]) what can never be meant is refused with a named
//!   error ([`TextRefused`]): NUL and the other C0 controls (tab excepted), DEL and the C1
//!   controls, the bidirectional overrides, embeddings and isolates, and text past a length
//!   limit. A reason is one line: its line breaks and tabs
//!   become spaces, so it can never forge another row of a table or another line of a notice.
//! - **At every output** what is left, and whatever older records or AWS messages carry, is
//!   rendered visibly instead of being passed through: `\x1b` for ESC, `\u202e` for a
//!   right-to-left override. [`line`] is for one line (a table cell, a subject, a status line:
//!   line breaks are shown too), [`lines`] for a printer's own multi-line text and for JSON
//!   text (line breaks and tabs are kept; the escapes are JSON's own, so a document reads back
//!   the same). Printers pass untrusted text through these, never format it by hand; the sinks
//!   (the CLI's writers, SNS and webhook messages, console pages, log writers) apply [`lines`]
//!   to everything once more, so a field someone forgot cannot reach a screen raw.
//!
//! Why both: a terminal acts on ESC, OSC and C1 sequences (recolour, retitle, hide text) and a
//! bidi override reorders what a person reads, so one reason written through a link must not
//! reach the screens of the people on call, the notices, or the pages — and records written
//! before the edge rule existed are still read.

use std::borrow::Cow;
use std::fmt::Write as _;

/// The longest approval or rejection reason accepted, in characters.
pub const REASON_MAX_CHARS: usize = 1000;

/// The longest config string accepted, in characters (URLs, names, commands, approvers).
pub const CONFIG_STRING_MAX_CHARS: usize = 2048;

/// Why a piece of text from outside was refused; nothing was stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextRefused {
    /// The text holds a control character (shown escaped) that no person means to write.
    #[error(
        "{field}: contains the control character {shown} at character {position}; only \
         printable text is accepted"
    )]
    Control {
        /// The field, as the caller names it (`reason`, `approval.approvers[0]`).
        field: String,
        /// The character, escaped (`\x1b`).
        shown: String,
        /// Its position, counted in characters from 1.
        position: usize,
    },
    /// The text is longer than its field allows.
    #[error("{field}: {chars} characters, more than the limit of {limit}")]
    TooLong {
        /// The field.
        field: String,
        /// Its length in characters.
        chars: usize,
        /// The limit.
        limit: usize,
    },
}

/// Whether `c` is refused at the edge: a C0 control other than tab, DEL, a C1 control, a line
/// or paragraph separator, or a bidirectional embedding, override or isolate (which reorder
/// the text around them for every later reader; right-to-left text needs none of them, and the
/// marks LRM, RLM and ALM stay accepted). Line breaks are C0 controls: a field that may hold
/// them normalises them first ([`reason`]).
pub fn is_refused(c: char) -> bool {
    (c.is_control() && c != '\t')
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Whether `c` is shown escaped at an output: every control character (C0, DEL, C1), the
/// bidirectional formatting characters (which reorder what a reader sees), the line and
/// paragraph separators, and the invisible characters that can hide text (zero-width space,
/// word joiner, invisible operators, byte-order mark, tag characters). The zero-width joiner
/// and non-joiner pass: emoji sequences and Persian words are built with them.
pub fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{061C}'                    // Arabic letter mark
            | '\u{200B}'                  // zero-width space
            | '\u{200E}' | '\u{200F}'     // left-to-right and right-to-left marks
            | '\u{2028}' | '\u{2029}'     // line and paragraph separators
            | '\u{202A}'..='\u{202E}'     // LRE, RLE, PDF, LRO, RLO
            | '\u{2060}'..='\u{2064}'     // word joiner, invisible operators
            | '\u{2066}'..='\u{2069}'     // LRI, RLI, FSI, PDI
            | '\u{FEFF}'                  // byte-order mark / zero-width no-break space
            | '\u{E0000}'..='\u{E007F}') // tag characters
}

/// Checks a string from outside for `field`: no refused character ([`is_refused`]) and at most
/// `limit` characters.
pub fn check(field: &str, value: &str, limit: usize) -> Result<(), TextRefused> {
    if let Some((i, c)) = value.chars().enumerate().find(|(_, c)| is_refused(*c)) {
        return Err(TextRefused::Control {
            field: field.to_owned(),
            shown: escaped(c),
            position: i + 1,
        });
    }
    let chars = value.chars().count();
    if chars > limit {
        return Err(TextRefused::TooLong {
            field: field.to_owned(),
            chars,
            limit,
        });
    }
    Ok(())
}

/// Every string in `value` (a document from outside: a config, say) that [`check`] refuses,
/// each named by its path (`approval.approvers[1]`, `health.smoke[0].path`), in document order.
pub fn refused_strings(value: &serde_json::Value, limit: usize) -> Vec<TextRefused> {
    let mut refused = Vec::new();
    walk(value, String::new(), limit, &mut refused);
    refused
}

fn walk(value: &serde_json::Value, at: String, limit: usize, refused: &mut Vec<TextRefused>) {
    match value {
        serde_json::Value::String(s) => {
            if let Err(e) = check(&at, s, limit) {
                refused.push(e);
            }
        }
        serde_json::Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                walk(item, format!("{at}[{i}]"), limit, refused);
            }
        }
        serde_json::Value::Object(fields) => {
            for (key, item) in fields {
                let path = if at.is_empty() {
                    line(key).into_owned()
                } else {
                    format!("{at}.{}", line(key))
                };
                walk(item, path, limit, refused);
            }
        }
        _ => {}
    }
}

/// An approval or rejection reason as it is stored: line breaks (CR, LF, CRLF, the Unicode
/// separators) and tabs become single spaces, the ends are trimmed, an empty reason is none;
/// any other control character, or more than [`REASON_MAX_CHARS`], is refused.
pub fn reason(value: &str) -> Result<Option<String>, TextRefused> {
    let mut one_line = String::with_capacity(value.len());
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' if chars.peek() == Some(&'\n') => {}
            '\r' | '\n' | '\t' | '\u{2028}' | '\u{2029}' => one_line.push(' '),
            c => one_line.push(c),
        }
    }
    let trimmed = one_line.trim();
    check("reason", trimmed, REASON_MAX_CHARS)?;
    Ok((!trimmed.is_empty()).then(|| trimmed.to_owned()))
}

/// `s` for one line of output: every hidden character ([`is_hidden`], line breaks and tabs
/// included) shown escaped.
pub fn line(s: &str) -> Cow<'_, str> {
    render(s, is_hidden, escaped)
}

/// `s` for a printer's own multi-line text, or a JSON text: line feeds and tabs kept, every
/// other hidden character shown escaped (a carriage return included: it would overwrite the
/// line). A JSON document means the same after it ([`escaped`]).
pub fn lines(s: &str) -> Cow<'_, str> {
    render(s, |c| is_hidden(c) && !matches!(c, '\n' | '\t'), escaped)
}

fn render(s: &str, hidden: impl Fn(char) -> bool, escape: fn(char) -> String) -> Cow<'_, str> {
    if !s.chars().any(&hidden) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if hidden(c) {
            out.push_str(&escape(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// How a hidden character is shown: `\n`, `\r`, `\t`; `\x1b` for the other C0 controls;
/// `\u202e` for everything else, one `\uXXXX` per UTF-16 unit (`\u009b`, `\udb40\udc41`).
/// These are also JSON's escapes for the same characters: in a JSON text, where such
/// characters can only stand inside strings (serde writes C0 controls as `\u001b` already),
/// the rendering reads back as the same document.
pub fn escaped(c: char) -> String {
    match c {
        '\n' => "\\n".into(),
        '\r' => "\\r".into(),
        '\t' => "\\t".into(),
        c if (c as u32) < 0x20 => format!("\\x{:02x}", c as u32),
        c => {
            let mut units = [0u16; 2];
            c.encode_utf16(&mut units)
                .iter()
                .fold(String::new(), |mut out, unit| {
                    let _ = write!(out, "\\u{unit:04x}");
                    out
                })
        }
    }
}

/// A writer that passes everything through [`lines`] (UTF-8 text; anything else is written
/// lossily): for log output to a terminal, whose lines quote values from outside.
pub struct VisibleWriter<W>(pub W);

impl<W: std::io::Write> std::io::Write for VisibleWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        self.0.write_all(lines(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE: &str = "ünïcødé 🚀 \u{202e}RTL\u{202c} \x00NUL \x07BEL \x1b[31mANSI-RED\x1b[0m \x1b]0;pwned-title\x07 \r\nX-Injected: header\r\n<svg onload=alert(1)>";

    #[test]
    fn a_reason_with_controls_is_refused_naming_the_first_one() {
        let err = reason(HOSTILE).unwrap_err();
        assert_eq!(
            err,
            TextRefused::Control {
                field: "reason".into(),
                shown: "\\u202e".into(),
                position: 11,
            }
        );
        assert!(err.to_string().contains("\\u202e"), "{err}");
        let without_bidi = HOSTILE.replace(['\u{202e}', '\u{202c}'], "");
        assert!(matches!(
            reason(&without_bidi),
            Err(TextRefused::Control { ref shown, position: 15, .. }) if shown == "\\x00"
        ));
    }

    #[test]
    fn a_reason_is_one_line_with_its_marks_and_markup_kept_for_the_outputs_to_show() {
        let stored = reason("  p99 doubled\r\non /cart\n\tand \u{200f}שלום <b>  ")
            .unwrap()
            .unwrap();
        assert_eq!(stored, "p99 doubled on /cart  and \u{200f}שלום <b>");
        assert_eq!(reason(" \r\n\t ").unwrap(), None);
        let long = "x".repeat(REASON_MAX_CHARS + 1);
        assert!(matches!(
            reason(&long),
            Err(TextRefused::TooLong { chars: 1001, .. })
        ));
        assert!(
            reason(&"é".repeat(REASON_MAX_CHARS)).is_ok(),
            "characters, not bytes"
        );
    }

    #[test]
    fn one_line_shows_every_hidden_character_and_keeps_the_rest() {
        let shown = line(HOSTILE);
        assert!(!shown.chars().any(is_hidden), "{shown}");
        assert_eq!(
            shown,
            "ünïcødé 🚀 \\u202eRTL\\u202c \\x00NUL \\x07BEL \\x1b[31mANSI-RED\\x1b[0m \
             \\x1b]0;pwned-title\\x07 \\r\\nX-Injected: header\\r\\n<svg onload=alert(1)>"
        );
        assert!(matches!(line("plain text, é 🚀"), Cow::Borrowed(_)));
        assert_eq!(
            line("\u{9b}\u{7f}\u{e0041}"),
            "\\u009b\\u007f\\udb40\\udc41"
        );
    }

    #[test]
    fn many_lines_keep_their_line_feeds_and_tabs_but_not_a_carriage_return() {
        assert_eq!(lines("a\n\tb\r\x1b"), "a\n\tb\\r\\x1b");
    }

    #[test]
    fn json_escapes_read_back_as_the_same_string() {
        let value = serde_json::json!({ "reason": HOSTILE });
        let text = serde_json::to_string_pretty(&value).unwrap();
        let shown = lines(&text);
        assert!(
            !shown.chars().any(is_hidden_outside_json_whitespace),
            "{shown}"
        );
        let back: serde_json::Value = serde_json::from_str(&shown).unwrap();
        assert_eq!(back, value);
        let astral = serde_json::to_string(&"\u{e0041}").unwrap();
        let back: String = serde_json::from_str(&lines(&astral)).unwrap();
        assert_eq!(back, "\u{e0041}");
    }

    fn is_hidden_outside_json_whitespace(c: char) -> bool {
        is_hidden(c) && !matches!(c, '\n' | '\t' | '\r')
    }

    #[test]
    fn every_refused_string_of_a_document_is_named_by_its_path() {
        let doc = serde_json::json!({
            "name": "shop\u{1b}[2J",
            "approval": {"approvers": ["alice", "bob\u{7}"]},
            "health": {"smoke": [{"path": "/ok"}, {"path": "x".repeat(11)}]},
            "count": 3
        });
        let mut fields: Vec<String> = refused_strings(&doc, 10)
            .into_iter()
            .map(|e| match e {
                TextRefused::Control { field, .. } | TextRefused::TooLong { field, .. } => field,
            })
            .collect();
        // A map's key order depends on serde_json's `preserve_order` feature, which depends
        // on what else the build includes: compare as sets.
        fields.sort();
        assert_eq!(
            fields,
            ["approval.approvers[1]", "health.smoke[1].path", "name"]
        );
    }

    #[test]
    fn a_field_is_named_and_tabs_pass() {
        assert!(check("name", "a\tb", 10).is_ok());
        let err = check("approval.approvers[1]", "bob\u{1b}", 10).unwrap_err();
        assert_eq!(
            err.to_string(),
            "approval.approvers[1]: contains the control character \\x1b at character 4; only \
             printable text is accepted"
        );
        assert!(check("x", "a\u{2028}b", 10).is_err(), "a line separator");
        assert!(check("x", "x\u{202e}", 10).is_err(), "an override");
        assert!(check("x", "x\u{2067}", 10).is_err(), "an isolate");
        assert!(
            check("x", "\u{200f}", 10).is_ok(),
            "a mark is shown, not refused"
        );
        assert!(check("x", "👨\u{200d}👩", 10).is_ok(), "an emoji sequence");
        assert_eq!(line("👨\u{200d}👩"), "👨\u{200d}👩", "shown as it is");
    }
}
