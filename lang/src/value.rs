//! Runtime values: lazily evaluated thunks, attribute sets sorted by name, closures and builtins.

use crate::compile::{IrRef, LambdaIr};
use crate::span::Span;
use std::cell::RefCell;
use std::fmt;
use std::path::Path;
use std::rc::Rc;

pub type Name = Rc<str>;

#[derive(Clone)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    String(Rc<str>),
    /// An absolute, normalized path.
    Path(Rc<str>),
    List(Rc<Vec<Thunk>>),
    Attrs(Rc<Attrs>),
    Lambda(Rc<Closure>),
    PrimOp(Rc<PrimOpApp>),
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => write!(f, "null"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::String(s) => write!(f, "{s:?}"),
            Value::Path(p) => write!(f, "{p}"),
            Value::List(l) => write!(f, "[list of {}]", l.len()),
            Value::Attrs(a) => write!(f, "{{set of {}}}", a.len()),
            Value::Lambda(_) => write!(f, "<LAMBDA>"),
            Value::PrimOp(_) => write!(f, "<PRIMOP>"),
        }
    }
}

impl Value {
    pub fn string(s: &str) -> Value {
        Value::String(Rc::from(s))
    }

    pub fn path(p: &Path) -> Value {
        Value::Path(Rc::from(p.to_string_lossy().as_ref()))
    }

    /// The name `builtins.typeOf` gives.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::String(_) => "string",
            Value::Path(_) => "path",
            Value::List(_) => "list",
            Value::Attrs(_) => "set",
            Value::Lambda(_) | Value::PrimOp(_) => "lambda",
        }
    }

    /// "an integer", "a set": for messages.
    pub fn describe(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a Boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a float",
            Value::String(_) => "a string",
            Value::Path(_) => "a path",
            Value::List(_) => "a list",
            Value::Attrs(_) => "a set",
            Value::Lambda(_) => "a function",
            Value::PrimOp(_) => "a built-in function",
        }
    }

    pub fn is_function(&self) -> bool {
        matches!(self, Value::Lambda(_) | Value::PrimOp(_))
    }
}

/// A value that may not have been computed yet. Forcing it computes it at most once.
#[derive(Clone)]
pub struct Thunk(pub(crate) Rc<RefCell<ThunkState>>);

pub(crate) enum ThunkState {
    Done(Value),
    Pending(IrRef, Rc<Env>),
    /// `f a b ...`, computed when first needed (used by lazy builtins such as `map`, which do not
    /// look at `f` until an element is used, as in Nix).
    Apply(Thunk, Vec<Thunk>, Span),
    /// Being computed: reaching it again is infinite recursion.
    Blackhole(Span),
}

impl Thunk {
    pub fn ready(v: Value) -> Thunk {
        Thunk(Rc::new(RefCell::new(ThunkState::Done(v))))
    }

    pub(crate) fn pending(ir: IrRef, env: Rc<Env>) -> Thunk {
        Thunk(Rc::new(RefCell::new(ThunkState::Pending(ir, env))))
    }

    pub(crate) fn apply(f: Thunk, args: Vec<Thunk>, span: Span) -> Thunk {
        Thunk(Rc::new(RefCell::new(ThunkState::Apply(f, args, span))))
    }

    /// The value, if already computed.
    pub fn value(&self) -> Option<Value> {
        match &*self.0.borrow() {
            ThunkState::Done(v) => Some(v.clone()),
            _ => None,
        }
    }

    pub fn ptr_eq(&self, other: &Thunk) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }
}

impl fmt::Debug for Thunk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.value() {
            Some(v) => v.fmt(f),
            None => write!(f, "<thunk>"),
        }
    }
}

/// A lexical environment: one frame of slots, or a `with` scope.
pub struct Env {
    pub(crate) slots: RefCell<Vec<Thunk>>,
    pub(crate) parent: Option<Rc<Env>>,
    /// For a `with` frame: the set it brings into scope.
    pub(crate) with: Option<Thunk>,
}

impl Env {
    pub(crate) fn new(parent: Option<Rc<Env>>, slots: Vec<Thunk>) -> Rc<Env> {
        Rc::new(Env { slots: RefCell::new(slots), parent, with: None })
    }

    pub(crate) fn ancestor(self: &Rc<Env>, depth: u32) -> &Rc<Env> {
        let mut e = self;
        for _ in 0..depth {
            e = e.parent.as_ref().expect("scope depth resolved at compile time");
        }
        e
    }
}

/// One attribute: its name, value and where it was defined.
#[derive(Clone)]
pub struct Attr {
    pub name: Name,
    pub value: Thunk,
    pub span: Option<Span>,
}

/// An attribute set, sorted by name (byte order, as Nix).
#[derive(Clone, Default)]
pub struct Attrs {
    pub(crate) entries: Vec<Attr>,
}

impl Attrs {
    /// Build from entries in any order; later duplicates are dropped by the caller.
    pub fn from_sorted(entries: Vec<Attr>) -> Attrs {
        debug_assert!(entries.windows(2).all(|w| w[0].name < w[1].name));
        Attrs { entries }
    }

    pub fn get(&self, name: &str) -> Option<&Attr> {
        self.entries.binary_search_by(|a| (*a.name).cmp(name)).ok().map(|i| &self.entries[i])
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Attr> {
        self.entries.iter()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|a| &*a.name)
    }

    /// Insert or replace.
    pub fn insert(&mut self, attr: Attr) {
        match self.entries.binary_search_by(|a| a.name.cmp(&attr.name)) {
            Ok(i) => self.entries[i] = attr,
            Err(i) => self.entries.insert(i, attr),
        }
    }

    /// `self // other`
    pub fn update(&self, other: &Attrs) -> Attrs {
        let (a, b) = (&self.entries, &other.entries);
        let mut out = Vec::with_capacity(a.len() + b.len());
        let (mut i, mut j) = (0, 0);
        while i < a.len() && j < b.len() {
            match a[i].name.cmp(&b[j].name) {
                std::cmp::Ordering::Less => {
                    out.push(a[i].clone());
                    i += 1;
                }
                std::cmp::Ordering::Greater => {
                    out.push(b[j].clone());
                    j += 1;
                }
                std::cmp::Ordering::Equal => {
                    out.push(b[j].clone());
                    i += 1;
                    j += 1;
                }
            }
        }
        out.extend_from_slice(&a[i..]);
        out.extend_from_slice(&b[j..]);
        Attrs { entries: out }
    }
}

pub struct Closure {
    pub(crate) lambda: Rc<LambdaIr>,
    pub(crate) env: Rc<Env>,
}

impl Closure {
    /// The formal arguments: name and whether it has a default. `None` for `x: ...`.
    pub fn formals(&self) -> Option<Vec<(Name, bool)>> {
        match &self.lambda.param {
            crate::compile::LambdaParam::Ident => None,
            crate::compile::LambdaParam::Formals { formals, .. } => {
                Some(formals.iter().map(|f| (f.name.clone(), f.default.is_some())).collect())
            }
        }
    }

    pub fn accepts_any(&self) -> bool {
        match &self.lambda.param {
            crate::compile::LambdaParam::Ident => true,
            crate::compile::LambdaParam::Formals { ellipsis, .. } => *ellipsis,
        }
    }
}

/// A builtin with the arguments it has received so far.
pub struct PrimOpApp {
    pub(crate) op: &'static crate::builtins::PrimOp,
    pub(crate) args: Vec<Thunk>,
}
