//! Lowering: the syntax tree to an IR with variables resolved to frame slots, nested attribute
//! paths merged, and the static errors (undefined variable, duplicate attribute) reported.

use crate::ast::*;
use crate::error::{ErrorKind, EvalError};
use crate::print::attr_name;
use crate::span::Span;
use crate::value::Value;
use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

pub type IrRef = Rc<Ir>;

#[derive(Debug)]
pub struct Ir {
    pub kind: IrKind,
    pub span: Span,
}

#[derive(Debug)]
pub enum IrKind {
    Const(Value),
    /// A variable bound `depth` environments up, in slot `idx`.
    Local {
        depth: u32,
        idx: u32,
    },
    /// A variable only a `with` can supply: the depths of the enclosing `with`s, innermost first.
    WithVar {
        name: Name,
        withs: Box<[u32]>,
    },
    Interp(Vec<IrPart>),
    Path {
        anchor: PathAnchor,
        base: Rc<Path>,
        parts: Vec<IrPart>,
    },
    SearchPath(Name),
    List(Vec<IrRef>),
    Attrs(Rc<AttrsIr>),
    Let {
        slots: Vec<IrRef>,
        body: IrRef,
    },
    Select {
        expr: IrRef,
        path: Vec<IrKey>,
        default: Option<IrRef>,
    },
    HasAttr {
        expr: IrRef,
        path: Vec<IrKey>,
    },
    Apply {
        func: IrRef,
        args: Vec<IrRef>,
    },
    Lambda(Rc<LambdaIr>),
    If {
        cond: IrRef,
        then: IrRef,
        else_: IrRef,
    },
    Assert {
        cond: IrRef,
        body: IrRef,
    },
    With {
        env: IrRef,
        body: IrRef,
    },
    Not(IrRef),
    Neg(IrRef),
    Binary {
        op: BinOp,
        lhs: IrRef,
        rhs: IrRef,
    },
}

#[derive(Debug)]
pub enum IrPart {
    Lit(Rc<str>),
    Interp(IrRef),
}

#[derive(Debug)]
pub enum IrKey {
    Static(Name, Span),
    Dynamic(IrRef),
}

#[derive(Debug)]
pub struct AttrsIr {
    /// `rec`: the static entries are also the slots of a new frame their values see.
    pub rec: bool,
    /// Sorted by name.
    pub entries: Vec<AttrEntry>,
    pub dynamic: Vec<(IrRef, IrRef, Span)>,
}

#[derive(Debug)]
pub struct AttrEntry {
    pub name: Name,
    pub value: IrRef,
    pub span: Span,
    /// For `rec` sets: the frame slot (declaration order).
    pub slot: u32,
}

#[derive(Debug)]
pub struct LambdaIr {
    pub name: Option<Name>,
    pub span: Span,
    pub param: LambdaParam,
    pub body: IrRef,
}

#[derive(Debug)]
pub enum LambdaParam {
    Ident,
    Formals { formals: Vec<FormalIr>, ellipsis: bool, at: bool },
}

#[derive(Debug)]
pub struct FormalIr {
    pub name: Name,
    pub span: Span,
    pub default: Option<IrRef>,
}

impl LambdaIr {
    /// Where formal argument `name` is declared.
    pub fn param_span(&self, name: &str) -> Option<Span> {
        match &self.param {
            LambdaParam::Formals { formals, .. } => formals.iter().find(|f| &*f.name == name).map(|f| f.span),
            LambdaParam::Ident => None,
        }
    }

    pub fn slots(&self) -> usize {
        match &self.param {
            LambdaParam::Ident => 1,
            LambdaParam::Formals { formals, at, .. } => formals.len() + usize::from(*at),
        }
    }
}

enum Scope {
    Frame(HashMap<Name, u32>),
    With,
}

/// Resolves names while lowering one file.
pub struct Compiler<'g> {
    scopes: Vec<Scope>,
    globals: &'g HashMap<Name, u32>,
    dir: Rc<Path>,
}

/// An attribute set under construction: nested paths merged before lowering.
struct SetNode<'e> {
    rec: bool,
    span: Span,
    entries: Vec<(Name, Span, Node<'e>)>,
    /// Position of each name in `entries` (sets with thousands of attributes are common).
    index: HashMap<Name, usize>,
    dynamic: Vec<(&'e Expr, Node<'e>, Span)>,
}

