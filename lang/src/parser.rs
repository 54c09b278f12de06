//! The parser: source text to [`Expr`], with Nix's lexical rules (longest match between identifiers,
//! numbers, paths and URIs), its operator precedence, and errors that land where the mistake is.

// nom returns errors by value, and most parse attempts fail (every probe for an operator or
// keyword). Keeping `PErr` unboxed keeps those failures allocation-free, which measurably speeds
// up parsing; boxing it to satisfy this lint would put an allocation on the common path.
#![allow(clippy::result_large_err)]

use crate::ast::*;
use crate::span::{FileId, Span};
use nom::Parser;
use nom::branch::alt;
use nom::error::{ContextError, ErrorKind, ParseError};
use nom::{Err as NomErr, IResult};
use nom_locate::LocatedSpan;
use std::cell::{Cell, RefCell};
use std::rc::Rc;

/// Deepest nesting of expressions the parser accepts; deeper input is an error, not a stack overflow.
pub const MAX_NESTING: u32 = 1000;

/// Parser state shared by every position in one file.
#[derive(Debug)]
pub struct PState<'a> {
    file: FileId,
    depth: Cell<u32>,
    src: &'a str,
    warnings: RefCell<Vec<Warning>>,
}

/// Accepted, but deprecated: the parse goes on, and the caller shows these.
#[derive(Debug, Clone, PartialEq)]
pub struct Warning {
    pub span: Span,
    pub message: String,
    pub help: String,
}

type In<'a> = LocatedSpan<&'a str, &'a PState<'a>>;
type PResult<'a, T> = IResult<In<'a>, T, PErr>;

/// A syntax error: where, what was expected, and a hint.
#[derive(Debug, Clone, PartialEq)]
pub struct PErr {
    pub offset: usize,
    /// What would have been accepted here (empty `Vec`s do not allocate: failed probes are cheap).
    pub expected: Vec<&'static str>,
    /// The single expectation of a failed probe, kept out of `expected` to avoid allocating.
    pub expected_one: Option<&'static str>,
    pub message: Option<String>,
    pub help: Option<String>,
    /// A second place worth showing (the opening bracket of an unclosed one, the attribute missing a `;`).
    pub related: Option<(usize, usize, String)>,
}

impl PErr {
    fn at(i: In, message: impl Into<String>) -> PErr {
        PErr {
            offset: i.location_offset(),
            expected: vec![],
            expected_one: None,
            message: Some(message.into()),
            help: None,
            related: None,
        }
    }

    fn help(mut self, help: impl Into<String>) -> PErr {
        self.help = Some(help.into());
        self
    }

    fn related(mut self, span: Span, text: impl Into<String>) -> PErr {
        self.related = Some((span.start as usize, span.end as usize, text.into()));
        self
    }

    fn fail<T>(self) -> Result<T, NomErr<PErr>> {
        Err(NomErr::Failure(self))
    }
}

impl ParseError<In<'_>> for PErr {
    fn from_error_kind(input: In, _kind: ErrorKind) -> Self {
        PErr {
            offset: input.location_offset(),
            expected: vec![],
            expected_one: None,
            message: None,
            help: None,
            related: None,
        }
    }

    fn append(_input: In, _kind: ErrorKind, other: Self) -> Self {
        other
    }

    fn or(self, other: Self) -> Self {
        // Keep the error that got furthest; at the same place, merge what was expected.
        match self.offset.cmp(&other.offset) {
            std::cmp::Ordering::Greater => self,
            std::cmp::Ordering::Less => other,
            std::cmp::Ordering::Equal => {
                if self.message.is_some() {
                    return self;
                }
                if other.message.is_some() {
                    return other;
                }
                let mut merged = self;
                merged.flatten();
                let mut other = other;
                other.flatten();
                for e in other.expected {
                    if !merged.expected.contains(&e) {
                        merged.expected.push(e);
                    }
                }
                merged
            }
        }
    }
}

impl ContextError<In<'_>> for PErr {
    fn add_context(input: In, ctx: &'static str, mut other: Self) -> Self {
        if other.offset == input.location_offset() && other.message.is_none() {
            other.expected = vec![ctx];
            other.expected_one = None;
        }
        other
    }
}

impl PErr {
    /// Move `expected_one` into `expected`.
    fn flatten(&mut self) {
        if let Some(e) = self.expected_one.take()
            && !self.expected.contains(&e)
        {
            self.expected.push(e);
        }
    }
}

fn soft<T>(i: In, expected: &'static str) -> PResult<'static, T> {
    Err(NomErr::Error(PErr {
        offset: i.location_offset(),
        expected: Vec::new(),
        expected_one: Some(expected),
        message: None,
        help: None,
        related: None,
    }))
}

/// Parse a whole file.
pub fn parse(src: &str, file: FileId) -> Result<Expr, PErr> {
    parse_with_warnings(src, file).map(|(e, _)| e)
}

/// Parse a whole file; also return the warnings about deprecated syntax, in source order.
pub fn parse_with_warnings(src: &str, file: FileId) -> Result<(Expr, Vec<Warning>), PErr> {
    let state = PState { file, depth: Cell::new(0), src, warnings: RefCell::new(Vec::new()) };
    let input = In::new_extra(src, &state);
    let run = |i: In<'_>| -> Result<Expr, NomErr<PErr>> {
        let (i, _) = ws(i)?;
        if i.fragment().is_empty() {
            return PErr::at(i, "the file is empty")
                .help("a definition file holds one expression, for example `{ }`")
                .fail();
        }
        let (i, e) = expr(i)?;
        if !i.fragment().is_empty() {
            let found = describe_next(i.fragment());
            let mut err = PErr::at(i, format!("unexpected {found} after the end of the expression"));
            err.help = Some(match i.fragment().chars().next() {
                Some(')') | Some(']') | Some('}') => "this closing bracket has no matching opening one".into(),
                Some(';') => {
                    "a `;` ends an attribute inside `{ }` or `let`; at the top level there is only one expression"
                        .into()
                }
                _ => "a file holds exactly one expression; did you forget an operator or a `;`?".into(),
            });
            return Err(NomErr::Failure(err));
        }
        Ok(e)
    };
    match run(input) {
        Ok(e) => {
            // A backtracking parse may meet the same construct twice: one warning per place.
            let mut warnings = state.warnings.take();
            warnings.sort_by_key(|w| (w.span.start, w.span.end));
            warnings.dedup();
            Ok((e, warnings))
        }
        Err(NomErr::Error(e)) | Err(NomErr::Failure(e)) => Err(finish_error(e, src)),
        Err(NomErr::Incomplete(_)) => Err(PErr {
            offset: src.len(),
            expected: vec![],
            expected_one: None,
            message: Some("unexpected end of file".into()),
            help: None,
            related: None,
        }),
    }
}

/// Turn an "expected one of" error into a sentence naming what was found.
fn finish_error(mut e: PErr, src: &str) -> PErr {
    e.flatten();
    if e.message.is_none() {
        let found = describe_next(src.get(e.offset..).unwrap_or(""));
        let mut expected = e.expected.clone();
        expected.sort();
        expected.dedup();
        e.message = Some(if expected.is_empty() {
            format!("unexpected {found}")
        } else {
            format!("unexpected {found}, expected {}", one_of(&expected))
        });
    }
    e
}

fn one_of(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => one.to_string(),
        [init @ .., last] => format!("{} or {}", init.join(", "), last),
    }
}

