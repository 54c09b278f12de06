//! Errors: the evaluator's internal error (cheap, spans only) and the public diagnostic it becomes,
//! with the source text, labels, help and a short trace.

use crate::span::{SourceMap, Span};
use miette::{Diagnostic, LabeledSpan, NamedSource, SourceCode};
use std::fmt;
use std::sync::Arc;

/// What went wrong, for codes, for `tryEval` (see [`ErrorKind::catchable`]) and for tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Syntax,
    UndefinedVariable,
    DuplicateAttr,
    MissingAttr,
    Type,
    Throw,
    Assert,
    Abort,
    InfiniteRecursion,
    StackOverflow,
    DivisionByZero,
    Overflow,
    Argument,
    Index,
    Import,
    /// `<name>` not in the search path.
    SearchPath,
    ImportCycle,
    Io,
    Impure,
    OutsideRoot,
    Json,
    Regex,
    /// Not an error: deprecated syntax that is still accepted (a warning).
    Deprecated,
    Other,
}

impl ErrorKind {
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::Syntax => "pipeline::syntax",
            ErrorKind::UndefinedVariable => "pipeline::eval::undefined_variable",
            ErrorKind::DuplicateAttr => "pipeline::eval::duplicate_attribute",
            ErrorKind::MissingAttr => "pipeline::eval::missing_attribute",
            ErrorKind::Type => "pipeline::eval::type",
            ErrorKind::Throw => "pipeline::eval::throw",
            ErrorKind::Assert => "pipeline::eval::assert",
            ErrorKind::Abort => "pipeline::eval::abort",
            ErrorKind::InfiniteRecursion => "pipeline::eval::infinite_recursion",
            ErrorKind::StackOverflow => "pipeline::eval::stack_overflow",
            ErrorKind::DivisionByZero => "pipeline::eval::division_by_zero",
            ErrorKind::Overflow => "pipeline::eval::overflow",
            ErrorKind::Argument => "pipeline::eval::argument",
            ErrorKind::Index => "pipeline::eval::index",
            ErrorKind::Import => "pipeline::eval::import",
            ErrorKind::SearchPath => "pipeline::eval::search_path",
            ErrorKind::ImportCycle => "pipeline::eval::import_cycle",
            ErrorKind::Io => "pipeline::eval::io",
            ErrorKind::Impure => "pipeline::eval::impure",
            ErrorKind::OutsideRoot => "pipeline::eval::outside_root",
            ErrorKind::Json => "pipeline::eval::json",
            ErrorKind::Regex => "pipeline::eval::regex",
            ErrorKind::Deprecated => "pipeline::deprecated",
            ErrorKind::Other => "pipeline::eval",
        }
    }

    /// Errors `builtins.tryEval` turns into `{ success = false; }`: those Nix 2.8 raises as
    /// `ThrowError` or `AssertionError` (`throw`, a failed `assert`, a `<name>` missing from the
    /// search path). Everything else, `abort` included, goes through.
    pub fn catchable(self) -> bool {
        matches!(self, ErrorKind::Throw | ErrorKind::Assert | ErrorKind::SearchPath)
    }
}

/// One step of the trace: "while calling `f`" at a call site.
#[derive(Debug, Clone)]
pub struct TraceFrame {
    pub span: Span,
    pub what: String,
}

/// A trace frame for an error met while evaluating attribute `attr`.
pub(crate) fn in_attr(attr: &crate::value::Attr) -> impl FnOnce(Box<EvalError>) -> Box<EvalError> + '_ {
    move |mut err| {
        if let Some(sp) = attr.span {
            err.trace.push(TraceFrame { span: sp, what: format!("while evaluating attribute `{}`", attr.name) });
        }
        err
    }
}

/// The evaluator's error, before it is attached to source text.
#[derive(Debug, Clone)]
pub struct EvalError {
    pub kind: ErrorKind,
    pub message: String,
    pub span: Option<Span>,
    pub label: Option<String>,
    pub help: Option<String>,
    pub related: Vec<(Span, String)>,
    pub trace: Vec<TraceFrame>,
}