impl<'e> SetNode<'e> {
    fn new(rec: bool, span: Span) -> SetNode<'e> {
        SetNode { rec, span, entries: Vec::new(), index: HashMap::new(), dynamic: Vec::new() }
    }

    fn find(&self, name: &Name) -> Option<usize> {
        self.index.get(name).copied()
    }

    fn push(&mut self, name: Name, span: Span, node: Node<'e>) {
        self.index.insert(name.clone(), self.entries.len());
        self.entries.push((name, span, node));
    }

    /// `inherit` of `names` (optionally from `from`), refusing duplicates.
    fn inherit(&mut self, from: &'e Option<Expr>, names: &[(Name, Span)]) -> CResult<()> {
        for (n, sp) in names {
            if let Some(i) = self.find(n) {
                return Err(duplicate(n, *sp, self.entries[i].1));
            }
            self.push(n.clone(), *sp, Node::Inherit { from: from.as_ref(), name: n.clone(), span: *sp });
        }
        Ok(())
    }
}

enum Node<'e> {
    Value(&'e Expr),
    Inherit { from: Option<&'e Expr>, name: Name, span: Span },
    Set(SetNode<'e>),
}

type CResult<T> = Result<T, Box<EvalError>>;

fn static_error(kind: ErrorKind, span: Span, msg: String) -> Box<EvalError> {
    Box::new(EvalError::new(kind, msg).at(span))
}

impl<'g> Compiler<'g> {
    pub fn new(globals: &'g HashMap<Name, u32>, dir: Rc<Path>) -> Self {
        Compiler { scopes: Vec::new(), globals, dir }
    }

    pub fn compile(&mut self, e: &Expr) -> CResult<IrRef> {
        stacker::maybe_grow(64 * 1024, 1024 * 1024, || self.lower(e, None))
    }

    fn mk(kind: IrKind, span: Span) -> IrRef {
        Rc::new(Ir { kind, span })
    }

    fn resolve(&self, name: &Name, span: Span, skip_innermost: bool) -> CResult<IrKind> {
        let mut withs = Vec::new();
        let skip = usize::from(skip_innermost);
        for (depth, scope) in self.scopes.iter().rev().enumerate().skip(skip) {
            match scope {
                Scope::Frame(names) => {
                    if let Some(idx) = names.get(name) {
                        return Ok(IrKind::Local { depth: depth as u32, idx: *idx });
                    }
                }
                Scope::With => withs.push(depth as u32),
            }
        }
        if let Some(idx) = self.globals.get(name) {
            return Ok(IrKind::Local { depth: self.scopes.len() as u32, idx: *idx });
        }
        if !withs.is_empty() {
            return Ok(IrKind::WithVar { name: name.clone(), withs: withs.into() });
        }
        let mut candidates: Vec<&str> = self
            .scopes
            .iter()
            .flat_map(|s| match s {
                Scope::Frame(n) => n.keys().map(|k| &**k).collect::<Vec<_>>(),
                Scope::With => vec![],
            })
            .collect();
        candidates.extend(self.globals.keys().map(|k| &**k).filter(|k| !k.starts_with("__")));
        let mut err = EvalError::new(ErrorKind::UndefinedVariable, format!("undefined variable `{name}`")).at(span);
        if &**name == "or" {
            err = err.help("`or` is not Boolean or: write `a || b`; `a.b or c` is `c` when `a` has no `b`");
        } else if let Some(close) = crate::error::closest(name, candidates.iter().copied()) {
            err = err.help(format!("did you mean `{close}`?"));
        } else {
            err = err.help("bind it with `let`, take it as a function argument, or bring it into scope with `with`");
        }
        Err(Box::new(err))
    }

    fn lower(&mut self, e: &Expr, name: Option<&Name>) -> CResult<IrRef> {
        stacker::maybe_grow(64 * 1024, 1024 * 1024, || self.lower_inner(e, name))
    }

    fn lower_inner(&mut self, e: &Expr, name: Option<&Name>) -> CResult<IrRef> {
        let span = e.span;
        let kind = match &e.kind {
            ExprKind::Int(n) => IrKind::Const(Value::Int(*n)),
            ExprKind::Float(f) => IrKind::Const(Value::Float(*f)),
            ExprKind::Str(parts) => match parts.as_slice() {
                [] => IrKind::Const(Value::string("")),
                [StrPart::Lit(s)] => IrKind::Const(Value::string(s)),
                _ => IrKind::Interp(self.lower_parts(parts)?),
            },
            ExprKind::Path { anchor, parts } => self.lower_path(anchor, parts, span)?,
            ExprKind::Var(n) => self.resolve(n, span, false)?,
            ExprKind::List(items) => IrKind::List(items.iter().map(|x| self.lower(x, None)).collect::<CResult<_>>()?),
            ExprKind::Attrs { rec, binds } => {
                let node = self.build_set(*rec, binds, span, false)?;
                IrKind::Attrs(self.lower_set(node)?)
            }
            ExprKind::Let { binds, body } => {
                let node = self.build_set(true, binds, span, true)?;
                let names: HashMap<Name, u32> =
                    node.entries.iter().enumerate().map(|(i, (n, _, _))| (n.clone(), i as u32)).collect();
                self.scopes.push(Scope::Frame(names));
                let slots =
                    node.entries.into_iter().map(|(n, _, v)| self.lower_node(v, true, &n)).collect::<CResult<Vec<_>>>();
                let body = slots.and_then(|slots| Ok((slots, self.lower(body, None)?)));
                self.scopes.pop();
                let (slots, body) = body?;
                IrKind::Let { slots, body }
            }
            ExprKind::Select { expr, path, default } => IrKind::Select {
                expr: self.lower(expr, None)?,
                path: self.lower_keys(path)?,
                default: default.as_ref().map(|d| self.lower(d, None)).transpose()?,
            },
            ExprKind::HasAttr { expr, path } => {
                IrKind::HasAttr { expr: self.lower(expr, None)?, path: self.lower_keys(path)? }
            }
            ExprKind::Apply { .. } => {
                let mut args = Vec::new();
                let mut f = e;
                while let ExprKind::Apply { func, arg } = &f.kind {
                    args.push(arg.as_ref());
                    f = func;
                }
                args.reverse();
                IrKind::Apply {
                    func: self.lower(f, None)?,
                    args: args.into_iter().map(|a| self.lower(a, None)).collect::<CResult<_>>()?,
                }
            }
            ExprKind::Lambda(lam) => IrKind::Lambda(self.lower_lambda(lam, span, name)?),
            ExprKind::If { cond, then, else_ } => IrKind::If {
                cond: self.lower(cond, None)?,
                then: self.lower(then, None)?,
                else_: self.lower(else_, None)?,
            },
            ExprKind::Assert { cond, body } => {
                IrKind::Assert { cond: self.lower(cond, None)?, body: self.lower(body, None)? }
            }
            ExprKind::With { env, body } => {
                let env = self.lower(env, None)?;
                self.scopes.push(Scope::With);
                let body = self.lower(body, None);
                self.scopes.pop();
                IrKind::With { env, body: body? }
            }
            ExprKind::Unary { op: UnaryOp::Not, expr } => IrKind::Not(self.lower(expr, None)?),
            ExprKind::Unary { op: UnaryOp::Neg, expr } => IrKind::Neg(self.lower(expr, None)?),
            ExprKind::Binary { op, lhs, rhs } => {
                IrKind::Binary { op: *op, lhs: self.lower(lhs, None)?, rhs: self.lower(rhs, None)? }
            }
        };
        Ok(Self::mk(kind, span))
    }

    fn lower_parts(&mut self, parts: &[StrPart]) -> CResult<Vec<IrPart>> {
        parts
            .iter()
            .map(|p| match p {
                StrPart::Lit(s) => Ok(IrPart::Lit(Rc::from(s.as_str()))),
                StrPart::Interp(e) => Ok(IrPart::Interp(self.lower(e, None)?)),
            })
            .collect()
    }

    fn lower_keys(&mut self, path: &[AttrKey]) -> CResult<Vec<IrKey>> {
        path.iter()
            .map(|k| match k {
                AttrKey::Static(n, s) => Ok(IrKey::Static(n.clone(), *s)),
                AttrKey::Dynamic(e) => Ok(IrKey::Dynamic(self.lower(e, None)?)),
            })
            .collect()
    }

    fn lower_path(&mut self, anchor: &PathAnchor, parts: &[StrPart], span: Span) -> CResult<IrKind> {
        match anchor {
            PathAnchor::Home => Err(static_error(
                ErrorKind::Impure,
                span,
                "home paths (`~/...`) are not allowed: evaluation is pure".into(),
            )
            .with_help("use a path relative to the definition file, like `./config`")),
            PathAnchor::Search => {
                let name = match parts.first() {
                    Some(StrPart::Lit(s)) => Rc::from(s.as_str()),
                    _ => Rc::from(""),
                };
                Ok(IrKind::SearchPath(name))
            }
            _ => {
                if let [StrPart::Lit(s)] = parts {
                    let p = resolve_path(&self.dir, s);
                    return Ok(IrKind::Const(Value::path(&p)));
                }
                Ok(IrKind::Path { anchor: anchor.clone(), base: self.dir.clone(), parts: self.lower_parts(parts)? })
            }
        }
    }

    fn lower_lambda(&mut self, lam: &Lambda, span: Span, name: Option<&Name>) -> CResult<Rc<LambdaIr>> {
        let (names, param): (HashMap<Name, u32>, _) = match &lam.param {
            Param::Ident(n, _) => ([(n.clone(), 0)].into_iter().collect(), None),
            Param::Formals { formals, ellipsis, at } => {
                let mut names: HashMap<Name, u32> =
                    formals.iter().enumerate().map(|(i, f)| (f.name.clone(), i as u32)).collect();
                if let Some((a, asp)) = at {
                    if formals.iter().any(|f| &f.name == a) {
                        return Err(static_error(
                            ErrorKind::Syntax,
                            *asp,
                            format!("duplicate formal function argument `{a}`"),
                        ));
                    }
                    names.insert(a.clone(), formals.len() as u32);
                }
                (names, Some((formals, *ellipsis, at.is_some())))
            }
        };
        self.scopes.push(Scope::Frame(names));
        let r = (|| {
            let param = match param {
                None => LambdaParam::Ident,
                Some((formals, ellipsis, at)) => LambdaParam::Formals {
                    formals: formals
                        .iter()
                        .map(|f| {
                            Ok(FormalIr {
                                name: f.name.clone(),
                                span: f.span,
                                default: f.default.as_ref().map(|d| self.lower(d, None)).transpose()?,
                            })
                        })
                        .collect::<CResult<_>>()?,
                    ellipsis,
                    at,
                },
            };
            let body = self.lower(&lam.body, None)?;
            Ok(Rc::new(LambdaIr { name: name.cloned(), span, param, body }))
        })();
        self.scopes.pop();
        r
    }

    // --- attribute sets -------------------------------------------------------------------

    fn build_set<'e>(&mut self, rec: bool, binds: &'e [Binding], span: Span, is_let: bool) -> CResult<SetNode<'e>> {
        let mut set = SetNode::new(rec, span);
        for b in binds {
            match b {
                Binding::Inherit { from, names, .. } => set.inherit(from, names)?,
                Binding::Attr { path, value, .. } => {
                    if is_let && let Some(AttrKey::Dynamic(d)) = path.first() {
                        return Err(static_error(
                            ErrorKind::Syntax,
                            d.span,
                            "dynamic attributes are not allowed in `let`".into(),
                        )
                        .with_help("use a static name, or build a set with `listToAttrs`"));
                    }
                    insert_path(&mut set, path, value)?;
                }
            }
        }
        Ok(set)
    }

    fn lower_set(&mut self, set: SetNode<'_>) -> CResult<Rc<AttrsIr>> {
        let SetNode { rec, entries, dynamic, .. } = set;
        let mut out = Vec::with_capacity(entries.len());
        if rec {
            let names: HashMap<Name, u32> =
                entries.iter().enumerate().map(|(i, (n, _, _))| (n.clone(), i as u32)).collect();
            self.scopes.push(Scope::Frame(names));
        }
        let r = (|| -> CResult<Vec<(IrRef, IrRef, Span)>> {
            for (slot, (name, span, node)) in entries.into_iter().enumerate() {
                let value = self.lower_node(node, rec, &name)?;
                out.push(AttrEntry { name, value, span, slot: slot as u32 });
            }
            let dynamic = dynamic
                .into_iter()
                .map(|(k, v, sp)| Ok((self.lower(k, None)?, self.lower_node(v, false, &Rc::from(""))?, sp)))
                .collect::<CResult<Vec<_>>>()?;
            Ok(dynamic)
        })();
        if rec {
            self.scopes.pop();
        }
        let dynamic = r?;
        // Entries are sorted by name for lookups; `slot` keeps the frame order of a `rec` set.
        let mut entries = out;
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Rc::new(AttrsIr { rec, entries, dynamic }))
    }

    /// Lower one binding's value; `in_frame` when it lives in a `rec`/`let` frame (so an
    /// `inherit x;` looks past that frame).
    fn lower_node(&mut self, node: Node<'_>, in_frame: bool, name: &Name) -> CResult<IrRef> {
        match node {
            Node::Value(e) => self.lower(e, Some(name)),
            Node::Inherit { from: None, name, span } => Ok(Self::mk(self.resolve(&name, span, in_frame)?, span)),
            Node::Inherit { from: Some(from), name, span } => {
                let expr = self.lower(from, None)?;
                Ok(Self::mk(IrKind::Select { expr, path: vec![IrKey::Static(name, span)], default: None }, span))
            }
            Node::Set(set) => {
                let span = set.span;
                Ok(Self::mk(IrKind::Attrs(self.lower_set(set)?), span))
            }
        }
    }
}

