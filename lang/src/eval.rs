//! The evaluator: call-by-need evaluation of the IR, imports, and the checks that keep it pure and
//! confined to the project root.

use crate::ast::{BinOp, PathAnchor};
use crate::builtins;
use crate::compile::{AttrsIr, Compiler, IrKey, IrKind, IrPart, IrRef, LambdaParam, resolve_path};
use crate::error::{ErrorKind, EvalError, TraceFrame, closest};
use crate::io::{EvalIo, FileKind};
use crate::parser;
use crate::print::attr_name;
use crate::span::{FileId, SourceMap, Span};
use crate::value::*;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

pub type EResult<T> = Result<T, Box<EvalError>>;

/// The most nested function calls one evaluation may make. Far beyond what definitions need
/// (Nix evaluates 100,000-deep recursions); the stack budget below usually ends a runaway first.
pub const MAX_CALL_DEPTH: u32 = 1_000_000;

/// The most stack evaluation may use, in bytes. The stack grows on the heap in segments (so deep
/// recursion never overflows the thread's own stack); an evaluation that needs more than this is
/// stopped with an error instead of exhausting memory.
pub const MAX_STACK: usize = 1 << 30;

/// Grow the stack when less than this is left.
const RED_ZONE: usize = 256 * 1024;

/// The size of each stack segment taken from the heap.
const SEGMENT: usize = 16 * 1024 * 1024;

/// How the evaluator is set up for one run.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `readFile` and `import` may not leave this folder (symlinks included). `None`: no limit.
    pub root: Option<PathBuf>,
    /// `<name>` lookups: name to folder.
    pub search_paths: Vec<(String, PathBuf)>,
    /// File names in messages are shown relative to this folder.
    pub display_base: Option<PathBuf>,
    /// Folders whose files are the bundled standard library (folded out of traces).
    pub stdlib_dirs: Vec<PathBuf>,
}

pub struct Evaluator<'io> {
    pub(crate) io: &'io dyn EvalIo,
    pub sources: SourceMap,
    pub(crate) options: Options,
    canonical_root: Option<PathBuf>,
    pub(crate) globals: Rc<Env>,
    pub(crate) global_names: HashMap<Name, u32>,
    imports: HashMap<PathBuf, Thunk>,
    import_stack: Vec<PathBuf>,
    pub(crate) regexes: HashMap<String, Rc<regex::bytes::Regex>>,
    depth: u32,
    /// Stack segments in use (see [`MAX_STACK`]).
    segments: usize,
    /// Deprecated syntax met while parsing, not yet taken by [`Self::take_warnings`].
    warnings: Vec<EvalError>,
}

fn err(kind: ErrorKind, msg: impl Into<String>, span: Span) -> Box<EvalError> {
    Box::new(EvalError::new(kind, msg).at(span))
}

pub(crate) fn type_err(expected: &str, got: &Value, span: Span) -> Box<EvalError> {
    err(ErrorKind::Type, format!("expected {expected} but found {}", got.describe()), span)
}