/// A short description of the token at the start of `rest`, for messages.
pub fn describe_next(rest: &str) -> String {
    if rest.is_empty() {
        return "end of file".into();
    }
    let n = id_len(rest).max(token_len(rest)).max(1);
    let n = rest.char_indices().nth(n).map_or(rest.len(), |(k, _)| k);
    let t = &rest[..n];
    if t.chars().all(char::is_whitespace) {
        return "whitespace".into();
    }
    format!("`{}`", t.trim())
}

fn token_len(s: &str) -> usize {
    const OPS: [&str; 14] = ["...", "==", "!=", "<=", ">=", "&&", "||", "->", "//", "++", "${", "''", "or", "in"];
    OPS.iter().find(|op| s.starts_with(**op)).map_or(0, |op| op.len())
}

// ---------------------------------------------------------------------------------------------
// Lexical pieces

fn span_of(i: &In, start: usize) -> Span {
    Span::new(i.extra.file, start, i.location_offset())
}

fn take(i: In, n: usize) -> In {
    // Slicing a LocatedSpan keeps line/offset bookkeeping right.
    nom::Input::take_from(&i, n)
}

/// Whitespace and comments.
fn ws(mut i: In) -> PResult<()> {
    loop {
        let s = *i.fragment();
        let trimmed = s.trim_start_matches([' ', '\t', '\r', '\n']);
        let mut n = s.len() - trimmed.len();
        if trimmed.starts_with('#') {
            n += trimmed.find('\n').unwrap_or(trimmed.len());
        } else if let Some(body) = trimmed.strip_prefix("/*") {
            match body.find("*/") {
                Some(end) => n += end + 4,
                None => {
                    let at = take(i, n);
                    return PErr::at(at, "unterminated comment").help("a `/*` comment ends with `*/`").fail();
                }
            }
        }
        if n == 0 {
            return Ok((i, ()));
        }
        i = take(i, n);
    }
}

fn is_id_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

fn is_id_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'\'' || c == b'-'
}

fn is_path_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-' | b'+')
}

fn is_uri_char(c: u8) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            b'%' | b'/'
                | b'?'
                | b':'
                | b'@'
                | b'&'
                | b'='
                | b'+'
                | b'$'
                | b','
                | b'-'
                | b'_'
                | b'.'
                | b'!'
                | b'~'
                | b'*'
                | b'\''
        )
}

fn count(s: &[u8], from: usize, f: impl Fn(u8) -> bool) -> usize {
    s[from..].iter().take_while(|c| f(**c)).count()
}

fn id_len(s: &str) -> usize {
    let b = s.as_bytes();
    if b.first().is_some_and(|c| is_id_start(*c)) { 1 + count(b, 1, is_id_char) } else { 0 }
}

fn int_len(s: &str) -> usize {
    count(s.as_bytes(), 0, |c| c.is_ascii_digit())
}

fn float_len(s: &str) -> usize {
    let b = s.as_bytes();
    // ([1-9][0-9]*\.[0-9]*)
    let a = if b.first().is_some_and(|c| (b'1'..=b'9').contains(c)) {
        let d = 1 + count(b, 1, |c| c.is_ascii_digit());
        if b.get(d) == Some(&b'.') { d + 1 + count(b, d + 1, |c| c.is_ascii_digit()) } else { 0 }
    } else {
        0
    };
    // (0?\.[0-9]+)
    let z = usize::from(b.first() == Some(&b'0'));
    let c = if b.get(z) == Some(&b'.') {
        let d = count(b, z + 1, |c| c.is_ascii_digit());
        if d > 0 { z + 1 + d } else { 0 }
    } else {
        0
    };
    let n = a.max(c);
    if n == 0 {
        return 0;
    }
    // ([Ee][+-]?[0-9]+)?
    if matches!(b.get(n), Some(b'e' | b'E')) {
        let sign = usize::from(matches!(b.get(n + 1), Some(b'+' | b'-')));
        let d = count(b, n + 1 + sign, |c| c.is_ascii_digit());
        if d > 0 {
            return n + 1 + sign + d;
        }
    }
    n
}

/// Length of a path literal at the start of `s` (`{PATH_CHAR}*(/{PATH_CHAR}+)+/?`, or a prefix
/// ending in `/` that is followed by `${`), and whether it is interpolated.
fn path_len(s: &str) -> usize {
    let b = s.as_bytes();
    let mut j = count(b, 0, is_path_char);
    let mut segments = 0;
    loop {
        if b.get(j) == Some(&b'/') {
            let n = count(b, j + 1, is_path_char);
            if n > 0 {
                j += 1 + n;
                segments += 1;
                continue;
            }
            if b.get(j + 1) == Some(&b'$') && b.get(j + 2) == Some(&b'{') {
                return j + 1; // interpolated path: the caller continues
            }
            if segments > 0 {
                return j + 1; // trailing slash: reported by the caller
            }
        }
        break;
    }
    if segments > 0 { j } else { 0 }
}

fn uri_len(s: &str) -> usize {
    let b = s.as_bytes();
    if !b.first().is_some_and(|c| c.is_ascii_alphabetic()) {
        return 0;
    }
    let j = 1 + count(b, 1, |c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'));
    if b.get(j) != Some(&b':') {
        return 0;
    }
    let n = count(b, j + 1, is_uri_char);
    if n == 0 { 0 } else { j + 1 + n }
}

const KEYWORDS: [&str; 9] = ["if", "then", "else", "assert", "with", "let", "in", "rec", "inherit"];

/// Is the longest token at `s` exactly the keyword `kw`?
fn at_keyword(s: &str, kw: &str) -> bool {
    s.as_bytes().first() == kw.as_bytes().first()
        && s.starts_with(kw)
        && id_len(s) == kw.len()
        && path_len(s) <= kw.len()
        && uri_len(s) <= kw.len()
}

fn keyword<'a>(i: In<'a>, kw: &'static str) -> PResult<'a, Span> {
    if !at_keyword(i.fragment(), kw) {
        return soft(i, kw_label(kw));
    }
    let start = i.location_offset();
    let i = take(i, kw.len());
    let sp = span_of(&i, start);
    let (i, _) = ws(i)?;
    Ok((i, sp))
}

fn kw_label(kw: &str) -> &'static str {
    match kw {
        "if" => "`if`",
        "then" => "`then`",
        "else" => "`else`",
        "assert" => "`assert`",
        "with" => "`with`",
        "let" => "`let`",
        "in" => "`in`",
        "rec" => "`rec`",
        "inherit" => "`inherit`",
        "or" => "`or`",
        _ => "a keyword",
    }
}

/// A punctuation token, refusing longer tokens that start the same way (`/` is not `//`).
fn sym<'a>(i: In<'a>, t: &'static str) -> PResult<'a, Span> {
    let s = *i.fragment();
    // Most probes fail on the first byte; test it before anything else.
    if s.as_bytes().first() != t.as_bytes().first() {
        return soft(i, sym_label(t));
    }
    let ok = s.starts_with(t)
        && match t {
            "/" => !s.starts_with("//") && !s.starts_with("/*"),
            "-" => !s.starts_with("->"),
            "+" => !s.starts_with("++"),
            "<" | ">" | "=" | "!" => !s[1..].starts_with('='),
            "." => !s.starts_with("..."),
            "$" => false,
            _ => true,
        };
    if !ok {
        return soft(i, sym_label(t));
    }
    let start = i.location_offset();
    let i = take(i, t.len());
    let sp = span_of(&i, start);
    let (i, _) = ws(i)?;
    Ok((i, sp))
}

