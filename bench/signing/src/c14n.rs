//! Exclusive XML canonicalization without comments (W3C `xml-exc-c14n#`), the form an
//! XML signature's digest and signature are computed over, so that a verifier that
//! parses and re-serialises the document (xmlsec1, a Java or .NET verifier) computes the
//! same bytes.
//!
//! What it covers is what the bench's own XML documents hold: elements, attributes,
//! namespace declarations, text, CDATA, character and the five predefined entity
//! references; comments are dropped (the "without comments" form); a processing
//! instruction and a document type declaration (its entities could change the text) are
//! refused. One subtree may be left out: the enveloped-signature transform's Signature.

use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;
use std::collections::BTreeMap;

#[derive(Debug, thiserror::Error)]
pub enum C14nError {
    #[error("not well-formed XML at byte {offset}: {message}")]
    Xml { offset: u64, message: String },
    #[error(
        "the document has a document type declaration: its entities could change the signed text"
    )]
    Doctype,
    #[error("the document has a processing instruction, which this canonicalizer does not cover")]
    ProcessingInstruction,
    #[error("`{0}` is not an XML name")]
    BadName(String),
    #[error("character U+{0:04X} is not allowed in XML 1.0")]
    BadCharacter(u32),
    #[error("prefix `{0}` is used but never declared")]
    UndeclaredPrefix(String),
    #[error("the element to leave out (`{0}`) is not in the document")]
    NoSuchElement(String),
}

/// Which part of the document to canonicalise.
#[derive(Debug, Clone, Copy)]
pub enum Subset<'a> {
    /// The whole document.
    Document,
    /// The whole document without the first element of this namespace and local name
    /// and its content (the enveloped-signature transform: the Signature itself).
    DocumentWithout { namespace: &'a str, local: &'a str },
    /// Only the first element of this namespace and local name and its content (the
    /// SignedInfo a signature value is computed over).
    Element { namespace: &'a str, local: &'a str },
}

/// One open element: the namespaces in scope, and those rendered in the output so far.
struct Scope {
    /// prefix ("" for the default namespace) → namespace name, as declared in the input.
    declared: BTreeMap<String, String>,
    /// prefix → namespace name, as rendered in the output by this element or its output
    /// ancestors.
    rendered: BTreeMap<String, String>,
    /// Whether the element is in the output.
    output: bool,
    /// Its qualified name, which its end tag must repeat.
    name: Vec<u8>,
}

