//! The `typst::World` of one render: the main source, the caller's files as a virtual
//! file system, the bundled fonts, no clock and no packages.

use crate::error::{Diagnostic, PdfError, Severity};
use crate::fonts::FONTS;
use std::collections::HashMap;
use std::sync::LazyLock;
use typst::diag::{FileError, FileResult, PackageError, SourceDiagnostic};
use typst::foundations::{Bytes, Datetime, Duration};
use typst::syntax::{DiagSpan, DiagSpanKind, FileId, RootedPath, Source, VirtualPath, VirtualRoot};
use typst::text::{Font, FontBook};
use typst::utils::LazyHash;
use typst::{Library, LibraryExt, World, WorldExt};

/// Path of the generated source in the virtual file system.
pub(crate) const MAIN_PATH: &str = "/main.typ";

static LIBRARY: LazyLock<LazyHash<Library>> = LazyLock::new(|| LazyHash::new(Library::default()));

pub(crate) struct BenchWorld {
    main: Source,
    /// Every file the document may read, keyed by normalised virtual path.
    files: HashMap<VirtualPath, Bytes>,
    /// `.typ` files among them, parsed once.
    sources: HashMap<VirtualPath, Source>,
}

impl BenchWorld {
    pub(crate) fn new(source: &str, files: &[(String, Vec<u8>)]) -> Result<Self, PdfError> {
        let main_path = vpath(MAIN_PATH).expect("valid main path");
        let main_id = RootedPath::new(VirtualRoot::Project, main_path.clone()).intern();
        let main = Source::new(main_id, source.to_string());
        let mut map = HashMap::new();
        let mut sources = HashMap::new();
        for (name, data) in files {
            let invalid = |reason: &str| PdfError::InvalidFile {
                name: name.clone(),
                reason: reason.to_string(),
            };
            if name.trim().is_empty() {
                return Err(invalid("the name is empty"));
            }
            let path = vpath(name).map_err(|e| invalid(&e))?;
            if path == main_path {
                return Err(invalid("the name is taken by the main source"));
            }
            if map.contains_key(&path) {
                return Err(invalid("the name is given twice"));
            }
            if path.extension() == Some("typ") {
                let text = String::from_utf8(data.clone())
                    .map_err(|_| invalid("a .typ file must be UTF-8 text"))?;
                let id = RootedPath::new(VirtualRoot::Project, path.clone()).intern();
                sources.insert(path.clone(), Source::new(id, text));
            }
            map.insert(path, Bytes::new(data.clone()));
        }
        Ok(BenchWorld {
            main,
            files: map,
            sources,
        })
    }

    fn lookup(&self, id: FileId) -> FileResult<&Bytes> {
        match id.root() {
            VirtualRoot::Package(spec) => Err(FileError::Package(PackageError::Other(Some(
                format!(
                    "{spec} is not available: meterbench renders offline and never downloads \
                     Typst packages; write the needed markup into the template instead"
                )
                .into(),
            )))),
            VirtualRoot::Project => self.files.get(id.vpath()).ok_or_else(|| {
                let mut names: Vec<&str> =
                    self.files.keys().map(|p| p.get_without_slash()).collect();
                names.sort_unstable();
                let available = if names.is_empty() {
                    "no files were passed".to_string()
                } else {
                    format!("files passed: {}", names.join(", "))
                };
                FileError::Other(Some(
                    format!(
                        "{} was not passed to render_pdf ({available})",
                        id.vpath().get_without_slash()
                    )
                    .into(),
                ))
            }),
        }
    }

    /// Locate Typst's diagnostics in the sources of this world.
    pub(crate) fn diagnostics(&self, diags: &[SourceDiagnostic]) -> Vec<Diagnostic> {
        diags
            .iter()
            .map(|d| {
                let (file, line, column, source_line) = self.locate(d.span);
                Diagnostic {
                    severity: match d.severity {
                        typst::diag::Severity::Error => Severity::Error,
                        typst::diag::Severity::Warning => Severity::Warning,
                    },
                    message: d.message.to_string(),
                    file,
                    line,
                    column,
                    source_line,
                    hints: d.hints.iter().map(|h| h.v.to_string()).collect(),
                    trace: d
                        .trace
                        .iter()
                        .map(|t| {
                            let (file, line, column, _) = self.locate(t.span.into());
                            match (file, line, column) {
                                (Some(f), Some(l), Some(c)) => format!("{} ({f}:{l}:{c})", t.v),
                                _ => t.v.to_string(),
                            }
                        })
                        .collect(),
                }
            })
            .collect()
    }

    #[allow(clippy::type_complexity)]
    fn locate(
        &self,
        span: DiagSpan,
    ) -> (Option<String>, Option<usize>, Option<usize>, Option<String>) {
        let id = match span.get() {
            DiagSpanKind::Detached => return (None, None, None, None),
            DiagSpanKind::Number { id, .. } | DiagSpanKind::Range { id, .. } => id,
        };
        let file = Some(id.vpath().get_with_slash().to_string());
        let (Ok(source), Some(range)) = (self.source(id), self.range(span)) else {
            return (file, None, None, None);
        };
        let lines = source.lines();
        let Some((line, col)) = lines.byte_to_line_column(range.start) else {
            return (file, None, None, None);
        };
        let text = lines
            .line_to_range(line)
            .and_then(|r| source.text().get(r))
            .map(|t| t.trim_end_matches(['\r', '\n']).to_string());
        (file, Some(line + 1), Some(col + 1), text)
    }
}

fn vpath(name: &str) -> Result<VirtualPath, String> {
    VirtualPath::new(name).map_err(|e| e.to_string())
}

impl World for BenchWorld {
    fn library(&self) -> &LazyHash<Library> {
        &LIBRARY
    }

    fn book(&self) -> &LazyHash<FontBook> {
        &FONTS.book
    }

    fn main(&self) -> FileId {
        self.main.id()
    }

    fn source(&self, id: FileId) -> FileResult<Source> {
        if id == self.main.id() {
            return Ok(self.main.clone());
        }
        if let Some(s) = self.sources.get(id.vpath()).filter(|_| !is_package(id)) {
            return Ok(s.clone());
        }
        self.lookup(id)?;
        Err(FileError::NotSource)
    }

    fn file(&self, id: FileId) -> FileResult<Bytes> {
        if id == self.main.id() {
            return Ok(Bytes::from_string(self.main.text().to_string()));
        }
        self.lookup(id).cloned()
    }

    fn font(&self, index: usize) -> Option<Font> {
        FONTS.fonts.get(index).cloned()
    }

    /// No clock: a document that asks for today's date fails instead of changing
    /// from one day to the next. Dates come from the run record.
    fn today(&self, _offset: Option<Duration>) -> Option<Datetime> {
        None
    }
}

fn is_package(id: FileId) -> bool {
    matches!(id.root(), VirtualRoot::Package(_))
}