fn sym_label(t: &str) -> &'static str {
    match t.as_bytes() {
        b";" => "`;`",
        b"=" => "`=`",
        b"{" => "`{`",
        b"}" => "`}`",
        b"[" => "`[`",
        b"]" => "`]`",
        b"(" => "`(`",
        b")" => "`)`",
        b":" => "`:`",
        b"," => "`,`",
        b"." => "`.`",
        b"?" => "`?`",
        b"@" => "`@`",
        b"..." => "`...`",
        b"++" => "`++`",
        b"*" => "`*`",
        b"/" => "`/`",
        b"+" => "`+`",
        b"-" => "`-`",
        b"!" => "`!`",
        b"//" => "`//`",
        b"<" => "`<`",
        b"<=" => "`<=`",
        b">" => "`>`",
        b">=" => "`>=`",
        b"==" => "`==`",
        b"!=" => "`!=`",
        b"&&" => "`&&`",
        b"||" => "`||`",
        b"->" => "`->`",
        b"${" => "`${`",
        b"\"" => "`\"`",
        b"''" => "`''`",
        _ => "a symbol",
    }
}

/// Require `t`; otherwise a hard error with `message` and `help`.
fn expect<'a>(i: In<'a>, t: &'static str, message: &str, help: &str) -> PResult<'a, Span> {
    match sym(i, t) {
        Ok(r) => Ok(r),
        Err(NomErr::Error(_)) => {
            let found = describe_next(i.fragment());
            let mut e = PErr::at(i, format!("{message}, found {found}"));
            if !help.is_empty() {
                e.help = Some(help.into());
            }
            e.fail()
        }
        Err(e) => Err(e),
    }
}

/// An identifier that is not a keyword.
fn ident(i: In) -> PResult<(Name, Span)> {
    let s = *i.fragment();
    let n = id_len(s);
    if n == 0 || KEYWORDS.contains(&&s[..n]) || uri_len(s) > n || path_len(s) > n {
        return soft(i, "an identifier");
    }
    let start = i.location_offset();
    let name: Name = Rc::from(&s[..n]);
    let i = take(i, n);
    let sp = span_of(&i, start);
    let (i, _) = ws(i)?;
    Ok((i, (name, sp)))
}

// ---------------------------------------------------------------------------------------------
// Expressions

fn expr(i: In) -> PResult<Expr> {
    nested(i, 1, expr_function)
}

/// Run `f` one nesting level deeper (`extra` more levels): deep input is an error, never a stack
/// overflow, and the syntax tree stays shallow enough to lower, evaluate and drop.
fn nested<'a, T>(i: In<'a>, extra: u32, f: impl FnOnce(In<'a>) -> PResult<'a, T>) -> PResult<'a, T> {
    let depth = i.extra.depth.get();
    if depth + extra > MAX_NESTING {
        return PErr::at(i, format!("expression nested too deeply (more than {MAX_NESTING} levels)"))
            .help("split the expression with `let` bindings or into several files")
            .fail();
    }
    i.extra.depth.set(depth + extra);
    let r = stacker::maybe_grow(64 * 1024, 1024 * 1024, || f(i));
    i.extra.depth.set(depth);
    r
}

fn expr_function(i: In) -> PResult<Expr> {
    let start = i.location_offset();
    let s = *i.fragment();
    let file = i.extra.file;
    let mk = |kind, i: &In| Expr { kind, span: Span::new(file, start, last_end(i)) };

    if at_keyword(s, "let") {
        let (j, kw) = keyword(i, "let")?;
        if !j.fragment().starts_with('{') {
            let (j, binds) = bindings(j, Terminator::In, kw)?;
            let (j, _) = expect(j, "in", "expected `in` after the `let` bindings", "")?;
            let (j, body) = expr(j)?;
            return Ok((j, mk(ExprKind::Let { binds, body: Box::new(body) }, &j)));
        }
    }
    if at_keyword(s, "with") {
        let (j, _) = keyword(i, "with")?;
        let (j, env) = expr(j)?;
        let (j, _) = expect(j, ";", "expected `;` after the `with` expression", "write `with attrs; body`")?;
        let (j, body) = expr(j)?;
        return Ok((j, mk(ExprKind::With { env: Box::new(env), body: Box::new(body) }, &j)));
    }
    if at_keyword(s, "assert") {
        let (j, _) = keyword(i, "assert")?;
        let (j, cond) = expr(j)?;
        let (j, _) = expect(j, ";", "expected `;` after the assertion", "write `assert condition; body`")?;
        let (j, body) = expr(j)?;
        return Ok((j, mk(ExprKind::Assert { cond: Box::new(cond), body: Box::new(body) }, &j)));
    }
    // `x: body` and `x @ { ... }: body`
    if let Ok((j, (name, nsp))) = ident(i) {
        if sym(j, ":").is_ok() {
            let (j, _) = sym(j, ":")?;
            let (j, body) = expr(j)?;
            let lam = Lambda { param: Param::Ident(name, nsp), body };
            return Ok((j, mk(ExprKind::Lambda(Rc::new(lam)), &j)));
        }
        if let Ok((j, _)) = sym(j, "@") {
            let (j, (formals, ellipsis)) = formals(j)?;
            let (j, _) = expect(j, ":", "expected `:` after the function's arguments", "")?;
            let (j, body) = expr(j)?;
            let lam = Lambda { param: Param::Formals { formals, ellipsis, at: Some((name, nsp)) }, body };
            return Ok((j, mk(ExprKind::Lambda(Rc::new(lam)), &j)));
        }
    }
    // `{ a, b ? 1, ... }: body` and `{ ... } @ args: body`
    if looks_like_formals(s) {
        let (j, (formals, ellipsis)) = formals(i)?;
        let (j, at) = match sym(j, "@") {
            Ok((j, _)) => match ident(j) {
                Ok((j, a)) => (j, Some(a)),
                Err(_) => {
                    return PErr::at(j, "expected a name after `@`").help("write `{ a, b }@args: body`").fail();
                }
            },
            Err(_) => (j, None),
        };
        let (j, _) =
            expect(j, ":", "expected `:` after the function's arguments", "a function is written `{ a, b }: body`")?;
        let (j, body) = expr(j)?;
        let lam = Lambda { param: Param::Formals { formals, ellipsis, at }, body };
        return Ok((j, mk(ExprKind::Lambda(Rc::new(lam)), &j)));
    }
    expr_if(i)
}

/// End offset of the last token before `i` (the parser skips whitespace after every token).
fn last_end(i: &In) -> usize {
    let before = &i.extra.src[..i.location_offset()];
    before.trim_end_matches([' ', '\t', '\r', '\n']).len()
}

fn looks_like_formals(s: &str) -> bool {
    let Some(rest) = s.strip_prefix('{') else { return false };
    let rest = skip_ws_str(rest);
    if rest.starts_with("...") {
        return true;
    }
    if let Some(after) = rest.strip_prefix('}') {
        let after = skip_ws_str(after);
        return after.starts_with(':') || after.starts_with('@');
    }
    let n = id_len(rest);
    if n == 0 || KEYWORDS.contains(&&rest[..n]) {
        return false;
    }
    let after = skip_ws_str(&rest[n..]);
    if after.starts_with(',') || after.starts_with('?') {
        return true;
    }
    if let Some(after) = after.strip_prefix('}') {
        let after = skip_ws_str(after);
        return after.starts_with(':') || after.starts_with('@');
    }
    false
}