/// The canonical form of `xml`'s chosen part.
pub fn canonicalize(xml: &[u8], subset: Subset<'_>) -> Result<Vec<u8>, C14nError> {
    // The bench's documents are UTF-8; a byte that is not would otherwise be replaced or
    // copied, and the canonical form would not be one.
    if let Err(e) = std::str::from_utf8(xml) {
        return Err(C14nError::Xml {
            offset: e.valid_up_to() as u64,
            message: "not UTF-8".into(),
        });
    }
    // End-of-line handling (XML 1.0 2.11) comes before parsing: CR LF and a lone CR are a
    // line feed everywhere, in CDATA and attribute values too.
    let normalized;
    let xml = if xml.contains(&b'\r') {
        normalized = String::from_utf8_lossy(xml)
            .replace("\r\n", "\n")
            .replace('\r', "\n")
            .into_bytes();
        normalized.as_slice()
    } else {
        xml
    };
    let mut reader = Reader::from_reader(xml);
    // Empty elements are reported as a start and an end: canonical form writes both.
    reader.config_mut().expand_empty_elements = true;
    let mut out = Vec::with_capacity(xml.len());
    let mut stack: Vec<Scope> = Vec::new();
    // Depth of the subtree left out, or of the one element kept, while inside it.
    let mut skipping: Option<usize> = None;
    let mut inside: Option<usize> = None;
    let mut found = false;
    let mut root_closed = false;
    let mut buf = Vec::new();
    loop {
        let offset = reader.buffer_position();
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| C14nError::Xml {
                offset,
                message: e.to_string(),
            })?;
        match event {
            Event::Eof => break,
            // `expand_empty_elements` reports `<a/>` as a start and an end.
            Event::Empty(_) => unreachable!("empty elements are expanded"),
            Event::DocType(_) => return Err(C14nError::Doctype),
            Event::Decl(d) => check_declaration(&d)?,
            Event::Comment(_) => {}
            // Canonical form keeps them, with rules of their own this module does not
            // implement; the bench writes none.
            Event::PI(_) => return Err(C14nError::ProcessingInstruction),
            Event::Start(start) => {
                if stack.is_empty() && root_closed {
                    return Err(C14nError::Xml {
                        offset,
                        message: "a second root element".into(),
                    });
                }
                check_name(start.name().as_ref())?;
                check_attribute_separation(&start)?;
                let depth = stack.len();
                let declared = declarations(&start, stack.last().map(|s| &s.declared))?;
                let (namespace, local) = expanded_name(&start, &declared)?;
                let is_target = !found
                    && match subset {
                        Subset::DocumentWithout {
                            namespace: n,
                            local: l,
                        }
                        | Subset::Element {
                            namespace: n,
                            local: l,
                        } => namespace == n && local == l,
                        Subset::Document => false,
                    };
                if is_target {
                    found = true;
                    match subset {
                        Subset::DocumentWithout { .. } => skipping = Some(depth),
                        Subset::Element { .. } => inside = Some(depth),
                        Subset::Document => {}
                    }
                }
                let output = skipping.is_none()
                    && match subset {
                        Subset::Element { .. } => inside.is_some(),
                        _ => true,
                    };
                // The namespaces rendered by the nearest output ancestor (none above the
                // apex of an element subset).
                let apex = matches!(subset, Subset::Element { .. }) && inside == Some(depth);
                let mut rendered = match stack.last() {
                    Some(parent) if !apex => parent.rendered.clone(),
                    _ => BTreeMap::new(),
                };
                if output {
                    write_start(&mut out, &start, &declared, &mut rendered)?;
                }
                stack.push(Scope {
                    declared,
                    rendered,
                    output,
                    name: start.name().as_ref().to_vec(),
                });
            }
            Event::End(end) => {
                let scope = stack.pop().ok_or_else(|| C14nError::Xml {
                    offset,
                    message: "an end tag without a start".into(),
                })?;
                if end.name().as_ref() != scope.name.as_slice() {
                    return Err(C14nError::Xml {
                        offset,
                        message: format!(
                            "end tag `{}` closes `{}`",
                            String::from_utf8_lossy(end.name().as_ref()),
                            String::from_utf8_lossy(&scope.name)
                        ),
                    });
                }
                if scope.output {
                    out.extend_from_slice(b"</");
                    out.extend_from_slice(&scope.name);
                    out.push(b'>');
                }
                let depth = stack.len();
                if skipping == Some(depth) {
                    skipping = None;
                }
                if inside == Some(depth) {
                    inside = None;
                }
                root_closed |= depth == 0;
            }
            Event::Text(t) if stack.is_empty() => {
                if !t.iter().all(u8::is_ascii_whitespace) {
                    return Err(C14nError::Xml {
                        offset,
                        message: "text outside the root element".into(),
                    });
                }
            }
            Event::GeneralRef(_) | Event::CData(_) if stack.is_empty() => {
                return Err(C14nError::Xml {
                    offset,
                    message: "text outside the root element".into(),
                });
            }
            Event::Text(t) => {
                if stack.last().is_some_and(|s| s.output) {
                    let text = t.xml10_content().map_err(|e| C14nError::Xml {
                        offset,
                        message: e.to_string(),
                    })?;
                    check_chars(&text)?;
                    escape_text(&mut out, &text);
                }
            }
            Event::GeneralRef(r) => {
                if stack.last().is_some_and(|s| s.output) {
                    let name = r.decode().map_err(|e| C14nError::Xml {
                        offset,
                        message: e.to_string(),
                    })?;
                    let c = resolve_reference(&name).ok_or_else(|| C14nError::Xml {
                        offset,
                        message: format!("unknown entity `&{name};`"),
                    })?;
                    check_chars(&c)?;
                    escape_text(&mut out, &c);
                }
            }
            Event::CData(c) => {
                if stack.last().is_some_and(|s| s.output) {
                    let text = String::from_utf8_lossy(&c.into_inner()).into_owned();
                    check_chars(&text)?;
                    escape_text(&mut out, &text);
                }
            }
        }
        buf.clear();
    }
    if !stack.is_empty() {
        return Err(C14nError::Xml {
            offset: reader.buffer_position(),
            message: "the document ends inside an element".into(),
        });
    }
    match subset {
        Subset::Document => {}
        Subset::DocumentWithout { local, .. } | Subset::Element { local, .. } if !found => {
            return Err(C14nError::NoSuchElement(local.to_string()));
        }
        _ => {}
    }
    Ok(out)
}