fn duplicate(name: &str, span: Span, prev: Span) -> Box<EvalError> {
    Box::new(
        EvalError::new(ErrorKind::DuplicateAttr, format!("attribute `{}` is already defined", attr_name(name)))
            .at(span)
            .related(prev, "first defined here")
            .help("each attribute may be defined once; merge the two definitions"),
    )
}

/// Insert `path = value` into `set`, merging with sets defined by other paths or literals.
fn insert_path<'e>(set: &mut SetNode<'e>, path: &'e [AttrKey], value: &'e Expr) -> CResult<()> {
    let (first, rest) = path.split_first().expect("attribute paths are never empty");
    match first {
        AttrKey::Dynamic(k) => {
            let node = if rest.is_empty() { Node::Value(value) } else { nested(rest, value)? };
            set.dynamic.push((k, node, k.span));
            Ok(())
        }
        AttrKey::Static(name, sp) => {
            let pos = set.find(name);
            match (pos, rest.is_empty()) {
                (None, true) => {
                    let node = match &value.kind {
                        ExprKind::Attrs { rec, binds } => Node::Set(literal_set(*rec, binds, value.span)?),
                        _ => Node::Value(value),
                    };
                    set.push(name.clone(), *sp, node);
                    Ok(())
                }
                (None, false) => {
                    let node = nested(rest, value)?;
                    set.push(name.clone(), *sp, node);
                    Ok(())
                }
                (Some(i), _) => {
                    let prev_span = set.entries[i].1;
                    let Node::Set(existing) = &mut set.entries[i].2 else {
                        return Err(duplicate(name, *sp, prev_span));
                    };
                    if rest.is_empty() {
                        // `a = { ... };` after `a.b = ...;`: merge the literal's bindings.
                        let ExprKind::Attrs { binds, .. } = &value.kind else {
                            return Err(duplicate(name, *sp, prev_span));
                        };
                        for b in binds {
                            match b {
                                Binding::Attr { path, value, .. } => insert_path(existing, path, value)?,
                                Binding::Inherit { from, names, .. } => existing.inherit(from, names)?,
                            }
                        }
                        Ok(())
                    } else {
                        insert_path(existing, rest, value)
                    }
                }
            }
        }
    }
}

fn literal_set(rec: bool, binds: &[Binding], span: Span) -> CResult<SetNode<'_>> {
    let mut set = SetNode::new(rec, span);
    for b in binds {
        match b {
            Binding::Attr { path, value, .. } => insert_path(&mut set, path, value)?,
            Binding::Inherit { from, names, .. } => set.inherit(from, names)?,
        }
    }
    Ok(set)
}

fn nested<'e>(path: &'e [AttrKey], value: &'e Expr) -> CResult<Node<'e>> {
    let span = path[0].span().to(value.span);
    let mut set = SetNode::new(false, span);
    insert_path(&mut set, path, value)?;
    Ok(Node::Set(set))
}

/// Join `text` onto `dir` (unless absolute) and drop `.` and `..` lexically, as Nix does.
pub fn resolve_path(dir: &Path, text: &str) -> PathBuf {
    let joined = if text.starts_with('/') { PathBuf::from(text) } else { dir.join(text) };
    let mut out = PathBuf::from("/");
    for c in joined.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(s) => out.push(s),
            _ => {}
        }
    }
    out
}