fn skip_ws_str(mut s: &str) -> &str {
    loop {
        let t = s.trim_start_matches([' ', '\t', '\r', '\n']);
        if let Some(c) = t.strip_prefix('#') {
            s = c.find('\n').map_or("", |k| &c[k..]);
        } else if let Some(c) = t.strip_prefix("/*") {
            s = c.find("*/").map_or("", |k| &c[k + 2..]);
        } else {
            return t;
        }
    }
}

fn formals(i: In) -> PResult<(Vec<Formal>, bool)> {
    let (mut i, open) = sym(i, "{")?;
    let mut formals: Vec<Formal> = Vec::new();
    let mut ellipsis = false;
    loop {
        if let Ok((j, _)) = sym(i, "}") {
            return Ok((j, (formals, ellipsis)));
        }
        if ellipsis {
            return PErr::at(i, format!("expected `}}` after `...`, found {}", describe_next(i.fragment())))
                .help("`...` must be the last entry of a function's arguments")
                .fail();
        }
        if let Ok((j, _)) = sym(i, "...") {
            ellipsis = true;
            i = j;
        } else {
            let (j, (name, span)) = match ident(i) {
                Ok(r) => r,
                Err(_) => {
                    return PErr::at(i, format!("expected an argument name, found {}", describe_next(i.fragment())))
                        .related(open, "in the arguments of this function")
                        .fail();
                }
            };
            if let Some(prev) = formals.iter().find(|f| f.name == name) {
                return Err(NomErr::Failure(
                    PErr::at(i, format!("duplicate function argument `{name}`"))
                        .related(prev.span, "first declared here")
                        .help("each argument name may appear only once"),
                ));
            }
            let (j, default) = match sym(j, "?") {
                Ok((j, _)) => {
                    let (j, d) = expr(j)?;
                    (j, Some(d))
                }
                Err(_) => (j, None),
            };
            formals.push(Formal { name, span, default });
            i = j;
        }
        match sym(i, ",") {
            Ok((j, _)) => i = j,
            Err(_) => {
                if sym(i, "}").is_err() {
                    return PErr::at(
                        i,
                        format!(
                            "expected `,` or `}}` in the function's arguments, found {}",
                            describe_next(i.fragment())
                        ),
                    )
                    .help("arguments are separated by commas: `{ a, b ? 1 }: ...`")
                    .fail();
                }
            }
        }
    }
}

fn expr_if(i: In) -> PResult<Expr> {
    if !at_keyword(i.fragment(), "if") {
        return expr_op(i);
    }
    let start = i.location_offset();
    let (j, if_span) = keyword(i, "if")?;
    let (j, cond) = expr(j)?;
    let (j, _) = match keyword(j, "then") {
        Ok(r) => r,
        Err(_) => {
            return PErr::at(j, format!("expected `then`, found {}", describe_next(j.fragment())))
                .related(if_span, "this `if` needs a `then` branch")
                .fail();
        }
    };
    let (j, then) = expr(j)?;
    let (j, _) = match keyword(j, "else") {
        Ok(r) => r,
        Err(_) => {
            return PErr::at(j, format!("expected `else`, found {}", describe_next(j.fragment())))
                .related(if_span, "this `if` needs an `else` branch")
                .help("every `if` has both branches: `if c then a else b`")
                .fail();
        }
    };
    let (j, else_) = expr(j)?;
    let span = Span::new(i.extra.file, start, last_end(&j));
    Ok((j, Expr { kind: ExprKind::If { cond: Box::new(cond), then: Box::new(then), else_: Box::new(else_) }, span }))
}

fn bin(op: BinOp, lhs: Expr, rhs: Expr) -> Expr {
    let span = lhs.span.to(rhs.span);
    Expr { kind: ExprKind::Binary { op, lhs: Box::new(lhs), rhs: Box::new(rhs) }, span }
}

/// An operand of an operator, which must be there: a missing one is a hard error.
fn operand<'a>(i: In<'a>, op: &str, f: impl Fn(In<'a>) -> PResult<'a, Expr>) -> PResult<'a, Expr> {
    match f(i) {
        Ok(r) => Ok(r),
        Err(NomErr::Error(mut e)) => {
            if e.offset == i.location_offset() {
                e.message = Some(format!("expected an expression after `{op}`, found {}", describe_next(i.fragment())));
            }
            Err(NomErr::Failure(e))
        }
        Err(e) => Err(e),
    }
}

fn expr_op(i: In) -> PResult<Expr> {
    op_bp(i, 0)
}

/// Binding strength of Nix's operator levels, loosest first (prefix `!` and `-` included).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Impl = 1,
    Or,
    And,
    Eq,
    Cmp,
    Update,
    Not,
    Add,
    Mul,
    Concat,
    Has,
    Neg,
}

#[derive(Clone, Copy, PartialEq)]
enum Assoc {
    Left,
    Right,
    None,
}

/// The infix operator at `s`, if any: its text, operator (`None` for `?`), level and associativity.
fn infix_at(s: &str) -> Option<(&'static str, Option<BinOp>, Level, Assoc)> {
    let b = s.as_bytes();
    let two = |c: u8| b.get(1) == Some(&c);
    Some(match b.first()? {
        b'-' if two(b'>') => ("->", Some(BinOp::Impl), Level::Impl, Assoc::Right),
        b'-' => ("-", Some(BinOp::Sub), Level::Add, Assoc::Left),
        b'|' if two(b'|') => ("||", Some(BinOp::Or), Level::Or, Assoc::Left),
        b'&' if two(b'&') => ("&&", Some(BinOp::And), Level::And, Assoc::Left),
        b'=' if two(b'=') => ("==", Some(BinOp::Eq), Level::Eq, Assoc::None),
        b'!' if two(b'=') => ("!=", Some(BinOp::Ne), Level::Eq, Assoc::None),
        b'<' if two(b'=') => ("<=", Some(BinOp::Le), Level::Cmp, Assoc::None),
        b'>' if two(b'=') => (">=", Some(BinOp::Ge), Level::Cmp, Assoc::None),
        b'<' => ("<", Some(BinOp::Lt), Level::Cmp, Assoc::None),
        b'>' => (">", Some(BinOp::Gt), Level::Cmp, Assoc::None),
        b'/' if two(b'/') => ("//", Some(BinOp::Update), Level::Update, Assoc::Right),
        b'/' if !two(b'*') => ("/", Some(BinOp::Div), Level::Mul, Assoc::Left),
        b'+' if two(b'+') => ("++", Some(BinOp::Concat), Level::Concat, Assoc::Right),
        b'+' => ("+", Some(BinOp::Add), Level::Add, Assoc::Left),
        b'*' => ("*", Some(BinOp::Mul), Level::Mul, Assoc::Left),
        b'?' => ("?", None, Level::Has, Assoc::Left),
        _ => return None,
    })
}

/// Pratt parsing of the operator levels: an operand, then operators binding at least `min`.
fn op_bp(i: In, min: u8) -> PResult<Expr> {
    nested(i, 1, |i| op_bp_inner(i, min))
}

