//! Planner errors: every one names the file, line and column (or the system) at fault, and a hint.

use miette::{Diagnostic, LabeledSpan, NamedSource, Severity, SourceCode};
use pipeline_lang::span::{SourceMap, Span};
use std::fmt;
use std::sync::Arc;

/// Anything planning can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The definition did not evaluate.
    #[error(transparent)]
    Lang(#[from] pipeline_lang::Error),
    /// The definition evaluated but does not describe a valid environment, or a file it names is unusable.
    #[error(transparent)]
    Invalid(#[from] Box<Diag>),
    /// Several problems, in the order found (at least two; see [`Error::all`]). Shown as the first,
    /// with the others after it.
    #[error("{}", .0.first().map(ToString::to_string).unwrap_or_default())]
    All(Vec<Error>),
}

impl Error {
    /// One error for all of `errors`: itself when there is one (nested lists are flattened).
    pub fn all(errors: Vec<Error>) -> Error {
        let mut flat: Vec<Error> = Vec::with_capacity(errors.len());
        for e in errors {
            match e {
                Error::All(v) => flat.extend(v),
                e => flat.push(e),
            }
        }
        if flat.len() == 1 {
            return flat.pop().expect("one error");
        }
        Error::All(flat)
    }

    /// How many problems this error reports.
    pub fn count(&self) -> usize {
        match self {
            Error::All(v) => v.iter().map(Error::count).sum(),
            _ => 1,
        }
    }

    /// The problems one by one.
    pub fn iter(&self) -> Box<dyn Iterator<Item = &Error> + '_> {
        match self {
            Error::All(v) => Box::new(v.iter().flat_map(Error::iter)),
            e => Box::new(std::iter::once(e)),
        }
    }

    fn inner(&self) -> &dyn Diagnostic {
        match self {
            Error::Lang(e) => e,
            Error::Invalid(d) => d.as_ref(),
            Error::All(v) => match v.first() {
                Some(e) => e.inner(),
                None => &*NO_ERRORS,
            },
        }
    }
}

impl Diagnostic for Error {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.inner().code()
    }

    fn severity(&self) -> Option<Severity> {
        self.inner().severity()
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.inner().help()
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.inner().source_code()
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        self.inner().labels()
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        match self {
            // The first error's own notes, then every other error.
            Error::All(v) if v.len() > 1 => {
                let first = v[0].inner().related().into_iter().flatten();
                Some(Box::new(first.chain(v[1..].iter().map(|e| e as &dyn Diagnostic))))
            }
            _ => self.inner().related(),
        }
    }
}

/// What an empty [`Error::All`] (which [`Error::all`] never makes) shows.
static NO_ERRORS: std::sync::LazyLock<Diag> = std::sync::LazyLock::new(|| Diag::new("pipeline::plan", "no errors"));

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A planner diagnostic: a message, a code, an optional labelled place in a source file, a help and notes.
#[derive(Debug, Clone)]
pub struct Diag {
    code: &'static str,
    message: String,
    location: Option<String>,
    source: Option<NamedSource<Arc<str>>>,
    labels: Vec<LabeledSpan>,
    help: Option<String>,
    notes: Vec<Diag>,
    note: bool,
}

impl Diag {
    pub fn new(code: &'static str, message: impl Into<String>) -> Diag {
        Diag {
            code,
            message: message.into(),
            location: None,
            source: None,
            labels: vec![],
            help: None,
            notes: vec![],
            note: false,
        }
    }

    /// Point at `span` (when known) in a definition file, with a label.
    pub fn at(mut self, sources: &SourceMap, span: Option<Span>, label: impl Into<String>) -> Diag {
        let Some(sp) = span else { return self };
        let file = sources.get(sp.file);
        self.location = Some(pipeline_lang::error::loc(sources, sp));
        self.source = Some(NamedSource::new(file.name.clone(), file.text.clone()).with_language("nix"));
        self.labels = vec![LabeledSpan::new_primary_with_span(Some(label.into()), (sp.start as usize, sp.len()))];
        self
    }