impl<'io> Evaluator<'io> {
    pub fn new(io: &'io dyn EvalIo, options: Options) -> Evaluator<'io> {
        let (globals, global_names) = builtins::globals();
        let canonical_root = options.root.as_ref().map(|r| io.canonicalize(r).unwrap_or_else(|_| r.clone()));
        Evaluator {
            io,
            sources: SourceMap::default(),
            options,
            canonical_root,
            globals,
            global_names,
            imports: HashMap::new(),
            import_stack: Vec::new(),
            regexes: HashMap::new(),
            depth: 0,
            segments: 0,
            warnings: Vec::new(),
        }
    }

    // --- loading --------------------------------------------------------------------------

    /// How a path is shown in messages: relative to the working directory (`display_base`), or
    /// under its search path (`<std>/default.nix`).
    pub(crate) fn display_name(&self, path: &Path) -> String {
        for (name, dir) in &self.options.search_paths {
            if let Ok(rest) = path.strip_prefix(dir) {
                return format!("<{name}>/{}", rest.display());
            }
        }
        match &self.options.display_base {
            Some(base) => relative_to(path, base),
            None => path.display().to_string(),
        }
    }

    fn is_stdlib(&self, path: &Path) -> bool {
        self.options.stdlib_dirs.iter().any(|d| path.starts_with(d))
    }

    /// Register source text and parse and lower it in the global scope.
    pub fn compile_source(&mut self, name: String, path: &Path, text: &str) -> EResult<(FileId, IrRef)> {
        let stdlib = self.is_stdlib(path);
        let id = self.sources.add(name, path.to_path_buf(), std::sync::Arc::from(text), stdlib);
        let (expr, warnings) = parser::parse_with_warnings(text, id).map_err(|e| syntax_error(&e, id, text))?;
        self.warnings.extend(
            warnings.into_iter().map(|w| EvalError::new(ErrorKind::Deprecated, w.message).at(w.span).help(w.help)),
        );
        let dir: Rc<Path> = Rc::from(path.parent().unwrap_or(Path::new("/")));
        let mut c = Compiler::new(&self.global_names, dir);
        let ir = c.compile(&expr)?;
        Ok((id, ir))
    }

    /// The warnings (deprecated syntax) met since the last call, ready to show.
    pub fn take_warnings(&mut self) -> Vec<crate::Error> {
        std::mem::take(&mut self.warnings).iter().map(|w| crate::Error::from_eval(w, &self.sources)).collect()
    }

    /// Evaluate a file to weak head normal form (its top-level value; inner values stay lazy).
    pub fn import_path(&mut self, path: &Path, span: Option<Span>) -> EResult<Value> {
        let path = self.resolve_import(path, span)?;
        if let Some(t) = self.imports.get(&path).cloned() {
            if t.value().is_none() && self.import_stack.contains(&path) {
                let start = self.import_stack.iter().position(|p| *p == path).unwrap_or(0);
                let chain: Vec<String> = self.import_stack[start..]
                    .iter()
                    .chain(std::iter::once(&path))
                    .map(|p| self.display_name(p))
                    .collect();
                let mut e = EvalError::new(ErrorKind::ImportCycle, format!("import cycle: {}", chain.join(" -> ")))
                    .help("a file's value cannot depend on itself; move the shared part into a third file");
                if let Some(sp) = span {
                    e = e.at(sp).label("this import closes the cycle");
                }
                return Err(e.boxed());
            }
            return self.force(&t);
        }
        let text = self.io.read_to_string(&path).map_err(|e| {
            let shown = self.display_name(&path);
            let mut ev = EvalError::new(ErrorKind::Import, format!("cannot read `{shown}`: {}", io_reason(&e)));
            if e.kind() == std::io::ErrorKind::NotFound {
                ev = ev.help("check the path; relative paths are resolved against the file that contains them");
            }
            if let Some(sp) = span {
                ev = ev.at(sp);
            }
            ev.boxed()
        })?;
        let name = self.display_name(&path);
        let (_, ir) = self.compile_source(name, &path, &text)?;
        let t = Thunk::pending(ir, self.globals.clone());
        self.imports.insert(path.clone(), t.clone());
        self.import_stack.push(path.clone());
        let r = self.force(&t);
        self.import_stack.pop();
        r.map_err(|mut e| {
            if let Some(sp) = span {
                e.trace.push(TraceFrame { span: sp, what: format!("while importing `{}`", self.display_name(&path)) });
            }
            e
        })
    }

    fn resolve_import(&self, path: &Path, span: Option<Span>) -> EResult<PathBuf> {
        self.check_access(path, span)?;
        match self.io.file_kind(path) {
            Ok(FileKind::Directory) => {
                let p = path.join("default.nix");
                self.check_access(&p, span)?;
                Ok(p)
            }
            _ => Ok(path.to_path_buf()),
        }
    }

    /// `readFile`, `import` and `pathExists` may not leave the project root.
    pub(crate) fn check_access(&self, path: &Path, span: Option<Span>) -> EResult<()> {
        let Some(root) = &self.options.root else { return Ok(()) };
        if self.options.search_paths.iter().any(|(_, d)| path.starts_with(d)) {
            return Ok(());
        }
        let outside = |what: String| {
            let shown = match self.display_name(root) {
                s if s.is_empty() => ".".to_string(),
                s => s,
            };
            let mut e = EvalError::new(ErrorKind::OutsideRoot, what).help(format!(
                "definitions may only read files inside the project root `{shown}`; pass `--root DIR` to widen it"
            ));
            if let Some(sp) = span {
                e = e.at(sp);
            }
            e.boxed()
        };
        if !path.starts_with(root) {
            return Err(outside(format!("`{}` is outside the project root", self.display_name(path))));
        }
        if let (Some(croot), Ok(real)) = (&self.canonical_root, self.io.canonicalize(path))
            && !real.starts_with(croot)
        {
            return Err(outside(format!(
                "`{}` leads outside the project root through a symlink (to `{}`)",
                self.display_name(path),
                self.display_name(&real)
            )));
        }
        Ok(())
    }

    pub(crate) fn find_search_path(&self, name: &str, span: Span) -> EResult<Value> {
        let (head, rest) = name.split_once('/').unwrap_or((name, ""));
        for (n, dir) in &self.options.search_paths {
            if n == head {
                let p = if rest.is_empty() { dir.clone() } else { resolve_path(dir, rest) };
                return Ok(Value::path(&p));
            }
        }
        let known: Vec<String> = self.options.search_paths.iter().map(|(n, _)| format!("<{n}>")).collect();
        Err(Box::new(
            EvalError::new(ErrorKind::SearchPath, format!("`<{name}>` was not found in the search path"))
                .at(span)
                .help(if known.is_empty() {
                    "no search paths are set".to_string()
                } else {
                    format!("available: {}", known.join(", "))
                }),
        ))
    }

    // --- forcing --------------------------------------------------------------------------

    pub fn force(&mut self, t: &Thunk) -> EResult<Value> {
        let state = {
            let mut st = t.0.borrow_mut();
            let span = match &*st {
                ThunkState::Done(v) => return Ok(v.clone()),
                ThunkState::Blackhole(sp) => {
                    return Err(err(ErrorKind::InfiniteRecursion, "infinite recursion encountered", *sp)
                        .with_help("this value depends on itself; check the bindings it refers to"));
                }
                ThunkState::Pending(ir, _) => ir.span,
                ThunkState::Apply(_, _, sp) => *sp,
            };
            std::mem::replace(&mut *st, ThunkState::Blackhole(span))
        };
        let span = match &state {
            ThunkState::Pending(ir, _) => ir.span,
            ThunkState::Apply(_, _, sp) => *sp,
            _ => unreachable!("handled above"),
        };
        let r = self.grow(Some(span), |ev| match &state {
            ThunkState::Pending(ir, env) => ev.eval_inner(ir, env),
            ThunkState::Apply(f, args, sp) => {
                let f = ev.force(f)?;
                ev.call_n(f, args, *sp)
            }
            _ => unreachable!("handled above"),
        });
        let mut st = t.0.borrow_mut();
        match r {
            Ok(v) => {
                *st = ThunkState::Done(v.clone());
                Ok(v)
            }
            Err(e) => {
                *st = state;
                Err(e)
            }
        }
    }

    /// A thunk for `ir` in `env`, skipping the allocation when the value is at hand.
    pub(crate) fn thunk(&self, ir: &IrRef, env: &Rc<Env>) -> Thunk {
        match &ir.kind {
            IrKind::Const(v) => Thunk::ready(v.clone()),
            IrKind::Local { depth, idx } => env.ancestor(*depth).slots.borrow()[*idx as usize].clone(),
            IrKind::Lambda(l) => Thunk::ready(Value::Lambda(Rc::new(Closure { lambda: l.clone(), env: env.clone() }))),
            _ => Thunk::pending(ir.clone(), env.clone()),
        }
    }

    /// Like [`Self::thunk`], for a frame still being filled: its own slots are not readable yet.
    fn frame_thunk(&self, ir: &IrRef, env: &Rc<Env>) -> Thunk {
        match &ir.kind {
            IrKind::Local { depth: 0, .. } => Thunk::pending(ir.clone(), env.clone()),
            _ => self.thunk(ir, env),
        }
    }

    /// Evaluate completely: every list element and attribute, recursively.
    pub fn deep_force(&mut self, v: &Value) -> EResult<()> {
        let mut seen = std::collections::HashSet::new();
        self.deep_force_inner(v, &mut seen)
    }

    fn deep_force_inner(&mut self, v: &Value, seen: &mut std::collections::HashSet<usize>) -> EResult<()> {
        match v {
            Value::List(items) => {
                if !seen.insert(Rc::as_ptr(items) as *const u8 as usize) {
                    return Ok(());
                }
                for t in items.iter() {
                    let x = self.force(t)?;
                    self.grow(None, |ev| ev.deep_force_inner(&x, seen))?;
                }
            }
            Value::Attrs(a) => {
                if !seen.insert(Rc::as_ptr(a) as *const u8 as usize) {
                    return Ok(());
                }
                for attr in a.iter() {
                    let x = self.force(&attr.value).map_err(crate::error::in_attr(attr))?;
                    self.grow(attr.span, |ev| ev.deep_force_inner(&x, seen)).map_err(crate::error::in_attr(attr))?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    // --- evaluation -----------------------------------------------------------------------

    pub(crate) fn eval(&mut self, ir: &IrRef, env: &Rc<Env>) -> EResult<Value> {
        self.grow(Some(ir.span), |ev| ev.eval_inner(ir, env))
    }

    /// Run `f`, first moving to a fresh stack segment if little stack is left; once the segments
    /// in use reach [`MAX_STACK`], fail (at `span`, when known) instead.
    fn grow<R>(&mut self, span: Option<Span>, f: impl FnOnce(&mut Self) -> EResult<R>) -> EResult<R> {
        if stacker::remaining_stack().is_some_and(|left| left >= RED_ZONE) {
            return f(self);
        }
        // Calls stop at the budget (see `call`), so that a runaway recursion is reported at a call
        // site; other nesting (a long chain of lazy values) gets a little more before it stops.
        if (self.segments + 1) * SEGMENT > MAX_STACK + 2 * SEGMENT {
            return Err(stack_overflow(
                format!("stack overflow: evaluation needs more than {} MiB of stack", MAX_STACK >> 20),
                span,
            ));
        }
        self.segments += 1;
        let r = stacker::grow(SEGMENT, || f(self));
        self.segments -= 1;
        r
    }

    fn eval_inner(&mut self, ir: &IrRef, env: &Rc<Env>) -> EResult<Value> {
        let span = ir.span;
        match &ir.kind {
            IrKind::Const(v) => Ok(v.clone()),
            IrKind::Local { depth, idx } => {
                let t = env.ancestor(*depth).slots.borrow()[*idx as usize].clone();
                self.force(&t)
            }
            IrKind::WithVar { name, withs } => {
                for d in withs.iter() {
                    let w = env.ancestor(*d).with.clone().expect("with frame");
                    let set = self.force(&w)?;
                    let Value::Attrs(a) = set else {
                        return Err(type_err("a set after `with`", &set, span));
                    };
                    if let Some(attr) = a.get(name) {
                        let t = attr.value.clone();
                        return self.force(&t);
                    }
                }
                Err(err(ErrorKind::UndefinedVariable, format!("undefined variable `{name}`"), span)
                    .with_help("no enclosing `with` set has this attribute"))
            }
            IrKind::Interp(parts) => {
                let mut s = String::new();
                for p in parts {
                    match p {
                        IrPart::Lit(l) => s.push_str(l),
                        IrPart::Interp(e) => {
                            let v = self.eval(e, env)?;
                            self.coerce_to_string(&v, &mut s, false, e.span)?;
                        }
                    }
                }
                Ok(Value::String(Rc::from(s)))
            }
            IrKind::Path { anchor, base, parts } => {
                let mut s = String::new();
                for p in parts {
                    match p {
                        IrPart::Lit(l) => s.push_str(l),
                        IrPart::Interp(e) => {
                            let v = self.eval(e, env)?;
                            self.coerce_to_string(&v, &mut s, false, e.span)?;
                        }
                    }
                }
                let p = match anchor {
                    PathAnchor::Absolute => resolve_path(Path::new("/"), &s),
                    _ => resolve_path(base, &s),
                };
                Ok(Value::path(&p))
            }
            IrKind::SearchPath(name) => self.find_search_path(name, span),
            IrKind::List(items) => Ok(Value::List(Rc::new(items.iter().map(|i| self.thunk(i, env)).collect()))),
            IrKind::Attrs(a) => self.build_attrs(a, env),
            IrKind::Let { slots, body } => {
                let frame = Env::new(Some(env.clone()), Vec::new());
                let thunks: Vec<Thunk> = slots.iter().map(|s| self.frame_thunk(s, &frame)).collect();
                *frame.slots.borrow_mut() = thunks;
                self.eval(body, &frame)
            }
            IrKind::Select { expr, path, default } => {
                let mut v = self.eval(expr, env)?;
                for key in path {
                    let (name, ksp) = self.key_name(key, env)?;
                    let found = match &v {
                        Value::Attrs(a) => a.get(&name).map(|attr| attr.value.clone()),
                        _ => None,
                    };
                    match found {
                        Some(t) => v = self.force(&t)?,
                        None => {
                            if let Some(d) = default {
                                return self.eval(d, env);
                            }
                            return Err(match &v {
                                Value::Attrs(a) => missing_attr(&name, a, ksp),
                                other => err(
                                    ErrorKind::Type,
                                    format!("cannot select attribute `{name}` from {}", other.describe()),
                                    ksp,
                                )
                                .with_help("only sets have attributes"),
                            });
                        }
                    }
                }
                Ok(v)
            }
            IrKind::HasAttr { expr, path } => {
                let mut v = self.eval(expr, env)?;
                for key in path {
                    let (name, _) = self.key_name(key, env)?;
                    let Value::Attrs(a) = &v else { return Ok(Value::Bool(false)) };
                    let Some(attr) = a.get(&name) else { return Ok(Value::Bool(false)) };
                    let t = attr.value.clone();
                    v = self.force(&t)?;
                }
                Ok(Value::Bool(true))
            }
            IrKind::Apply { func, args } => {
                let mut f = self.eval(func, env)?;
                for a in args {
                    let t = self.thunk(a, env);
                    f = self.call(f, t, span)?;
                }
                Ok(f)
            }
            IrKind::Lambda(l) => Ok(Value::Lambda(Rc::new(Closure { lambda: l.clone(), env: env.clone() }))),
            IrKind::If { cond, then, else_ } => {
                let c = self.eval(cond, env)?;
                match c {
                    Value::Bool(true) => self.eval(then, env),
                    Value::Bool(false) => self.eval(else_, env),
                    other => Err(type_err("a Boolean in the condition of `if`", &other, cond.span)),
                }
            }
            IrKind::Assert { cond, body } => match self.eval(cond, env)? {
                Value::Bool(true) => self.eval(body, env),
                Value::Bool(false) => Err(err(ErrorKind::Assert, "assertion failed", cond.span)),
                other => Err(type_err("a Boolean in the assertion", &other, cond.span)),
            },
            IrKind::With { env: e, body } => {
                let w = self.thunk(e, env);
                let frame = Rc::new(Env { slots: Default::default(), parent: Some(env.clone()), with: Some(w) });
                self.eval(body, &frame)
            }
            IrKind::Not(e) => match self.eval(e, env)? {
                Value::Bool(b) => Ok(Value::Bool(!b)),
                other => Err(type_err("a Boolean after `!`", &other, e.span)),
            },
            // Nix negates as `0 - x` (so `-0.0` is `0.0`).
            IrKind::Neg(e) => match self.eval(e, env)? {
                Value::Int(i) => i.checked_neg().map(Value::Int).ok_or_else(|| overflow("-", span)),
                Value::Float(f) => Ok(Value::Float(0.0 - f)),
                other => Err(type_err("a number after unary `-`", &other, e.span)),
            },
            IrKind::Binary { op, lhs, rhs } => self.binary(*op, lhs, rhs, env, span),
        }
    }

    fn key_name(&mut self, key: &IrKey, env: &Rc<Env>) -> EResult<(Name, Span)> {
        match key {
            IrKey::Static(n, sp) => Ok((n.clone(), *sp)),
            IrKey::Dynamic(e) => match self.eval(e, env)? {
                Value::String(s) => Ok((s, e.span)),
                other => Err(type_err("a string as attribute name", &other, e.span)),
            },
        }
    }

    fn build_attrs(&mut self, a: &Rc<AttrsIr>, env: &Rc<Env>) -> EResult<Value> {
        let mut entries: Vec<Attr> = Vec::with_capacity(a.entries.len() + a.dynamic.len());
        let scope = if a.rec {
            let frame = Env::new(Some(env.clone()), Vec::new());
            let mut slots: Vec<Option<Thunk>> = vec![None; a.entries.len()];
            for e in &a.entries {
                let t = self.frame_thunk(&e.value, &frame);
                slots[e.slot as usize] = Some(t.clone());
                entries.push(Attr { name: e.name.clone(), value: t, span: Some(e.span) });
            }
            *frame.slots.borrow_mut() = slots.into_iter().map(|s| s.expect("every slot filled")).collect();
            frame
        } else {
            for e in &a.entries {
                entries.push(Attr { name: e.name.clone(), value: self.thunk(&e.value, env), span: Some(e.span) });
            }
            env.clone()
        };
        let mut attrs = Attrs::from_sorted(entries);
        for (k, v, sp) in &a.dynamic {
            let name = match self.eval(k, &scope)? {
                Value::Null => continue,
                Value::String(s) => s,
                other => return Err(type_err("a string as attribute name", &other, k.span)),
            };
            if let Some(prev) = attrs.get(&name) {
                let mut e = EvalError::new(
                    ErrorKind::DuplicateAttr,
                    format!("attribute `{}` is already defined", attr_name(&name)),
                )
                .at(*sp)
                .help("each attribute may be defined once");
                if let Some(ps) = prev.span {
                    e = e.related(ps, "first defined here");
                }
                return Err(e.boxed());
            }
            attrs.insert(Attr { name, value: self.thunk(v, &scope), span: Some(*sp) });
        }
        Ok(Value::Attrs(Rc::new(attrs)))
    }

    // --- calls ----------------------------------------------------------------------------

    pub(crate) fn call_n(&mut self, mut f: Value, args: &[Thunk], span: Span) -> EResult<Value> {
        for a in args {
            f = self.call(f, a.clone(), span)?;
        }
        Ok(f)
    }

    pub fn call(&mut self, f: Value, arg: Thunk, span: Span) -> EResult<Value> {
        if self.depth >= MAX_CALL_DEPTH {
            let msg = format!("stack overflow: more than {MAX_CALL_DEPTH} nested function calls");
            return Err(stack_overflow(msg, Some(span)));
        }
        if self.segments * SEGMENT >= MAX_STACK {
            let msg = format!("stack overflow: evaluation needs more than {} MiB of stack", MAX_STACK >> 20);
            return Err(stack_overflow(msg, Some(span)));
        }
        self.depth += 1;
        let r = self.grow(Some(span), |ev| ev.call_inner(f, arg, span));
        self.depth -= 1;
        r
    }

    fn call_inner(&mut self, f: Value, arg: Thunk, span: Span) -> EResult<Value> {
        match f {
            Value::Lambda(c) => {
                let lam = &c.lambda;
                // Only needed for messages: built on error paths alone.
                let fname =
                    || lam.name.as_deref().map_or("anonymous function".to_string(), |n| format!("function `{n}`"));
                let frame = match &lam.param {
                    LambdaParam::Ident => Env::new(Some(c.env.clone()), vec![arg]),
                    LambdaParam::Formals { formals, ellipsis, at } => {
                        let v = self.force(&arg)?;
                        let Value::Attrs(a) = v else {
                            return Err(err(
                                ErrorKind::Type,
                                format!(
                                    "{} expects a set as its argument but was called with {}",
                                    fname(),
                                    v.describe()
                                ),
                                span,
                            )
                            .with_help(format!("call it with a set, for example `{}`", example_args(formals))));
                        };
                        if !ellipsis && let Some(bad) = a.iter().find(|x| !formals.iter().any(|f| f.name == x.name)) {
                            let names: Vec<&str> = formals.iter().map(|f| &*f.name).collect();
                            let help = match closest(&bad.name, names.iter().copied()) {
                                Some(c) => format!("did you mean `{c}`? it takes: {}", names.join(", ")),
                                None if names.is_empty() => "it takes no arguments".into(),
                                None => format!("it takes: {}", names.join(", ")),
                            };
                            let mut e = EvalError::new(
                                ErrorKind::Argument,
                                format!("{} called with unexpected argument `{}`", fname(), bad.name),
                            )
                            .at(bad.span.unwrap_or(span))
                            .help(help)
                            .related(lam.span, "function defined here");
                            if bad.span.is_some() {
                                e.trace.push(TraceFrame { span, what: format!("while calling {}", fname()) });
                            }
                            return Err(e.boxed());
                        }
                        let frame = Env::new(Some(c.env.clone()), Vec::new());
                        let mut slots = Vec::with_capacity(formals.len() + usize::from(*at));
                        for f in formals {
                            match (a.get(&f.name), &f.default) {
                                (Some(x), _) => slots.push(x.value.clone()),
                                (None, Some(d)) => slots.push(self.frame_thunk(d, &frame)),
                                (None, None) => {
                                    return Err(EvalError::new(
                                        ErrorKind::Argument,
                                        format!("{} called without required argument `{}`", fname(), f.name),
                                    )
                                    .at(span)
                                    .related(f.span, "declared here")
                                    .help(format!(
                                        "pass `{} = ...;` or give it a default with `{} ? value`",
                                        f.name, f.name
                                    ))
                                    .boxed());
                                }
                            }
                        }
                        if *at {
                            slots.push(arg);
                        }
                        *frame.slots.borrow_mut() = slots;
                        frame
                    }
                };
                self.eval(&lam.body, &frame).map_err(|mut e| {
                    e.trace.push(TraceFrame { span, what: format!("while calling {}", fname()) });
                    e
                })
            }
            Value::PrimOp(p) => {
                let mut args = Vec::with_capacity(p.args.len() + 1);
                args.extend(p.args.iter().cloned());
                args.push(arg);
                if args.len() == p.op.arity {
                    (p.op.f)(self, &args, span).map_err(|e| e.at_default(span))
                } else {
                    Ok(Value::PrimOp(Rc::new(PrimOpApp { op: p.op, args })))
                }
            }
            Value::Attrs(a) if a.get("__functor").is_some() => {
                let functor = a.get("__functor").map(|x| x.value.clone()).expect("checked");
                let fv = self.force(&functor)?;
                let g = self.call(fv, Thunk::ready(Value::Attrs(a.clone())), span)?;
                self.call(g, arg, span)
            }
            other => Err(err(
                ErrorKind::Type,
                format!("attempt to call {}, which is not a function", other.describe()),
                span,
            )
            .with_help("only functions can be applied to arguments; check for a missing operator or `;`")),
        }
    }

    // --- operators ------------------------------------------------------------------------

    fn binary(&mut self, op: BinOp, lhs: &IrRef, rhs: &IrRef, env: &Rc<Env>, span: Span) -> EResult<Value> {
        let bool_of = |v: Value, side: &IrRef| match v {
            Value::Bool(b) => Ok(b),
            other => Err(type_err(&format!("a Boolean as operand of `{}`", op.symbol()), &other, side.span)),
        };
        match op {
            BinOp::And => {
                if !bool_of(self.eval(lhs, env)?, lhs)? {
                    return Ok(Value::Bool(false));
                }
                Ok(Value::Bool(bool_of(self.eval(rhs, env)?, rhs)?))
            }
            BinOp::Or => {
                if bool_of(self.eval(lhs, env)?, lhs)? {
                    return Ok(Value::Bool(true));
                }
                Ok(Value::Bool(bool_of(self.eval(rhs, env)?, rhs)?))
            }
            BinOp::Impl => {
                if !bool_of(self.eval(lhs, env)?, lhs)? {
                    return Ok(Value::Bool(true));
                }
                Ok(Value::Bool(bool_of(self.eval(rhs, env)?, rhs)?))
            }
            _ => {
                let a = self.eval(lhs, env)?;
                let b = self.eval(rhs, env)?;
                self.binary_values(op, a, b, span, lhs.span, rhs.span)
            }
        }
    }

    pub(crate) fn binary_values(
        &mut self,
        op: BinOp,
        a: Value,
        b: Value,
        span: Span,
        ls: Span,
        rs: Span,
    ) -> EResult<Value> {
        use Value::*;
        match op {
            BinOp::Eq => Ok(Bool(self.equal(&a, &b)?)),
            BinOp::Ne => Ok(Bool(!self.equal(&a, &b)?)),
            BinOp::Lt => Ok(Bool(self.less_than(&a, &b, span)?)),
            BinOp::Gt => Ok(Bool(self.less_than(&b, &a, span)?)),
            BinOp::Le => Ok(Bool(!self.less_than(&b, &a, span)?)),
            BinOp::Ge => Ok(Bool(!self.less_than(&a, &b, span)?)),
            BinOp::Update => match (a, b) {
                (Attrs(x), Attrs(y)) => {
                    if y.is_empty() {
                        return Ok(Attrs(x));
                    }
                    if x.is_empty() {
                        return Ok(Attrs(y));
                    }
                    Ok(Attrs(Rc::new(x.update(&y))))
                }
                (Attrs(_), o) => Err(type_err("a set on the right of `//`", &o, rs)),
                (o, _) => Err(type_err("a set on the left of `//`", &o, ls)),
            },
            BinOp::Concat => match (a, b) {
                (List(x), List(y)) => {
                    let mut v = Vec::with_capacity(x.len() + y.len());
                    v.extend(x.iter().cloned());
                    v.extend(y.iter().cloned());
                    Ok(List(Rc::new(v)))
                }
                (List(_), o) => Err(type_err("a list on the right of `++`", &o, rs)),
                (o, _) => Err(type_err("a list on the left of `++`", &o, ls)),
            },
            BinOp::Add => match (a, b) {
                (Int(x), Int(y)) => x.checked_add(y).map(Int).ok_or_else(|| overflow("+", span)),
                (Float(x), Float(y)) => Ok(Float(x + y)),
                (Int(x), Float(y)) => Ok(Float(x as f64 + y)),
                (Float(x), Int(y)) => Ok(Float(x + y as f64)),
                (String(x), String(y)) => Ok(String(Rc::from(format!("{x}{y}")))),
                (String(x), Path(y)) => Ok(String(Rc::from(format!("{x}{y}")))),
                (Path(x), String(y)) | (Path(x), Path(y)) => {
                    let joined = format!("{x}{y}");
                    Ok(Value::path(&resolve_path(std::path::Path::new("/"), &joined)))
                }
                (x, y) => Err(err(ErrorKind::Type, format!("cannot add {} to {}", y.describe(), x.describe()), span)
                    .with_help(add_help(&x, &y))),
            },
            BinOp::Sub | BinOp::Mul | BinOp::Div => {
                let sym = op.symbol();
                match (a, b) {
                    (Int(x), Int(y)) => match op {
                        BinOp::Sub => x.checked_sub(y).map(Int).ok_or_else(|| overflow(sym, span)),
                        BinOp::Mul => x.checked_mul(y).map(Int).ok_or_else(|| overflow(sym, span)),
                        _ => {
                            if y == 0 {
                                return Err(err(ErrorKind::DivisionByZero, "division by zero", span));
                            }
                            x.checked_div(y).map(Int).ok_or_else(|| overflow(sym, span))
                        }
                    },
                    (x @ (Int(_) | Float(_)), y @ (Int(_) | Float(_))) => {
                        let (x, y) = (num(&x), num(&y));
                        match op {
                            BinOp::Sub => Ok(Float(x - y)),
                            BinOp::Mul => Ok(Float(x * y)),
                            _ => {
                                if y == 0.0 {
                                    return Err(err(ErrorKind::DivisionByZero, "division by zero", span));
                                }
                                Ok(Float(x / y))
                            }
                        }
                    }
                    (Int(_) | Float(_), o) => Err(type_err(&format!("a number on the right of `{sym}`"), &o, rs)),
                    (o, _) => Err(type_err(&format!("a number on the left of `{sym}`"), &o, ls)),
                }
            }
            BinOp::And | BinOp::Or | BinOp::Impl => unreachable!("short-circuit operators are handled in binary"),
        }
    }

    pub fn equal(&mut self, a: &Value, b: &Value) -> EResult<bool> {
        use Value::*;
        Ok(match (a, b) {
            (Null, Null) => true,
            (Bool(x), Bool(y)) => x == y,
            (Int(x), Int(y)) => x == y,
            (Float(x), Float(y)) => x == y,
            (Int(x), Float(y)) | (Float(y), Int(x)) => (*x as f64) == *y,
            (String(x), String(y)) => x == y,
            (Path(x), Path(y)) => x == y,
            (List(x), List(y)) => {
                if Rc::ptr_eq(x, y) {
                    return Ok(true);
                }
                if x.len() != y.len() {
                    return Ok(false);
                }
                for (p, q) in x.iter().zip(y.iter()) {
                    if p.ptr_eq(q) {
                        continue;
                    }
                    let (p, q) = (self.force(p)?, self.force(q)?);
                    if !self.equal(&p, &q)? {
                        return Ok(false);
                    }
                }
                true
            }
            (Attrs(x), Attrs(y)) => {
                if Rc::ptr_eq(x, y) {
                    return Ok(true);
                }
                if x.len() != y.len() {
                    return Ok(false);
                }
                for (p, q) in x.iter().zip(y.iter()) {
                    if p.name != q.name {
                        return Ok(false);
                    }
                }
                for (p, q) in x.iter().zip(y.iter()) {
                    if p.value.ptr_eq(&q.value) {
                        continue;
                    }
                    let (pv, qv) = (self.force(&p.value)?, self.force(&q.value)?);
                    if !self.equal(&pv, &qv)? {
                        return Ok(false);
                    }
                }
                true
            }
            _ => false,
        })
    }

    pub fn less_than(&mut self, a: &Value, b: &Value, span: Span) -> EResult<bool> {
        use Value::*;
        match (a, b) {
            (Int(x), Int(y)) => Ok(x < y),
            (Float(x), Float(y)) => Ok(x < y),
            (Int(x), Float(y)) => Ok((*x as f64) < *y),
            (Float(x), Int(y)) => Ok(*x < (*y as f64)),
            (String(x), String(y)) => Ok(x.as_bytes() < y.as_bytes()),
            (Path(x), Path(y)) => Ok(x.as_bytes() < y.as_bytes()),
            (List(x), List(y)) => {
                for (p, q) in x.iter().zip(y.iter()) {
                    let (p, q) = (self.force(p)?, self.force(q)?);
                    if self.less_than(&p, &q, span)? {
                        return Ok(true);
                    }
                    if !self.equal(&p, &q)? {
                        return Ok(false);
                    }
                }
                Ok(x.len() < y.len())
            }
            _ => Err(err(ErrorKind::Type, format!("cannot compare {} with {}", a.describe(), b.describe()), span)
                .with_help("`<`, `<=`, `>` and `>=` compare two numbers, two strings, two paths or two lists")),
        }
    }

    /// Append the string form of `v` (`coerce_more`: also numbers, Booleans, null and lists,
    /// as `toString` does).
    pub fn coerce_to_string(&mut self, v: &Value, out: &mut String, coerce_more: bool, span: Span) -> EResult<()> {
        match v {
            Value::String(s) => out.push_str(s),
            Value::Path(p) => out.push_str(p),
            Value::Attrs(a) => {
                if let Some(f) = a.get("__toString") {
                    let f = self.force(&f.value.clone())?;
                    let r = self.call(f, Thunk::ready(v.clone()), span)?;
                    return self.coerce_to_string(&r, out, coerce_more, span);
                }
                if let Some(p) = a.get("outPath") {
                    let p = self.force(&p.value.clone())?;
                    return self.coerce_to_string(&p, out, coerce_more, span);
                }
                return Err(err(ErrorKind::Type, "cannot coerce a set to a string", span)
                    .with_help("give the set an `outPath` or `__toString` attribute, or select a string from it"));
            }
            Value::Int(i) if coerce_more => out.push_str(&i.to_string()),
            Value::Float(f) if coerce_more => out.push_str(&format!("{f:.6}")),
            Value::Bool(b) if coerce_more => out.push_str(if *b { "1" } else { "" }),
            Value::Null if coerce_more => {}
            Value::List(items) if coerce_more => {
                for (i, t) in items.iter().enumerate() {
                    let x = self.force(t)?;
                    self.coerce_to_string(&x, out, true, span)?;
                    let is_empty_list = matches!(&x, Value::List(l) if l.is_empty());
                    if i + 1 < items.len() && !is_empty_list {
                        out.push(' ');
                    }
                }
            }
            other => {
                return Err(err(ErrorKind::Type, format!("cannot coerce {} to a string", other.describe()), span)
                    .with_help(match other {
                        Value::Int(_) | Value::Float(_) | Value::Bool(_) | Value::Null | Value::List(_) => {
                            "use `toString` to turn it into a string"
                        }
                        _ => "only strings, paths and sets with `__toString` or `outPath` become strings",
                    }));
            }
        }
        Ok(())
    }
}

/// `path` relative to `base` (both absolute), with `..` where it lies outside `base`.
fn relative_to(path: &Path, base: &Path) -> String {
    let p: Vec<_> = path.components().collect();
    let b: Vec<_> = base.components().collect();
    let common = p.iter().zip(b.iter()).take_while(|(x, y)| x == y).count();
    if common == 0 {
        return path.display().to_string();
    }
    let mut out = PathBuf::new();
    for _ in common..b.len() {
        out.push("..");
    }
    for c in &p[common..] {
        out.push(c);
    }
    out.display().to_string()
}

fn num(v: &Value) -> f64 {
    match v {
        Value::Int(i) => *i as f64,
        Value::Float(f) => *f,
        _ => 0.0,
    }
}

fn stack_overflow(message: String, span: Option<Span>) -> Box<EvalError> {
    let mut e = EvalError::new(ErrorKind::StackOverflow, message)
        .help("this is likely an infinite recursion; check the function's base case");
    if let Some(sp) = span {
        e = e.at(sp);
    }
    e.boxed()
}

fn overflow(op: &str, span: Span) -> Box<EvalError> {
    err(ErrorKind::Overflow, format!("integer overflow in `{op}`"), span).with_help(format!(
        "integers are 64-bit, from {} to {}",
        i64::MIN,
        i64::MAX
    ))
}

fn add_help(x: &Value, y: &Value) -> String {
    match (x, y) {
        (Value::String(_), Value::Int(_) | Value::Float(_)) | (Value::Int(_) | Value::Float(_), Value::String(_)) => {
            "convert the number first: `\"text\" + toString n`".into()
        }
        _ => "`+` adds numbers, or joins strings and paths".into(),
    }
}

fn example_args(formals: &[crate::compile::FormalIr]) -> String {
    let required: Vec<String> =
        formals.iter().filter(|f| f.default.is_none()).map(|f| format!("{} = ...;", f.name)).collect();
    if required.is_empty() { "{ }".into() } else { format!("{{ {} }}", required.join(" ")) }
}

/// "attribute `prots` missing", with the closest existing name or the list of names.
pub(crate) fn missing_attr(name: &str, a: &Attrs, span: Span) -> Box<EvalError> {
    let e = EvalError::new(ErrorKind::MissingAttr, format!("attribute `{}` missing", attr_name(name))).at(span);
    let e = match closest(name, a.names()) {
        Some(c) => e.help(format!("did you mean `{}`?", attr_name(c))),
        None if a.is_empty() => e.help("the set is empty"),
        None => {
            let names: Vec<&str> = a.names().take(12).collect();
            let more = if a.len() > 12 { format!(", … ({} in all)", a.len()) } else { String::new() };
            e.help(format!("the set has: {}{more}", names.join(", ")))
        }
    };
    e.boxed()
}

pub(crate) fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

/// A syntax error as an evaluator error in file `id` (for callers that parse on their own).
pub fn syntax_error_for(e: &parser::PErr, id: FileId, text: &str) -> EvalError {
    *syntax_error(e, id, text)
}

/// A syntax error as an evaluator error in file `id`.
pub(crate) fn syntax_error(e: &parser::PErr, id: FileId, text: &str) -> Box<EvalError> {
    let rest = text.get(e.offset..).unwrap_or("");
    let len = match rest.chars().next() {
        None => 0,
        Some(c) if c.is_whitespace() => 0,
        Some(_) => {
            let d = parser::describe_next(rest);
            d.trim_matches('`').len().min(rest.len()).max(1)
        }
    };
    let mut ev = EvalError::new(ErrorKind::Syntax, e.message.clone().unwrap_or_else(|| "syntax error".into()))
        .at(Span::new(id, e.offset, e.offset + len));
    let unexpected = ev.message.starts_with("unexpected") || ev.message.contains(", found");
    ev.label = Some(if len > 0 && unexpected { "unexpected here".into() } else { "here".into() });
    if let Some(h) = &e.help {
        ev = ev.help(h.clone());
    }
    if let Some((s, t, text)) = &e.related {
        ev = ev.related(Span::new(id, *s, *t), text.clone());
    }
    ev.boxed()
}