fn op_bp_inner(i: In, min: u8) -> PResult<Expr> {
    let (mut i, mut lhs) = if let Ok((j, sp)) = sym(i, "!") {
        let (j, e) = operand(j, "!", |k| op_bp(k, 2 * Level::Not as u8))?;
        let span = sp.to(e.span);
        (j, Expr { kind: ExprKind::Unary { op: UnaryOp::Not, expr: Box::new(e) }, span })
    } else if let Ok((j, sp)) = sym(i, "-") {
        let (j, e) = operand(j, "-", |k| op_bp(k, 2 * Level::Neg as u8))?;
        let span = sp.to(e.span);
        (j, Expr { kind: ExprKind::Unary { op: UnaryOp::Neg, expr: Box::new(e) }, span })
    } else {
        expr_app(i)?
    };
    // The last non-associative operator applied at this level, to refuse `a == b == c`.
    let mut last_nonassoc: Option<(Level, &'static str, Span)> = None;
    // Each operator folded into `lhs` makes the tree one level deeper.
    let mut chain = 0u32;
    loop {
        let Some((text, op, level, assoc)) = infix_at(i.fragment()) else { return Ok((i, lhs)) };
        chain += 1;
        if i.extra.depth.get() + chain > MAX_NESTING {
            return PErr::at(i, format!("too many operators in one expression (more than {MAX_NESTING})"))
                .help("split the expression with `let` bindings, or use `builtins.concatLists`/`foldl'` over a list")
                .fail();
        }
        let (l_bp, r_bp) = match assoc {
            Assoc::Right => (2 * level as u8 + 1, 2 * level as u8),
            Assoc::Left | Assoc::None => (2 * level as u8, 2 * level as u8 + 1),
        };
        if l_bp < min {
            return Ok((i, lhs));
        }
        let (j, op_span) = sym(i, text)?;
        if let Some((lv, first, first_span)) = last_nonassoc
            && lv == level
        {
            return PErr::at(i, format!("`{text}` cannot follow `{first}` without parentheses"))
                .related(first_span, "first comparison here")
                .help("comparisons do not chain: write `(a < b) && (b < c)` or add parentheses")
                .fail();
        }
        let Some(op) = op else {
            // `e ? a.b`
            let (j, path) = attrpath(j).map_err(|e| harden(e, "expected an attribute name after `?`"))?;
            let span = Span::new(i.extra.file, lhs.span.start as usize, last_end(&j));
            lhs = Expr { kind: ExprKind::HasAttr { expr: Box::new(lhs), path }, span };
            i = j;
            continue;
        };
        let (j, rhs) = operand(j, text, |k| op_bp(k, r_bp))?;
        lhs = bin(op, lhs, rhs);
        last_nonassoc = (assoc == Assoc::None).then_some((level, text, op_span));
        i = j;
    }
}

fn harden(e: NomErr<PErr>, message: &str) -> NomErr<PErr> {
    match e {
        NomErr::Error(mut e) => {
            e.message = Some(message.to_string());
            NomErr::Failure(e)
        }
        e => e,
    }
}

fn expr_app(i: In) -> PResult<Expr> {
    let (mut i, mut f) = expr_select(i)?;
    loop {
        match expr_select(i) {
            Ok((j, arg)) => {
                let span = f.span.to(arg.span);
                f = Expr { kind: ExprKind::Apply { func: Box::new(f), arg: Box::new(arg) }, span };
                i = j;
            }
            Err(NomErr::Error(_)) => return Ok((i, f)),
            Err(e) => return Err(e),
        }
    }
}

/// A `.` that selects: not the start of a path (`./x`) or a float (`.5`), which lex longer.
fn select_dot(i: In) -> PResult<Span> {
    let s = *i.fragment();
    if path_len(s) > 0 || float_len(s) > 0 {
        return soft(i, "`.`");
    }
    sym(i, ".")
}

fn expr_select(i: In) -> PResult<Expr> {
    let (i, e) = primary(i)?;
    let Ok((j, _)) = select_dot(i) else { return or_argument(i, e) };
    let (j, path) = attrpath(j).map_err(|e| harden(e, "expected an attribute name after `.`"))?;
    let (j, default) = match keyword(j, "or") {
        Ok((k, _)) => {
            let (k, d) = operand(k, "or", |x| nested(x, 1, expr_select))?;
            (k, Some(Box::new(d)))
        }
        Err(_) => (j, None),
    };
    let span = Span::new(i.extra.file, e.span.start as usize, last_end(&j));
    Ok((j, Expr { kind: ExprKind::Select { expr: Box::new(e), path, default }, span }))
}

/// `f or`: Nix (2.8 and later) reads an `or` right after a simple expression as the variable `or`
/// passed to it (`let or = a: b: a || b; in fold or false xs`). Accepted, with a warning.
fn or_argument<'a>(i: In<'a>, e: Expr) -> PResult<'a, Expr> {
    let Ok((j, sp)) = keyword(i, "or") else { return Ok((i, e)) };
    i.extra.warnings.borrow_mut().push(Warning {
        span: sp,
        message: "`or` used as a variable name".into(),
        help: "`or` is a keyword (`a.b or default`); Nix accepts it here only for compatibility, so rename the \
               variable"
            .into(),
    });
    let span = e.span.to(sp);
    let arg = Expr { kind: ExprKind::Var(Rc::from("or")), span: sp };
    Ok((j, Expr { kind: ExprKind::Apply { func: Box::new(e), arg: Box::new(arg) }, span }))
}

fn attrpath(i: In) -> PResult<Vec<AttrKey>> {
    let (mut i, first) = attr_key(i)?;
    let mut path = vec![first];
    while let Ok((j, _)) = select_dot(i) {
        let (j, k) = attr_key(j).map_err(|e| harden(e, "expected an attribute name after `.`"))?;
        path.push(k);
        i = j;
    }
    Ok((i, path))
}

fn attr_key(i: In) -> PResult<AttrKey> {
    let s = *i.fragment();
    if at_keyword(s, "or") {
        let (j, sp) = keyword(i, "or")?;
        return Ok((j, AttrKey::Static(Rc::from("or"), sp)));
    }
    if let Ok((j, (name, sp))) = ident(i) {
        return Ok((j, AttrKey::Static(name, sp)));
    }
    if s.starts_with('"') {
        let (j, e) = string(i)?;
        return Ok((j, string_key(e)));
    }
    if s.starts_with("${") {
        let start = i.location_offset();
        let (j, _) = sym(i, "${")?;
        let (j, e) = expr(j)?;
        let (j, _) = expect(j, "}", "expected `}` to close `${`", "")?;
        let span = Span::new(i.extra.file, start, last_end(&j));
        // `${"a"}` with a plain string literal is a static name, as in Nix.
        if let ExprKind::Str(parts) = &e.kind {
            match parts.as_slice() {
                [] => return Ok((j, AttrKey::Static(Rc::from(""), span))),
                [StrPart::Lit(s)] => return Ok((j, AttrKey::Static(Rc::from(s.as_str()), span))),
                _ => {}
            }
        }
        return Ok((j, AttrKey::Dynamic(Expr { kind: e.kind, span })));
    }
    soft(i, "an attribute name")
}

/// A string used as an attribute name is static unless it interpolates.
fn string_key(e: Expr) -> AttrKey {
    if let ExprKind::Str(parts) = &e.kind {
        match parts.as_slice() {
            [] => return AttrKey::Static(Rc::from(""), e.span),
            [StrPart::Lit(s)] => return AttrKey::Static(Rc::from(s.as_str()), e.span),
            _ => {}
        }
    }
    AttrKey::Dynamic(e)
}

#[derive(Clone, Copy, PartialEq)]
enum Terminator {
    Brace,
    In,
}