/// XML 1.0 (fifth edition) Name: a NameStartChar, then NameChars. A parser lenient about
/// names would otherwise let a canonical form through that no other parser reads back.
fn check_name(name: &[u8]) -> Result<(), C14nError> {
    let text = std::str::from_utf8(name)
        .map_err(|_| C14nError::BadName(String::from_utf8_lossy(name).into()))?;
    let start = |c: char| {
        c.is_ascii_alphabetic()
            || matches!(c, ':' | '_' | '\u{C0}'..='\u{D6}' | '\u{D8}'..='\u{F6}' | '\u{F8}'..='\u{2FF}' | '\u{370}'..='\u{37D}' | '\u{37F}'..='\u{1FFF}' | '\u{200C}'..='\u{200D}' | '\u{2070}'..='\u{218F}' | '\u{2C00}'..='\u{2FEF}' | '\u{3001}'..='\u{D7FF}' | '\u{F900}'..='\u{FDCF}' | '\u{FDF0}'..='\u{FFFD}' | '\u{10000}'..='\u{EFFFF}')
    };
    let rest = |c: char| {
        start(c)
            || c.is_ascii_digit()
            || matches!(c, '-' | '.' | '\u{B7}' | '\u{300}'..='\u{36F}' | '\u{203F}'..='\u{2040}')
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(c) if start(c) && chars.all(rest) => Ok(()),
        _ => Err(C14nError::BadName(text.to_string())),
    }
}

/// The XML declaration, when there is one: version 1.0 and UTF-8 (the bytes are read as
/// UTF-8; a document that declares another encoding means other characters to every
/// other reader).
fn check_declaration(d: &quick_xml::events::BytesDecl<'_>) -> Result<(), C14nError> {
    let bad = |m: String| {
        Err(C14nError::Xml {
            offset: 0,
            message: m,
        })
    };
    match d.version() {
        Ok(v) if v.as_ref() == b"1.0" => {}
        _ => return bad("the XML declaration is not version 1.0".into()),
    }
    if let Some(e) = d.encoding() {
        match e {
            Ok(e) if e.eq_ignore_ascii_case(b"UTF-8") => {}
            _ => return bad("the XML declaration names an encoding other than UTF-8".into()),
        }
    }
    Ok(())
}

/// Attributes are separated by white space (`a="1"b="2"` is not well-formed, though a
/// lenient reader takes it).
fn check_attribute_separation(start: &BytesStart<'_>) -> Result<(), C14nError> {
    let raw: &[u8] = start.attributes_raw();
    let mut quote: Option<u8> = None;
    for (i, &b) in raw.iter().enumerate() {
        match quote {
            Some(q) if b == q => {
                quote = None;
                if let Some(&next) = raw.get(i + 1)
                    && !(next.is_ascii_whitespace() || next == b'/')
                {
                    return Err(C14nError::Xml {
                        offset: 0,
                        message: "attributes not separated by white space".into(),
                    });
                }
            }
            Some(_) => {}
            None if b == b'"' || b == b'\'' => quote = Some(b),
            None => {}
        }
    }
    Ok(())
}

/// XML 1.0 Char: no C0 control but tab, line feed and carriage return, no U+FFFE/U+FFFF.
fn check_chars(text: &str) -> Result<(), C14nError> {
    match text.chars().find(|&c| {
        (c < ' ' && !matches!(c, '\t' | '\n' | '\r')) || matches!(c, '\u{FFFE}' | '\u{FFFF}')
    }) {
        Some(c) => Err(C14nError::BadCharacter(c as u32)),
        None => Ok(()),
    }
}