impl EvalError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> EvalError {
        EvalError {
            kind,
            message: message.into(),
            span: None,
            label: None,
            help: None,
            related: Vec::new(),
            trace: Vec::new(),
        }
    }

    pub fn at(mut self, span: Span) -> EvalError {
        self.span = Some(span);
        self
    }

    /// Set the span only if none is set yet.
    pub fn at_default(mut self: Box<Self>, span: Span) -> Box<EvalError> {
        if self.span.is_none() {
            self.span = Some(span);
        }
        self
    }

    pub fn label(mut self, label: impl Into<String>) -> EvalError {
        self.label = Some(label.into());
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> EvalError {
        self.help = Some(help.into());
        self
    }

    pub fn related(mut self, span: Span, text: impl Into<String>) -> EvalError {
        self.related.push((span, text.into()));
        self
    }

    pub fn with_help(mut self: Box<Self>, help: impl Into<String>) -> Box<EvalError> {
        self.help = Some(help.into());
        self
    }

    pub fn boxed(self) -> Box<EvalError> {
        Box::new(self)
    }
}

/// The closest candidate to `name` by edit distance (a transposition counts as one edit), when
/// close enough to be a likely typo: none for names of one or two characters.
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let n = name.chars().count();
    let limit = match n {
        0..=2 => 0,
        3..=5 => 1,
        6..=9 => 2,
        _ => 3,
    };
    candidates
        .into_iter()
        .filter(|c| *c != name)
        .map(|c| {
            let d = if c.eq_ignore_ascii_case(name) { 0 } else { osa_distance(name, c) };
            (d, c)
        })
        .filter(|(d, c)| *d <= limit || c.eq_ignore_ascii_case(name))
        .min()
        .map(|(_, c)| c)
}

/// Optimal string alignment distance: Levenshtein plus adjacent transpositions.
fn osa_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::closest;

    #[test]
    fn suggestions_catch_typos_but_not_unrelated_short_names() {
        assert_eq!(closest("prots", ["image", "name", "ports", "replicas"]), Some("ports"));
        assert_eq!(closest("replcias", ["image", "ports", "replicas"]), Some("replicas"));
        assert_eq!(closest("z", ["f", "y"]), None);
        assert_eq!(closest("imgae", ["image"]), Some("image"));
        assert_eq!(closest("Ports", ["ports"]), Some("ports"));
        assert_eq!(closest("volume", ["ports", "env"]), None);
    }
}

/// A language error ready to show: message, code, labelled source, help and trace.
#[derive(Debug, Clone)]
pub struct Error(Box<Inner>);

#[derive(Debug, Clone)]
struct Inner {
    kind: ErrorKind,
    message: String,
    location: Option<String>,
    source: Option<NamedSource<Arc<str>>>,
    labels: Vec<LabeledSpan>,
    help: Option<String>,
    related: Vec<Error>,
    /// A note attached to another error (a trace frame, a related place): shown as advice.
    note: bool,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.message)
    }
}

impl std::error::Error for Error {}

impl Diagnostic for Error {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        if self.0.note { None } else { Some(Box::new(self.0.kind.code())) }
    }

    fn severity(&self) -> Option<miette::Severity> {
        if self.0.note {
            Some(miette::Severity::Advice)
        } else if self.0.kind == ErrorKind::Deprecated {
            Some(miette::Severity::Warning)
        } else {
            None
        }
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.0.help.as_ref().map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.0.source.as_ref().map(|s| s as &dyn SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        if self.0.labels.is_empty() { None } else { Some(Box::new(self.0.labels.iter().cloned())) }
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        if self.0.related.is_empty() {
            None
        } else {
            Some(Box::new(self.0.related.iter().map(|e| e as &dyn Diagnostic)))
        }
    }
}

impl Error {
    fn new(inner: Inner) -> Error {
        Error(Box::new(inner))
    }

    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// `file:line:col` of the primary location, when there is one.
    pub fn location(&self) -> Option<&str> {
        self.0.location.as_deref()
    }

