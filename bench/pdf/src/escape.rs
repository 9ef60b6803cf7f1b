//! Putting strings from a run record into Typst source without letting them act as
//! markup or code: a serial number `#panic("x")` must print as those characters.

use minijinja::value::Value;
use minijinja::{AutoEscape, Environment, UndefinedBehavior};

/// Escape `s` for Typst *markup* (text between `[` `]` or at the top level of a file).
///
/// Every ASCII punctuation character that Typst markup gives a meaning to, alone or in
/// a sequence (`#` code, `$` math, `*` `_` emphasis, `` ` `` raw, `<` `>` labels,
/// `@` references, `[` `]` content blocks, `\` escapes, `~` non-breaking space, `/`
/// comments and term lists, `=` headings, `-` `+` lists and dash shorthands, `.`
/// ellipsis and numbered lists, `'` `"` smart quotes), is preceded by a
/// backslash, which makes Typst print it literally. A line break becomes a Typst line
/// break (`\` at the end of the line), so a value can never start a heading or list.
/// Other control characters are dropped.
pub fn typst_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 4);
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' | '#' | '$' | '*' | '_' | '`' | '<' | '>' | '@' | '[' | ']' | '~' | '/' | '='
            | '-' | '+' | '.' | '\'' | '"' => {
                out.push('\\');
                out.push(c);
            }
            '\r' => {
                if chars.peek() != Some(&'\n') {
                    out.push_str("\\\n");
                }
            }
            '\n' => out.push_str("\\\n"),
            '\t' => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// `s` as a Typst string literal, quotes included: `a"b` → `"a\"b"`. For strings in code
/// positions, e.g. `#image({{ plot.file | typst_str }})` or `#raw({{ sha | typst_str }})`.
pub fn typst_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Marker for templates whose output is Typst source.
const TYPST: AutoEscape = AutoEscape::Custom("typst");

/// A minijinja environment for Typst templates (`*.typ.j2`, `*.typ`).
///
/// - **Auto-escaping**: in those templates every `{{ value }}` that is a string (or a
///   list, map, ...) is passed through [`typst_escape`] unless it is marked safe; numbers
///   and booleans print as they are, `none` and undefined print nothing.
/// - Filters: `typst_escape` (explicit markup escape; the result is marked safe so it is
///   not escaped twice), `typst_str` (a quoted Typst string literal, marked safe), and
///   the minijinja built-ins (`safe` lets trusted Typst through unescaped).
/// - Strict undefined: a misspelt context key is an error, not an empty cell.
/// - `trim_blocks` and `lstrip_blocks`, so `{% %}` lines leave no blank lines (a blank
///   line is a paragraph break in Typst).
pub fn typst_environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_keep_trailing_newline(true);
    env.set_auto_escape_callback(|name| {
        let base = name.strip_suffix(".j2").unwrap_or(name);
        if base.ends_with(".typ") {
            TYPST
        } else {
            AutoEscape::None
        }
    });
    env.set_formatter(|out, state, value| {
        if state.auto_escape() != TYPST {
            return minijinja::escape_formatter(out, state, value);
        }
        if value.is_undefined() || value.is_none() {
            return Ok(());
        }
        if value.is_safe() || value.is_number() || value.kind() == minijinja::value::ValueKind::Bool
        {
            return write!(out, "{value}").map_err(minijinja::Error::from);
        }
        let text = match value.as_str() {
            Some(s) => typst_escape(s),
            None => typst_escape(&value.to_string()),
        };
        out.write_str(&text).map_err(minijinja::Error::from)
    });
    env.add_filter("typst_escape", |v: Value| {
        if v.is_safe() {
            return v;
        }
        let s = match v.as_str() {
            Some(s) => s.to_string(),
            None if v.is_none() || v.is_undefined() => String::new(),
            None => v.to_string(),
        };
        Value::from_safe_string(typst_escape(&s))
    });
    env.add_filter("typst_str", |v: Value| {
        let s = match v.as_str() {
            Some(s) => s.to_string(),
            None if v.is_none() || v.is_undefined() => String::new(),
            None => v.to_string(),
        };
        Value::from_safe_string(typst_str(&s))
    });
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_characters() {
        assert_eq!(typst_escape("#panic(\"x\")"), "\\#panic(\\\"x\\\")");
        assert_eq!(typst_escape("$x$ *b* _i_"), "\\$x\\$ \\*b\\* \\_i\\_");
        assert_eq!(typst_escape("a\\b"), "a\\\\b");
        assert_eq!(typst_escape("line1\nline2"), "line1\\\nline2");
        assert_eq!(typst_escape("a\u{7}b"), "ab");
        assert_eq!(typst_escape("Zähler 50 Ω"), "Zähler 50 Ω");
    }

    #[test]
    fn string_literal() {
        assert_eq!(typst_str("a\"b\\c\n"), "\"a\\\"b\\\\c\\n\"");
        assert_eq!(typst_str("\u{1}"), "\"\\u{1}\"");
    }

    #[test]
    fn typst_templates_are_auto_escaped_and_safe_is_not_escaped_twice() {
        let env = typst_environment();
        let ctx = minijinja::context! { s => "#x", n => 1.5, none_value => () };
        let render = |src: &str| {
            env.render_named_str("t.typ.j2", src, &ctx)
                .expect("renders")
        };
        assert_eq!(render("{{ s }}"), "\\#x");
        assert_eq!(render("{{ s | typst_escape }}"), "\\#x");
        assert_eq!(render("{{ s | typst_str }}"), "\"#x\"");
        assert_eq!(render("{{ s | safe }}"), "#x");
        assert_eq!(render("{{ n }}"), "1.5");
        assert_eq!(render("[{{ none_value }}]"), "[]");
        // Other templates are left alone.
        assert_eq!(
            env.render_named_str("t.txt.j2", "{{ s }}", &ctx)
                .expect("renders"),
            "#x"
        );
    }

    #[test]
    fn misspelt_key_is_an_error() {
        let env = typst_environment();
        assert!(env.render_named_str("t.typ.j2", "{{ nope }}", ()).is_err());
    }
}