fn bindings(mut i: In, term: Terminator, opener: Span) -> PResult<Vec<Binding>> {
    let mut binds = Vec::new();
    loop {
        let s = *i.fragment();
        match term {
            Terminator::Brace if s.starts_with('}') => return Ok((i, binds)),
            Terminator::In if at_keyword(s, "in") => return Ok((i, binds)),
            _ => {}
        }
        if s.is_empty() {
            let (what, help) = match term {
                Terminator::Brace => ("unclosed `{`: expected `}`", "add `}` to close this attribute set"),
                Terminator::In => ("expected `in` after the `let` bindings", "write `let x = 1; in x`"),
            };
            return PErr::at(i, format!("{what}, found end of file")).related(opener, "opened here").help(help).fail();
        }
        let start = i.location_offset();
        if at_keyword(s, "inherit") {
            let (j, _) = keyword(i, "inherit")?;
            let (j, from) = match sym(j, "(") {
                Ok((k, open)) => {
                    let (k, e) = expr(k)?;
                    let (k, _) = match sym(k, ")") {
                        Ok(r) => r,
                        Err(_) => {
                            return PErr::at(k, format!("expected `)`, found {}", describe_next(k.fragment())))
                                .related(open, "to close this `(`")
                                .fail();
                        }
                    };
                    (k, Some(e))
                }
                Err(_) => (j, None),
            };
            let mut names = Vec::new();
            let mut j = j;
            loop {
                if let Ok((k, (n, sp))) = ident(j) {
                    names.push((n, sp));
                    j = k;
                    continue;
                }
                if at_keyword(j.fragment(), "or") {
                    let (k, sp) = keyword(j, "or")?;
                    names.push((Rc::from("or"), sp));
                    j = k;
                    continue;
                }
                if j.fragment().starts_with('"') {
                    let (k, e) = string(j)?;
                    match string_key(e) {
                        AttrKey::Static(n, sp) => names.push((n, sp)),
                        AttrKey::Dynamic(e) => {
                            return Err(NomErr::Failure(PErr {
                                offset: e.span.start as usize,
                                expected: vec![],
                                expected_one: None,
                                message: Some("dynamic attributes are not allowed in `inherit`".into()),
                                help: Some("write `name = expr;` instead".into()),
                                related: None,
                            }));
                        }
                    }
                    j = k;
                    continue;
                }
                if j.fragment().starts_with("${") {
                    // `${"a"}`, a plain string, names `a` as in Nix; anything computed is refused.
                    match attr_key(j)? {
                        (k, AttrKey::Static(n, sp)) => {
                            names.push((n, sp));
                            j = k;
                            continue;
                        }
                        (_, AttrKey::Dynamic(_)) => {
                            return PErr::at(j, "dynamic attributes are not allowed in `inherit`")
                                .help("`inherit` takes names (`inherit a;`, `inherit ${\"a\"};`); write `name = expr;` instead")
                                .fail();
                        }
                    }
                }
                break;
            }
            let span = Span::new(i.extra.file, start, last_end(&j));
            let (j, _) =
                expect(j, ";", "expected `;` after `inherit`", "write `inherit a b;` or `inherit (set) a b;`")?;
            binds.push(Binding::Inherit { from, names, span });
            i = j;
            continue;
        }
        let (j, path) = match attrpath(i) {
            Ok(r) => r,
            Err(NomErr::Error(_)) => {
                let found = describe_next(s);
                let (msg, help) = match term {
                    Terminator::Brace => (
                        format!("expected an attribute name or `}}`, found {found}"),
                        "attributes are written `name = value;`",
                    ),
                    Terminator::In => (
                        format!("expected a binding or `in`, found {found}"),
                        "bindings are written `name = value;` and end with `in`",
                    ),
                };
                return PErr::at(i, msg).related(opener, "in this block").help(help).fail();
            }
            Err(e) => return Err(e),
        };
        let (j, _) = match sym(j, "=") {
            Ok(r) => r,
            Err(_) => {
                let found = describe_next(j.fragment());
                let name = path_text(&path);
                let help = if j.fragment().starts_with(':') {
                    "attributes use `=`, not `:`".to_string()
                } else if term == Terminator::In {
                    format!("if `{name}` is the body of the `let`, write `in` before it")
                } else if j.fragment().starts_with(',') || id_len(j.fragment()) > 0 {
                    "attributes are written `name = value;`; function arguments are separated by commas: `{ a, b }: ...`".to_string()
                } else {
                    "attributes are written `name = value;`".to_string()
                };
                return PErr::at(j, format!("expected `=` after `{name}`, found {found}")).help(help).fail();
            }
        };
        let (j, value) = expr(j)?;
        let span = Span::new(i.extra.file, start, last_end(&j));
        let (j, _) = match sym(j, ";") {
            Ok(r) => r,
            Err(_) => {
                let name = path_text(&path);
                let at_end = Span::new(i.extra.file, last_end(&j), last_end(&j));
                let found = describe_next(j.fragment());
                let mut e = PErr::at(j, format!("expected `;` after the attribute `{name}`, found {found}"))
                    .help("every attribute ends with `;`: `name = value;`");
                e.offset = at_end.start as usize;
                e.related = Some((span.start as usize, span.end as usize, "this attribute".into()));
                return e.fail();
            }
        };
        binds.push(Binding::Attr { path, value, span });
        i = j;
    }
}

/// An attribute path as written, for messages.
fn path_text(path: &[AttrKey]) -> String {
    path.iter()
        .map(|k| match k {
            AttrKey::Static(n, _) => crate::print::attr_name(n),
            AttrKey::Dynamic(_) => "${...}".into(),
        })
        .collect::<Vec<_>>()
        .join(".")
}

fn primary(i: In) -> PResult<Expr> {
    let s = *i.fragment();
    let Some(&c) = s.as_bytes().first() else {
        return soft(i, "an expression");
    };
    match c {
        b'(' => parens(i),
        b'[' => list(i),
        b'{' => attrs(i, false),
        b'"' => string(i),
        b'\'' if s.starts_with("''") => ind_string(i),
        b'<' => search_path(i),
        b'~' if s.starts_with("~/") => home_path(i),
        _ => alt((word, soft_expr)).parse(i),
    }
}

fn soft_expr(i: In) -> PResult<Expr> {
    soft(i, "an expression")
}

fn parens(i: In) -> PResult<Expr> {
    let (j, open) = sym(i, "(")?;
    let (j, e) = expr(j)?;
    let (j, close) = match sym(j, ")") {
        Ok(r) => r,
        Err(_) => {
            let found = describe_next(j.fragment());
            return PErr::at(j, format!("expected `)`, found {found}"))
                .related(open, "unclosed `(` opened here")
                .fail();
        }
    };
    Ok((j, Expr { kind: e.kind, span: open.to(close) }))
}

fn list(i: In) -> PResult<Expr> {
    let (mut j, open) = sym(i, "[")?;
    let mut items = Vec::new();
    loop {
        if let Ok((k, close)) = sym(j, "]") {
            return Ok((k, Expr { kind: ExprKind::List(items), span: open.to(close) }));
        }
        match nested(j, 1, expr_select) {
            Ok((k, e)) => {
                items.push(e);
                j = k;
            }
            Err(NomErr::Error(_)) => {
                let found = describe_next(j.fragment());
                let help = if j.fragment().starts_with(',') {
                    "list elements are separated by spaces, not commas"
                } else if j.fragment().is_empty() {
                    "add `]` to close this list"
                } else {
                    "list elements are separated by spaces; put function calls in parentheses: `[ (f x) ]`"
                };
                return PErr::at(j, format!("expected a list element or `]`, found {found}"))
                    .related(open, "list opened here")
                    .help(help)
                    .fail();
            }
            Err(e) => return Err(e),
        }
    }
}

fn attrs(i: In, rec: bool) -> PResult<Expr> {
    let start = i.location_offset();
    let (j, open) = sym(i, "{")?;
    let (j, binds) = bindings(j, Terminator::Brace, open)?;
    let (j, close) = sym(j, "}")?;
    let span = Span::new(i.extra.file, start, close.end as usize);
    Ok((j, Expr { kind: ExprKind::Attrs { rec, binds }, span }))
}