    /// Point at a line of a plain file (a Dockerfile, a .dockerignore, a secrets file); `line` is 1-based.
    pub fn at_line(mut self, name: &str, text: &str, line: usize, label: impl Into<String>) -> Diag {
        let (start, len) = line_range(text, line);
        self.location = Some(format!("{name}:{line}:1"));
        self.source = Some(NamedSource::new(name, Arc::from(text)));
        self.labels = vec![LabeledSpan::new_primary_with_span(Some(label.into()), (start, len))];
        self
    }

    /// Point at a line and column (both 1-based) of a plain file (a lock file, a JSON file).
    pub fn at_point(mut self, name: &str, text: &str, line: usize, column: usize, label: impl Into<String>) -> Diag {
        let (start, len) = line_range(text, line.max(1));
        let col = column.max(1) - 1;
        let at = (start + col.min(len)).min(text.len());
        self.location = Some(format!("{name}:{}:{}", line.max(1), column.max(1)));
        self.source = Some(NamedSource::new(name, Arc::from(text)));
        self.labels = vec![LabeledSpan::new_primary_with_span(Some(label.into()), (at, 0))];
        self
    }

    /// Add a second label in the same file.
    pub fn also(mut self, sources: &SourceMap, span: Option<Span>, label: impl Into<String>) -> Diag {
        if let Some(sp) = span {
            let same = self.source.as_ref().is_some_and(|s| s.name() == sources.get(sp.file).name);
            if same {
                self.labels.push(LabeledSpan::new_with_span(Some(label.into()), (sp.start as usize, sp.len())));
            } else {
                let mut n = Diag::new(self.code, label).at(sources, Some(sp), "here");
                n.note = true;
                self.notes.push(n);
            }
        }
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Diag {
        self.help = Some(help.into());
        self
    }

    /// A note shown under the error.
    pub fn note(mut self, text: impl Into<String>) -> Diag {
        let mut n = Diag::new(self.code, text);
        n.note = true;
        self.notes.push(n);
        self
    }

    pub fn code(&self) -> &'static str {
        self.code
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn help_text(&self) -> Option<&str> {
        self.help.as_deref()
    }

    /// `file:line:col` of the primary place, when there is one.
    pub fn location(&self) -> Option<&str> {
        self.location.as_deref()
    }

    pub fn into_error(self) -> Error {
        Error::Invalid(Box::new(self))
    }
}

/// The help for a name that is not among `candidates`: the closest one ("did you mean `x`?"), else
/// `otherwise(list of all)`.
pub fn suggest<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
    otherwise: impl FnOnce(String) -> String,
) -> String {
    let all: Vec<&str> = candidates.into_iter().collect();
    match pipeline_lang::error::closest(name, all.iter().copied()) {
        Some(c) => format!("did you mean `{c}`?"),
        None => otherwise(all.join(", ")),
    }
}

/// Byte range of a 1-based line (without its newline).
fn line_range(text: &str, line: usize) -> (usize, usize) {
    let mut start = 0;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            return (start, l.trim_end_matches(['\n', '\r']).len());
        }
        start += l.len();
    }
    (text.len(), 0)
}

impl fmt::Display for Diag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Diag {}

impl Diagnostic for Diag {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        if self.note { None } else { Some(Box::new(self.code)) }
    }

    fn severity(&self) -> Option<Severity> {
        self.note.then_some(Severity::Advice)
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help.as_ref().map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.source.as_ref().map(|s| s as &dyn SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        if self.labels.is_empty() { None } else { Some(Box::new(self.labels.iter().cloned())) }
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        if self.notes.is_empty() { None } else { Some(Box::new(self.notes.iter().map(|e| e as &dyn Diagnostic))) }
    }
}

impl From<Diag> for Error {
    fn from(d: Diag) -> Error {
        d.into_error()
    }
}