/// A character or predefined entity reference as its text.
fn resolve_reference(name: &str) -> Option<String> {
    let c = match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        _ => {
            let code = if let Some(h) = name.strip_prefix("#x") {
                u32::from_str_radix(h, 16).ok()?
            } else {
                name.strip_prefix('#')?.parse().ok()?
            };
            char::from_u32(code)?
        }
    };
    Some(c.to_string())
}

/// The namespaces in scope at `start`: the parent's and its own declarations.
fn declarations(
    start: &BytesStart<'_>,
    parent: Option<&BTreeMap<String, String>>,
) -> Result<BTreeMap<String, String>, C14nError> {
    let mut declared = parent.cloned().unwrap_or_default();
    for a in start.attributes() {
        let a = a.map_err(|e| C14nError::Xml {
            offset: 0,
            message: e.to_string(),
        })?;
        let key = a.key.as_ref();
        let prefix = if key == b"xmlns" {
            String::new()
        } else if let Some(p) = key.strip_prefix(b"xmlns:") {
            String::from_utf8_lossy(p).into_owned()
        } else {
            continue;
        };
        declared.insert(prefix, attribute_value(&a)?);
    }
    Ok(declared)
}

fn attribute_value(a: &quick_xml::events::attributes::Attribute<'_>) -> Result<String, C14nError> {
    check_name(a.key.as_ref())?;
    let raw = String::from_utf8_lossy(&a.value).into_owned();
    // Attribute-value normalisation: literal white space becomes a space; references are
    // resolved afterwards (so `&#xA;` stays a line feed).
    let raw = raw.replace(['\t', '\n', '\r'], " ");
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw.as_str();
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let end = rest[i..].find(';').ok_or_else(|| C14nError::Xml {
            offset: 0,
            message: format!("an unterminated reference in attribute value `{raw}`"),
        })?;
        let name = &rest[i + 1..i + end];
        out.push_str(&resolve_reference(name).ok_or_else(|| C14nError::Xml {
            offset: 0,
            message: format!("unknown entity `&{name};`"),
        })?);
        rest = &rest[i + end + 1..];
    }
    out.push_str(rest);
    check_chars(&out)?;
    Ok(out)
}

/// The (namespace name, local name) of an element.
fn expanded_name(
    start: &BytesStart<'_>,
    declared: &BTreeMap<String, String>,
) -> Result<(String, String), C14nError> {
    let name = String::from_utf8_lossy(start.name().as_ref()).into_owned();
    let (prefix, local) = split(&name);
    let namespace = match declared.get(prefix) {
        Some(n) => n.clone(),
        None if prefix.is_empty() => String::new(),
        None => return Err(C14nError::UndeclaredPrefix(prefix.to_string())),
    };
    Ok((namespace, local.to_string()))
}

fn split(qname: &str) -> (&str, &str) {
    match qname.split_once(':') {
        Some((p, l)) => (p, l),
        None => ("", qname),
    }
}