/// Identifiers, keywords that start a primary (`rec`, `let {`), numbers, paths and URIs.
fn word(i: In) -> PResult<Expr> {
    let s = *i.fragment();
    let start = i.location_offset();
    let file = i.extra.file;
    let (idn, intn, fln, pn, un) = (id_len(s), int_len(s), float_len(s), path_len(s), uri_len(s));
    let best = idn.max(intn).max(fln).max(pn).max(un);
    if best == 0 {
        return soft(i, "an expression");
    }
    if pn == best {
        return path_literal(i, PathAnchor::Relative, 0);
    }
    if un == best && un > idn {
        let j = take(i, un);
        let span = Span::new(file, start, start + un);
        let (j, _) = ws(j)?;
        return Ok((j, Expr { kind: ExprKind::Str(vec![StrPart::Lit(s[..un].to_string())]), span }));
    }
    if idn == best {
        let w = &s[..idn];
        if w == "rec" {
            let (j, _) = keyword(i, "rec")?;
            if !j.fragment().starts_with('{') {
                return PErr::at(j, format!("expected `{{` after `rec`, found {}", describe_next(j.fragment()))).fail();
            }
            let (j, mut e) = attrs(j, true)?;
            e.span = Span::new(file, start, e.span.end as usize);
            return Ok((j, e));
        }
        if w == "let" {
            // `let { ...; body = e; }`: the old form of `let`, the value of its `body` attribute.
            let (j, _) = keyword(i, "let")?;
            let (j, e) = attrs(j, true)?;
            let span = Span::new(file, start, e.span.end as usize);
            let body = AttrKey::Static(Rc::from("body"), span);
            return Ok((
                j,
                Expr { kind: ExprKind::Select { expr: Box::new(e), path: vec![body], default: None }, span },
            ));
        }
        if KEYWORDS.contains(&w) || w == "or" {
            return soft(i, "an expression");
        }
        let (j, (name, span)) = ident(i)?;
        return Ok((j, Expr { kind: ExprKind::Var(name), span }));
    }
    if fln == best {
        let text = &s[..fln];
        let j = take(i, fln);
        let span = Span::new(file, start, start + fln);
        // Nix reads floats with `strtod` and refuses any that sets `ERANGE`: one too large (it would
        // be infinite) or too small (a nonzero literal that would be subnormal or zero).
        let mantissa = text.split(['e', 'E']).next().unwrap_or(text);
        let nonzero = mantissa.bytes().any(|b| matches!(b, b'1'..=b'9'));
        let v: f64 = match text.parse::<f64>() {
            Ok(v) if v.is_finite() && (v.is_normal() || !nonzero) => v,
            Ok(_) => {
                return PErr::at(i, format!("float `{text}` is out of range"))
                    .help(format!("floats are 64-bit: from {:e} to {:e} in magnitude", f64::MIN_POSITIVE, f64::MAX))
                    .fail();
            }
            Err(_) => return PErr::at(i, format!("invalid float `{text}`")).fail(),
        };
        let (j, _) = ws(j)?;
        return Ok((j, Expr { kind: ExprKind::Float(v), span }));
    }
    let text = &s[..intn];
    let span = Span::new(file, start, start + intn);
    let v: i64 = match text.parse() {
        Ok(v) => v,
        Err(_) => {
            return PErr::at(i, format!("integer `{text}` is too large"))
                .help(format!("integers are 64-bit: at most {}", i64::MAX))
                .fail();
        }
    };
    let j = take(i, intn);
    let (j, _) = ws(j)?;
    Ok((j, Expr { kind: ExprKind::Int(v), span }))
}

/// A path literal starting at `i` (after `skip` bytes of anchor), possibly with `${}` parts.
fn path_literal(i: In, anchor: PathAnchor, skip: usize) -> PResult<Expr> {
    let start = i.location_offset();
    let file = i.extra.file;
    let mut parts: Vec<StrPart> = Vec::new();
    let mut lit = String::new();
    let mut j = take(i, skip);
    let mut first = true;
    loop {
        let s = *j.fragment();
        let n = if first {
            path_len(s)
        } else {
            // After an interpolation: more path characters and slashes.
            s.bytes().take_while(|c| is_path_char(*c) || *c == b'/').count()
        };
        first = false;
        lit.push_str(&s[..n]);
        j = take(j, n);
        if j.fragment().starts_with("${") && lit.ends_with('/')
            || j.fragment().starts_with("${") && !parts.is_empty() && n == 0
        {
            if !lit.is_empty() {
                parts.push(StrPart::Lit(std::mem::take(&mut lit)));
            }
            let (k, _) = sym(j, "${")?;
            let (k, e) = expr(k)?;
            let k = match k.fragment().strip_prefix('}') {
                Some(_) => take(k, 1),
                None => {
                    return PErr::at(
                        k,
                        format!("expected `}}` to close `${{` in a path, found {}", describe_next(k.fragment())),
                    )
                    .fail();
                }
            };
            parts.push(StrPart::Interp(e));
            j = k;
            continue;
        }
        break;
    }
    if !lit.is_empty() {
        if lit.ends_with('/') && lit.len() > 1 {
            let at = Span::new(file, start, j.location_offset());
            return Err(NomErr::Failure(PErr {
                offset: at.start as usize,
                expected: vec![],
                expected_one: None,
                message: Some(format!("path `{}` has a trailing slash", &i.fragment()[..at.len()])),
                help: Some("remove the final `/`".into()),
                related: None,
            }));
        }
        parts.push(StrPart::Lit(lit));
    }
    let span = Span::new(file, start, j.location_offset());
    let anchor = match (&anchor, parts.first()) {
        (PathAnchor::Relative, Some(StrPart::Lit(s))) if s.starts_with('/') => PathAnchor::Absolute,
        _ => anchor,
    };
    let (j, _) = ws(j)?;
    Ok((j, Expr { kind: ExprKind::Path { anchor, parts }, span }))
}

fn home_path(i: In) -> PResult<Expr> {
    let s = *i.fragment();
    if path_len(&s[1..]) == 0 {
        return soft(i, "an expression");
    }
    let (j, mut e) = path_literal(i, PathAnchor::Home, 1)?;
    e.span.start = i.location_offset() as u32;
    Ok((j, e))
}

fn search_path(i: In) -> PResult<Expr> {
    let s = *i.fragment();
    let b = s.as_bytes();
    let mut j = 1;
    let n = count(b, j, is_path_char);
    if n == 0 {
        return soft(i, "an expression");
    }
    j += n;
    while b.get(j) == Some(&b'/') {
        let n = count(b, j + 1, is_path_char);
        if n == 0 {
            break;
        }
        j += 1 + n;
    }
    if b.get(j) != Some(&b'>') {
        return soft(i, "an expression");
    }
    let start = i.location_offset();
    let name = s[1..j].to_string();
    let k = take(i, j + 1);
    let span = Span::new(i.extra.file, start, start + j + 1);
    let (k, _) = ws(k)?;
    Ok((k, Expr { kind: ExprKind::Path { anchor: PathAnchor::Search, parts: vec![StrPart::Lit(name)] }, span }))
}

fn push_lit(parts: &mut Vec<StrPart>, s: &str) {
    if let Some(StrPart::Lit(last)) = parts.last_mut() {
        last.push_str(s);
    } else {
        parts.push(StrPart::Lit(s.to_string()));
    }
}

