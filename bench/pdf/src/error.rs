//! One error type for the crate; compile errors carry Typst's diagnostics mapped to
//! file, line and column of the generated source, so a template bug can be found.

use std::fmt;

/// Why a PDF could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    /// The Typst source (usually the output of a template) does not compile.
    #[error("the Typst source does not compile:\n{}", DiagList(.diagnostics))]
    Compile { diagnostics: Vec<Diagnostic> },
    /// The document compiled but the PDF export refused it.
    #[error("the PDF export failed:\n{}", DiagList(.diagnostics))]
    Export { diagnostics: Vec<Diagnostic> },
    /// A name in `files` cannot be a path of the virtual file system.
    #[error("file {name:?} cannot be passed to the Typst document: {reason}")]
    InvalidFile { name: String, reason: String },
    /// The minijinja template that writes the Typst source failed.
    #[error("template {name}: {source:#}")]
    Template {
        name: String,
        #[source]
        source: minijinja::Error,
    },
}

impl PdfError {
    /// The diagnostics of a compile or export error; empty for other errors.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            PdfError::Compile { diagnostics } | PdfError::Export { diagnostics } => diagnostics,
            _ => &[],
        }
    }
}

/// Error or warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// One Typst diagnostic, located in the source it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub message: String,
    /// Path in the virtual file system: `/main.typ` for the source given to
    /// [`render_pdf`](crate::render_pdf), else the name of a file from `files`.
    /// `None` when Typst could not tie the problem to a file.
    pub file: Option<String>,
    /// 1-based line in that file (Typst source files only).
    pub line: Option<usize>,
    /// 1-based column, counted in characters.
    pub column: Option<usize>,
    /// The text of that line, for the error message.
    pub source_line: Option<String>,
    /// Typst's hints ("you may want to ...").
    pub hints: Vec<String>,
    /// Where the problem was reached from, innermost first, e.g.
    /// `error occurred in this call of function `panic` (/main.typ:3:2)`.
    pub trace: Vec<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        match (&self.file, self.line, self.column) {
            (Some(file), Some(l), Some(c)) => write!(f, "{file}:{l}:{c}: ")?,
            (Some(file), _, _) => write!(f, "{file}: ")?,
            _ => {}
        }
        write!(f, "{kind}: {}", self.message)?;
        if let (Some(text), Some(l)) = (&self.source_line, self.line) {
            write!(f, "\n  {l:>5} | {text}")?;
            if let Some(c) = self.column {
                write!(f, "\n        | {:>width$}^", "", width = c - 1)?;
            }
        }
        for t in &self.trace {
            write!(f, "\n  - {t}")?;
        }
        for h in &self.hints {
            write!(f, "\n  = hint: {h}")?;
        }
        Ok(())
    }
}

struct DiagList<'a>(&'a [Diagnostic]);

impl fmt::Display for DiagList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}