/// The start tag in canonical form: the namespace declarations the element visibly uses
/// and its output ancestors have not rendered, sorted by prefix, then its attributes
/// sorted by namespace name and local name.
fn write_start(
    out: &mut Vec<u8>,
    start: &BytesStart<'_>,
    declared: &BTreeMap<String, String>,
    rendered: &mut BTreeMap<String, String>,
) -> Result<(), C14nError> {
    let name = String::from_utf8_lossy(start.name().as_ref()).into_owned();
    let (element_prefix, _) = split(&name);
    let mut used: Vec<String> = vec![element_prefix.to_string()];
    let mut attributes: Vec<(String, String, String, String)> = Vec::new();
    for a in start.attributes() {
        let a = a.map_err(|e| C14nError::Xml {
            offset: 0,
            message: e.to_string(),
        })?;
        let key = String::from_utf8_lossy(a.key.as_ref()).into_owned();
        if key == "xmlns" || key.starts_with("xmlns:") {
            continue;
        }
        let (prefix, local) = split(&key);
        // An unprefixed attribute is in no namespace; `xml:` is never declared.
        let namespace = if prefix.is_empty() {
            String::new()
        } else if prefix == "xml" {
            "http://www.w3.org/XML/1998/namespace".into()
        } else {
            used.push(prefix.to_string());
            declared
                .get(prefix)
                .cloned()
                .ok_or_else(|| C14nError::UndeclaredPrefix(prefix.to_string()))?
        };
        attributes.push((
            namespace,
            local.to_string(),
            key.clone(),
            attribute_value(&a)?,
        ));
    }
    let mut declarations: BTreeMap<String, String> = BTreeMap::new();
    for prefix in used {
        if prefix == "xml" {
            continue;
        }
        let uri = match declared.get(&prefix) {
            Some(u) => u.clone(),
            None if prefix.is_empty() => String::new(),
            None => return Err(C14nError::UndeclaredPrefix(prefix)),
        };
        let already = rendered.get(&prefix);
        // The default namespace left empty needs no `xmlns=""` unless an output ancestor
        // rendered a non-empty one.
        let needed = match already {
            Some(r) => r != &uri,
            None => !(prefix.is_empty() && uri.is_empty()),
        };
        if needed {
            declarations.insert(prefix.clone(), uri.clone());
            rendered.insert(prefix, uri);
        }
    }
    attributes.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    out.push(b'<');
    out.extend_from_slice(name.as_bytes());
    for (prefix, uri) in &declarations {
        if prefix.is_empty() {
            out.extend_from_slice(b" xmlns=\"");
        } else {
            out.extend_from_slice(b" xmlns:");
            out.extend_from_slice(prefix.as_bytes());
            out.extend_from_slice(b"=\"");
        }
        escape_attribute(out, uri);
        out.push(b'"');
    }
    for (_, _, qname, value) in &attributes {
        out.push(b' ');
        out.extend_from_slice(qname.as_bytes());
        out.extend_from_slice(b"=\"");
        escape_attribute(out, value);
        out.push(b'"');
    }
    out.push(b'>');
    Ok(())
}

fn escape_text(out: &mut Vec<u8>, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.extend_from_slice(b"&amp;"),
            '<' => out.extend_from_slice(b"&lt;"),
            '>' => out.extend_from_slice(b"&gt;"),
            '\r' => out.extend_from_slice(b"&#xD;"),
            c => {
                let mut b = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            }
        }
    }
}