/// `${ expr }` inside a string; `i` is at `${`.
fn interpolation(i: In) -> PResult<Expr> {
    let open = Span::new(i.extra.file, i.location_offset(), i.location_offset() + 2);
    let j = take(i, 2);
    let (j, _) = ws(j)?;
    let (j, e) = expr(j)?;
    match j.fragment().strip_prefix('}') {
        Some(_) => Ok((take(j, 1), e)),
        None => {
            let found = describe_next(j.fragment());
            PErr::at(j, format!("expected `}}` to close the interpolation, found {found}"))
                .related(open, "interpolation opened here")
                .fail()
        }
    }
}

fn string(i: In) -> PResult<Expr> {
    let start = i.location_offset();
    let file = i.extra.file;
    let mut parts: Vec<StrPart> = Vec::new();
    let mut j = take(i, 1);
    loop {
        let s = *j.fragment();
        let Some(c) = s.chars().next() else {
            let open = Span::new(file, start, start + 1);
            return PErr::at(j, "unterminated string")
                .related(open, "string starts here")
                .help("add a closing `\"`")
                .fail();
        };
        match c {
            '"' => {
                j = take(j, 1);
                break;
            }
            '\\' => {
                // A `\` at the very end: nothing closes the string.
                let Some(e) = s[1..].chars().next() else {
                    j = take(j, s.len());
                    continue;
                };
                let lit = match e {
                    'n' => "\n".to_string(),
                    'r' => "\r".to_string(),
                    't' => "\t".to_string(),
                    other => other.to_string(),
                };
                push_lit(&mut parts, &lit);
                j = take(j, 1 + e.len_utf8());
            }
            '$' if s.starts_with("${") => {
                let (k, e) = interpolation(j)?;
                parts.push(StrPart::Interp(e));
                j = k;
            }
            '$' if s.starts_with("$$") => {
                push_lit(&mut parts, "$$");
                j = take(j, 2);
            }
            _ => {
                let n = s.find(['"', '\\', '$']).unwrap_or(s.len()).max(c.len_utf8());
                push_lit(&mut parts, &s[..n]);
                j = take(j, n);
            }
        }
    }
    let span = Span::new(file, start, j.location_offset());
    let (j, _) = ws(j)?;
    Ok((j, Expr { kind: ExprKind::Str(parts), span }))
}

/// A token of an indented string, before indentation is stripped (Nix 2.8 keeps them apart).
/// Only plain text counts as indentation; escapes and lone `$`/`'` end a line's leading spaces.
enum IndPart {
    Lit(String, bool),
    Interp(Expr),
}

fn ind_string(i: In) -> PResult<Expr> {
    let start = i.location_offset();
    let file = i.extra.file;
    let mut j = take(i, 2);
    // `''` swallows the rest of its line when that is only spaces.
    {
        let s = *j.fragment();
        let sp = s.bytes().take_while(|c| *c == b' ').count();
        if s.as_bytes().get(sp) == Some(&b'\n') {
            j = take(j, sp + 1);
        }
    }
    let mut toks: Vec<IndPart> = Vec::new();
    loop {
        let s = *j.fragment();
        if s.is_empty() {
            let open = Span::new(file, start, start + 2);
            return PErr::at(j, "unterminated indented string")
                .related(open, "indented string starts here")
                .help("close it with `''`")
                .fail();
        }
        if s.starts_with("''$") {
            toks.push(IndPart::Lit("$".into(), false));
            j = take(j, 3);
        } else if s.starts_with("'''") {
            toks.push(IndPart::Lit("''".into(), false));
            j = take(j, 3);
        } else if let Some(rest) = s.strip_prefix("''\\") {
            match rest.chars().next() {
                Some(c) => {
                    let lit = match c {
                        'n' => "\n".to_string(),
                        'r' => "\r".to_string(),
                        't' => "\t".to_string(),
                        other => other.to_string(),
                    };
                    toks.push(IndPart::Lit(lit, false));
                    j = take(j, 3 + c.len_utf8());
                }
                None => j = take(j, 3),
            }
        } else if s.starts_with("''") {
            j = take(j, 2);
            break;
        } else if s.starts_with("${") {
            let (k, e) = interpolation(j)?;
            toks.push(IndPart::Interp(e));
            j = k;
        } else {
            // ([^$']|$[^{']|'[^'$])+
            let b = s.as_bytes();
            let mut k = 0;
            while k < b.len() {
                match b[k] {
                    b'$' => match b.get(k + 1) {
                        Some(b'{') | Some(b'\'') | None => break,
                        Some(_) => k += 2,
                    },
                    b'\'' => match b.get(k + 1) {
                        Some(b'\'') | Some(b'$') | None => break,
                        Some(_) => k += 2,
                    },
                    _ => k += 1,
                }
            }
            // Two-byte units may end inside a multi-byte character: extend to a boundary.
            while k < s.len() && !s.is_char_boundary(k) {
                k += 1;
            }
            if k == 0 {
                toks.push(IndPart::Lit(s[..1].to_string(), false)); // a lone `$` or `'`
                j = take(j, 1);
            } else {
                toks.push(IndPart::Lit(s[..k].to_string(), true));
                j = take(j, k);
            }
        }
    }
    let parts = strip_indentation(toks);
    let span = Span::new(file, start, j.location_offset());
    let (j, _) = ws(j)?;
    Ok((j, Expr { kind: ExprKind::Str(parts), span }))
}

/// Nix 2.8's `stripIndentation`, token by token.
fn strip_indentation(toks: Vec<IndPart>) -> Vec<StrPart> {
    let mut at_start = true;
    let mut min_indent = usize::MAX;
    let mut cur = 0usize;
    for t in &toks {
        match t {
            IndPart::Interp(_) | IndPart::Lit(_, false) => {
                if at_start {
                    at_start = false;
                    min_indent = min_indent.min(cur);
                }
            }
            IndPart::Lit(s, true) => {
                for c in s.bytes() {
                    if at_start {
                        if c == b' ' {
                            cur += 1;
                        } else if c == b'\n' {
                            cur = 0;
                        } else {
                            at_start = false;
                            min_indent = min_indent.min(cur);
                        }
                    } else if c == b'\n' {
                        at_start = true;
                        cur = 0;
                    }
                }
            }
        }
    }
    let mut out: Vec<StrPart> = Vec::new();
    at_start = true;
    let mut dropped = 0usize;
    let n = toks.len();
    for (idx, t) in toks.into_iter().enumerate() {
        match t {
            IndPart::Interp(e) => {
                at_start = false;
                dropped = 0;
                out.push(StrPart::Interp(e));
            }
            IndPart::Lit(s, _) => {
                let mut s2 = String::with_capacity(s.len());
                for c in s.chars() {
                    if at_start {
                        if c == ' ' {
                            if dropped >= min_indent {
                                s2.push(c);
                            }
                            dropped += 1;
                        } else if c == '\n' {
                            dropped = 0;
                            s2.push(c);
                        } else {
                            at_start = false;
                            dropped = 0;
                            s2.push(c);
                        }
                    } else {
                        s2.push(c);
                        if c == '\n' {
                            at_start = true;
                        }
                    }
                }
                if idx + 1 == n
                    && let Some(p) = s2.rfind('\n')
                    && s2[p + 1..].bytes().all(|c| c == b' ')
                {
                    s2.truncate(p + 1);
                }
                push_lit(&mut out, &s2);
            }
        }
    }
    out.retain(|p| !matches!(p, StrPart::Lit(s) if s.is_empty()));
    out
}
