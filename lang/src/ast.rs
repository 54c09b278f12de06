//! The syntax tree produced by the parser, before scopes are resolved.

use crate::span::Span;
use std::rc::Rc;

pub type Name = Rc<str>;

#[derive(Debug, Clone)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnaryOp {
    Not,
    Neg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Concat,
    Mul,
    Div,
    Add,
    Sub,
    Update,
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
    And,
    Or,
    Impl,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Concat => "++",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Update => "//",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::And => "&&",
            BinOp::Or => "||",
            BinOp::Impl => "->",
        }
    }
}

#[derive(Debug, Clone)]
pub enum StrPart {
    Lit(String),
    Interp(Expr),
}

/// How a path literal is anchored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathAnchor {
    /// `./x`, `../x`, `x/y`: relative to the directory of the file holding it.
    Relative,
    /// `/x`
    Absolute,
    /// `~/x`
    Home,
    /// `<name/x>`: looked up in the search path.
    Search,
}

#[derive(Debug, Clone)]
pub enum ExprKind {
    Int(i64),
    Float(f64),
    Str(Vec<StrPart>),
    /// A path literal; `parts` holds the text (and interpolations, for `./a/${b}`).
    Path {
        anchor: PathAnchor,
        parts: Vec<StrPart>,
    },
    Var(Name),
    List(Vec<Expr>),
    Attrs {
        rec: bool,
        binds: Vec<Binding>,
    },
    Let {
        binds: Vec<Binding>,
        body: Box<Expr>,
    },
    Select {
        expr: Box<Expr>,
        path: Vec<AttrKey>,
        default: Option<Box<Expr>>,
    },
    HasAttr {
        expr: Box<Expr>,
        path: Vec<AttrKey>,
    },
    Apply {
        func: Box<Expr>,
        arg: Box<Expr>,
    },
    Lambda(Rc<Lambda>),
    If {
        cond: Box<Expr>,
        then: Box<Expr>,
        else_: Box<Expr>,
    },
    Assert {
        cond: Box<Expr>,
        body: Box<Expr>,
    },
    With {
        env: Box<Expr>,
        body: Box<Expr>,
    },
    Unary {
        op: UnaryOp,
        expr: Box<Expr>,
    },
    Binary {
        op: BinOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
}

#[derive(Debug, Clone)]
pub enum AttrKey {
    /// `a`, `"a"` (a string without interpolation is static).
    Static(Name, Span),
    /// `${e}` or `"${e}..."`.
    Dynamic(Expr),
}

impl AttrKey {
    pub fn span(&self) -> Span {
        match self {
            AttrKey::Static(_, s) => *s,
            AttrKey::Dynamic(e) => e.span,
        }
    }
}

#[derive(Debug, Clone)]
pub enum Binding {
    Attr { path: Vec<AttrKey>, value: Expr, span: Span },
    Inherit { from: Option<Expr>, names: Vec<(Name, Span)>, span: Span },
}

#[derive(Debug, Clone)]
pub struct Formal {
    pub name: Name,
    pub span: Span,
    pub default: Option<Expr>,
}

#[derive(Debug, Clone)]
pub enum Param {
    Ident(Name, Span),
    Formals { formals: Vec<Formal>, ellipsis: bool, at: Option<(Name, Span)> },
}

#[derive(Debug, Clone)]
pub struct Lambda {
    pub param: Param,
    pub body: Expr,
}

/// Fully parenthesized text of an expression: shows how the parser grouped it (`pipeline parse`).
pub fn show(e: &Expr) -> String {
    let mut s = String::new();
    write_expr(e, &mut s);
    s
}

fn write_key(k: &AttrKey, out: &mut String) {
    match k {
        AttrKey::Static(n, _) => out.push_str(&format!("{n:?}")),
        AttrKey::Dynamic(e) => {
            out.push_str("${");
            write_expr(e, out);
            out.push('}');
        }
    }
}

fn write_path(path: &[AttrKey], out: &mut String) {
    for (i, k) in path.iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        write_key(k, out);
    }
}

fn write_parts(parts: &[StrPart], out: &mut String) {
    out.push('"');
    for p in parts {
        match p {
            StrPart::Lit(s) => out.push_str(&format!("{s:?}").trim_matches('"').replace("${", "\\${")),
            StrPart::Interp(e) => {
                out.push_str("${");
                write_expr(e, out);
                out.push('}');
            }
        }
    }
    out.push('"');
}