fn escape_attribute(out: &mut Vec<u8>, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.extend_from_slice(b"&amp;"),
            '<' => out.extend_from_slice(b"&lt;"),
            '"' => out.extend_from_slice(b"&quot;"),
            '\t' => out.extend_from_slice(b"&#x9;"),
            '\n' => out.extend_from_slice(b"&#xA;"),
            '\r' => out.extend_from_slice(b"&#xD;"),
            c => {
                let mut b = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c14n(xml: &str) -> String {
        String::from_utf8(canonicalize(xml.as_bytes(), Subset::Document).unwrap()).unwrap()
    }

    #[test]
    fn declaration_comments_and_empty_elements_as_the_recommendation_says() {
        // W3C exc-c14n: no XML declaration, no comments, empty elements as a pair,
        // attributes in order, references resolved and text re-escaped.
        let xml = "<?xml version=\"1.0\"?>\n<!-- c --><a z=\"1\" b='x&amp;y&#x41;'><b/><!-- in -->t &#60; &gt; &quot;</a>";
        assert_eq!(
            c14n(xml),
            "<a b=\"x&amp;yA\" z=\"1\"><b></b>t &lt; &gt; \"</a>"
        );
    }

    #[test]
    fn only_visibly_used_namespaces_are_rendered_where_first_used() {
        let xml = r#"<p:r xmlns:p="urn:p" xmlns:q="urn:q" xmlns:unused="urn:u"><q:c q:at="1" plain="2"/><p:d/></p:r>"#;
        assert_eq!(
            c14n(xml),
            r#"<p:r xmlns:p="urn:p"><q:c xmlns:q="urn:q" plain="2" q:at="1"></q:c><p:d></p:d></p:r>"#
        );
    }

    #[test]
    fn the_default_namespace_is_rendered_once_and_undone_with_an_empty_one() {
        let xml = r#"<r xmlns="urn:d"><c xmlns=""><e/></c><f/></r>"#;
        assert_eq!(
            c14n(xml),
            r#"<r xmlns="urn:d"><c xmlns=""><e></e></c><f></f></r>"#
        );
    }

    #[test]
    fn the_enveloped_signature_is_left_out_and_signed_info_stands_alone() {
        let xml = r#"<d:r xmlns:d="urn:d" xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><d:x>1</d:x><ds:Signature><ds:SignedInfo a="1"><ds:X/></ds:SignedInfo></ds:Signature></d:r>"#;
        let ds = "http://www.w3.org/2000/09/xmldsig#";
        let doc = canonicalize(
            xml.as_bytes(),
            Subset::DocumentWithout {
                namespace: ds,
                local: "Signature",
            },
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(doc).unwrap(),
            r#"<d:r xmlns:d="urn:d"><d:x>1</d:x></d:r>"#
        );
        let si = canonicalize(
            xml.as_bytes(),
            Subset::Element {
                namespace: ds,
                local: "SignedInfo",
            },
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(si).unwrap(),
            format!(r#"<ds:SignedInfo xmlns:ds="{ds}" a="1"><ds:X></ds:X></ds:SignedInfo>"#)
        );
    }

    #[test]
    fn white_space_in_attributes_and_carriage_returns_are_escaped() {
        let xml = "<a t=\"x&#xA;y&#9;z\">l&#xD;m</a>";
        assert_eq!(c14n(xml), "<a t=\"x&#xA;y&#x9;z\">l&#xD;m</a>");
    }

    #[test]
    fn names_and_characters_xml_does_not_allow_are_refused() {
        assert!(matches!(
            canonicalize(b"<a\x01b/>", Subset::Document),
            Err(C14nError::BadName(_))
        ));
        assert!(matches!(
            canonicalize(b"<a 1x=\"v\"/>", Subset::Document),
            Err(C14nError::BadName(_))
        ));
        assert!(matches!(
            canonicalize(b"<a>x\x02y</a>", Subset::Document),
            Err(C14nError::BadCharacter(2))
        ));
        assert!(matches!(
            canonicalize(b"<a>&#1;</a>", Subset::Document),
            Err(C14nError::BadCharacter(1))
        ));
        assert!(canonicalize("<é·-a _x=\"1\"/>".as_bytes(), Subset::Document).is_ok());
    }

    #[test]
    fn what_no_parser_reads_as_one_document_is_refused() {
        for bad in [
            &b"<a/><b/>"[..],
            b"<a/>text",
            b"<a x=\"1\"y=\"2\"/>",
            b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a/>",
            b"<?xml version=\"1.1\"?><a/>",
        ] {
            assert!(
                canonicalize(bad, Subset::Document).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(
            canonicalize(
                b"<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<a/>\n",
                Subset::Document
            )
            .is_ok()
        );
    }

    #[test]
    fn line_ends_are_normalised_before_parsing_as_xml_says() {
        assert_eq!(
            c14n("<a t=\"x\r\ny\"><![CDATA[l\r\nm\rn]]></a>"),
            "<a t=\"x y\">l\nm\nn</a>"
        );
    }

    #[test]
    fn bytes_that_are_not_utf8_and_a_mismatched_end_tag_are_refused() {
        assert!(canonicalize(b"<a>\xa3</a>", Subset::Document).is_err());
        assert!(canonicalize(b"<a><b></c></a>", Subset::Document).is_err());
    }

    #[test]
    fn a_doctype_and_an_undeclared_prefix_are_refused() {
        assert!(matches!(
            canonicalize(
                b"<!DOCTYPE a [<!ENTITY e 'x'>]><a>&e;</a>",
                Subset::Document
            ),
            Err(C14nError::Doctype)
        ));
        assert!(matches!(
            canonicalize(b"<p:a/>", Subset::Document),
            Err(C14nError::UndeclaredPrefix(p)) if p == "p"
        ));
    }
}
