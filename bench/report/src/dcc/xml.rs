//! The few shapes the DCC repeats hundreds of times, over quick-xml's writer.
//!
//! Every text and attribute value goes through quick-xml's escaping (`BytesText::new`,
//! attribute tuples): nothing from a record or a context is ever pasted into markup, so a
//! name like `A & B <x> "q" ]]>` cannot end an element or the document (the accreditation
//! auditor's rule for every XML output).

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};

/// An expanded uncertainty as D-SI states it beside a value (`si:expandedUnc`).
pub(super) struct Unc<'a> {
    pub uncertainty: &'a str,
    pub coverage_factor: &'a str,
    pub coverage_probability: &'a str,
}

/// A quantity's `dcc:measurementMetaData/dcc:metaData`: what was decided about it.
#[derive(Default)]
pub(super) struct MetaData<'a> {
    pub name: &'a str,
    pub norm: Option<&'a str>,
    pub declaration: Option<String>,
    /// `None` where the DCC must carry no `dcc:conformity` at all (ILAC-G8 "no
    /// statement": the schema has no value for it).
    pub conformity: Option<&'a str>,
}

pub(super) struct DccWriter<'a> {
    w: Writer<Vec<u8>>,
    /// The one language of the document: every `dcc:content` carries it.
    lang: &'a str,
}

impl<'a> DccWriter<'a> {
    pub fn new(lang: &'a str) -> Self {
        let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
        emit(
            &mut w,
            Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)),
        );
        DccWriter { w, lang }
    }

    /// The document, ending with a newline like any text file.
    pub fn finish(self) -> String {
        let mut bytes = self.w.into_inner();
        bytes.push(b'\n');
        String::from_utf8(bytes).expect("the writer was given only &str")
    }

    pub fn element(&mut self, name: &str, body: impl FnOnce(&mut Self)) {
        self.element_with(name, &[], body);
    }

    pub fn element_with(
        &mut self,
        name: &str,
        attrs: &[(&str, &str)],
        body: impl FnOnce(&mut Self),
    ) {
        let start = BytesStart::new(name).with_attributes(attrs.iter().copied());
        emit(&mut self.w, Event::Start(start));
        body(self);
        emit(&mut self.w, Event::End(BytesEnd::new(name)));
    }

    /// `<name>text</name>`, also when `text` is empty (a bare start and end tag would get
    /// the indentation between them as content).
    pub fn text_element(&mut self, name: &str, text: &str) {
        self.text_element_with(name, &[], text);
    }

    fn text_element_with(&mut self, name: &str, attrs: &[(&str, &str)], text: &str) {
        let start = BytesStart::new(name).with_attributes(attrs.iter().copied());
        emit(&mut self.w, Event::Start(start));
        emit(&mut self.w, Event::Text(BytesText::new(text)));
        emit(&mut self.w, Event::End(BytesEnd::new(name)));
    }

    /// `<name><dcc:content lang="..">text</dcc:content></name>`: the DCC's text in a
    /// language (`dcc:textType`).
    pub fn content(&mut self, name: &str, text: &str) {
        let lang = self.lang;
        self.element(name, |x| {
            x.text_element_with("dcc:content", &[("lang", lang)], text);
        });
    }

    /// `dcc:name` in the document's language.
    pub fn name(&mut self, text: &str) {
        self.content("dcc:name", text);
    }

    pub fn description(&mut self, text: &str) {
        self.content("dcc:description", text);
    }

    /// A D-SI real: value and unit, and the expanded uncertainty when there is one.
    pub fn real(&mut self, value: &str, unit: &str, unc: Option<Unc>) {
        self.element("si:real", |x| {
            x.text_element("si:value", value);
            x.text_element("si:unit", unit);
            if let Some(u) = unc {
                x.element("si:expandedUnc", |x| {
                    x.text_element("si:uncertainty", u.uncertainty);
                    x.text_element("si:coverageFactor", u.coverage_factor);
                    x.text_element("si:coverageProbability", u.coverage_probability);
                    x.text_element("si:distribution", "normal");
                });
            }
        });
    }

    /// `dcc:quantity` named `name`; `body` writes the rest.
    pub fn quantity(&mut self, name: &str, body: impl FnOnce(&mut Self)) {
        self.element("dcc:quantity", |x| {
            x.name(name);
            body(x);
        });
    }

    /// A quantity that is only a real with no uncertainty.
    pub fn real_quantity(&mut self, name: &str, value: &str, unit: &str) {
        self.quantity(name, |x| x.real(value, unit, None));
    }

    pub fn meta_data(&mut self, m: MetaData) {
        self.element("dcc:measurementMetaData", |x| {
            x.element("dcc:metaData", |x| {
                x.name(m.name);
                if let Some(norm) = m.norm {
                    x.text_element("dcc:norm", norm);
                }
                if let Some(d) = &m.declaration {
                    x.content("dcc:declaration", d);
                }
                // "No statement" has no value in the DCC's list: the element is left out
                // (the declaration says why), whichever result it is.
                if let Some(c) = m.conformity.filter(|c| *c != "noStatement") {
                    x.text_element("dcc:conformity", c);
                }
            });
        });
    }
}

/// Writing into a `Vec<u8>` cannot fail: quick-xml's errors here are only the inner
/// writer's I/O errors, and a `Vec` has none.
fn emit(w: &mut Writer<Vec<u8>>, event: Event) {
    w.write_event(event)
        .expect("writing XML into memory does not fail");
}