fn write_binds(binds: &[Binding], out: &mut String) {
    for b in binds {
        out.push(' ');
        match b {
            Binding::Attr { path, value, .. } => {
                write_path(path, out);
                out.push_str(" = ");
                write_expr(value, out);
                out.push(';');
            }
            Binding::Inherit { from, names, .. } => {
                out.push_str("inherit");
                if let Some(f) = from {
                    out.push_str(" (");
                    write_expr(f, out);
                    out.push(')');
                }
                for (n, _) in names {
                    out.push_str(&format!(" {n:?}"));
                }
                out.push(';');
            }
        }
    }
    out.push(' ');
}

fn write_expr(e: &Expr, out: &mut String) {
    match &e.kind {
        ExprKind::Int(i) => out.push_str(&i.to_string()),
        ExprKind::Float(f) => out.push_str(&format!("{f:?}")),
        ExprKind::Str(parts) => write_parts(parts, out),
        ExprKind::Path { anchor, parts } => {
            out.push_str(match anchor {
                PathAnchor::Relative => "(path ",
                PathAnchor::Absolute => "(abspath ",
                PathAnchor::Home => "(homepath ",
                PathAnchor::Search => "(searchpath ",
            });
            write_parts(parts, out);
            out.push(')');
        }
        ExprKind::Var(n) => out.push_str(n),
        ExprKind::List(items) => {
            out.push('[');
            for i in items {
                out.push(' ');
                write_expr(i, out);
            }
            out.push_str(" ]");
        }
        ExprKind::Attrs { rec, binds } => {
            if *rec {
                out.push_str("rec ");
            }
            out.push('{');
            write_binds(binds, out);
            out.push('}');
        }
        ExprKind::Let { binds, body } => {
            out.push_str("(let");
            write_binds(binds, out);
            out.push_str("in ");
            write_expr(body, out);
            out.push(')');
        }
        ExprKind::Select { expr, path, default } => {
            out.push('(');
            write_expr(expr, out);
            out.push('.');
            write_path(path, out);
            if let Some(d) = default {
                out.push_str(" or ");
                write_expr(d, out);
            }
            out.push(')');
        }
        ExprKind::HasAttr { expr, path } => {
            out.push('(');
            write_expr(expr, out);
            out.push_str(" ? ");
            write_path(path, out);
            out.push(')');
        }
        ExprKind::Apply { func, arg } => {
            out.push('(');
            write_expr(func, out);
            out.push(' ');
            write_expr(arg, out);
            out.push(')');
        }
        ExprKind::Lambda(l) => {
            out.push('(');
            match &l.param {
                Param::Ident(n, _) => out.push_str(n),
                Param::Formals { formals, ellipsis, at } => {
                    out.push('{');
                    let mut first = true;
                    for f in formals {
                        out.push_str(if first { " " } else { ", " });
                        first = false;
                        out.push_str(&f.name);
                        if let Some(d) = &f.default {
                            out.push_str(" ? ");
                            write_expr(d, out);
                        }
                    }
                    if *ellipsis {
                        out.push_str(if first { " ..." } else { ", ..." });
                    }
                    out.push_str(" }");
                    if let Some((a, _)) = at {
                        out.push('@');
                        out.push_str(a);
                    }
                }
            }
            out.push_str(": ");
            write_expr(&l.body, out);
            out.push(')');
        }
        ExprKind::If { cond, then, else_ } => {
            out.push_str("(if ");
            write_expr(cond, out);
            out.push_str(" then ");
            write_expr(then, out);
            out.push_str(" else ");
            write_expr(else_, out);
            out.push(')');
        }
        ExprKind::Assert { cond, body } => {
            out.push_str("(assert ");
            write_expr(cond, out);
            out.push_str("; ");
            write_expr(body, out);
            out.push(')');
        }
        ExprKind::With { env, body } => {
            out.push_str("(with ");
            write_expr(env, out);
            out.push_str("; ");
            write_expr(body, out);
            out.push(')');
        }
        ExprKind::Unary { op, expr } => {
            out.push_str(match op {
                UnaryOp::Not => "(!",
                UnaryOp::Neg => "(-",
            });
            write_expr(expr, out);
            out.push(')');
        }
        ExprKind::Binary { op, lhs, rhs } => {
            out.push('(');
            write_expr(lhs, out);
            out.push_str(&format!(" {} ", op.symbol()));
            write_expr(rhs, out);
            out.push(')');
        }
    }
}