    /// An error with no source location (a missing top-level file, a bad `--arg`).
    pub fn plain(kind: ErrorKind, message: impl Into<String>, help: Option<String>) -> Error {
        Error::new(Inner {
            kind,
            message: message.into(),
            location: None,
            source: None,
            labels: vec![],
            help,
            related: vec![],
            note: false,
        })
    }

    fn plain_note(message: String) -> Error {
        let mut e = Error::plain(ErrorKind::Other, message, None);
        e.0.note = true;
        e
    }

    /// Attach source text to an evaluator error. Frames inside the standard library are folded
    /// away, and an error raised inside it is reported at the user's call site.
    pub fn from_eval(e: &EvalError, sources: &SourceMap) -> Error {
        let user = |s: &Span| !sources.get(s.file).is_stdlib;
        let mut primary = e.span;
        let mut label = e.label.clone();
        let mut note = None;
        if let Some(sp) = primary
            && !user(&sp)
            && let Some(f) = e.trace.iter().find(|f| user(&f.span))
        {
            note = Some(format!("raised inside the standard library ({})", loc(sources, sp)));
            primary = Some(f.span);
            label = Some(format!("error raised in this {}", f.what.trim_start_matches("while ")));
        }
        let mut err = match primary {
            Some(sp) => {
                let file = sources.get(sp.file);
                let mut labels = vec![LabeledSpan::new_primary_with_span(
                    Some(label.unwrap_or_else(|| "here".into())),
                    (sp.start as usize, sp.len()),
                )];
                for (rs, text) in &e.related {
                    if rs.file == sp.file {
                        labels.push(LabeledSpan::new_with_span(Some(text.clone()), (rs.start as usize, rs.len())));
                    }
                }
                Error::new(Inner {
                    kind: e.kind,
                    message: e.message.clone(),
                    location: Some(loc(sources, sp)),
                    source: Some(NamedSource::new(file.name.clone(), file.text.clone()).with_language("nix")),
                    labels,
                    help: e.help.clone(),
                    related: vec![],
                    note: false,
                })
            }
            None => Error::plain(e.kind, e.message.clone(), e.help.clone()),
        };
        if let Some(note) = note {
            err.0.related.push(Error::plain_note(note));
        }
        // Related places in other files become notes of their own.
        for (rs, text) in &e.related {
            if Some(rs.file) != primary.map(|p| p.file) {
                err.0.related.push(Error::frame(sources, *rs, text));
            }
        }
        // A short trace of user frames, innermost first, without repeating the primary span.
        let frames: Vec<&TraceFrame> = e.trace.iter().filter(|f| user(&f.span) && Some(f.span) != primary).collect();
        const KEEP: usize = 6;
        for (i, f) in frames.iter().enumerate() {
            if frames.len() > KEEP + 1 && i == KEEP - 1 {
                // How deep a stack overflow got depends on the build's frame sizes, not on the
                // definition: no count that would differ between builds.
                let more = match e.kind {
                    ErrorKind::StackOverflow => "… many more frames …".to_string(),
                    _ => format!("… {} more frames …", frames.len() - KEEP),
                };
                err.0.related.push(Error::plain_note(more));
            }
            if frames.len() > KEEP + 1 && i >= KEEP - 1 && i + 1 < frames.len() {
                continue;
            }
            err.0.related.push(Error::frame(sources, f.span, &f.what));
        }
        err
    }

    fn frame(sources: &SourceMap, sp: Span, what: &str) -> Error {
        let file = sources.get(sp.file);
        Error::new(Inner {
            kind: ErrorKind::Other,
            message: format!("{what} at {}", loc(sources, sp)),
            location: Some(loc(sources, sp)),
            source: Some(NamedSource::new(file.name.clone(), file.text.clone()).with_language("nix")),
            labels: vec![LabeledSpan::new_primary_with_span(None, (sp.start as usize, sp.len()))],
            help: None,
            related: vec![],
            note: true,
        })
    }
}

/// `file:line:col`
pub fn loc(sources: &SourceMap, sp: Span) -> String {
    let (l, c) = sources.line_col(sp.file, sp.start);
    format!("{}:{l}:{c}", sources.get(sp.file).name)
}
