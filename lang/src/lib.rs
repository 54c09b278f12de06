//! The definition language: a subset of the Nix expression language with the same syntax and
//! semantics where they overlap. Parsing, lazy evaluation, builtins and diagnostics; all file access
//! goes through [`io::EvalIo`].

pub mod ast;
pub mod builtins;
pub mod compile;
pub mod error;
pub mod eval;
pub mod io;
pub mod parser;
pub mod print;
pub mod span;
pub mod value;

pub use error::{Error, ErrorKind};
pub use eval::{Evaluator, Options};
pub use value::{Attrs, Thunk, Value};

use std::path::Path;
use std::rc::Rc;

/// An argument for a top-level function (`--arg NAME EXPR`, `--argstr NAME STRING`).
#[derive(Debug, Clone)]
pub enum Arg {
    Expr(String),
    Str(String),
}

impl Evaluator<'_> {
    /// Load a definition file: import it and, if its value is a function taking a set, call it with
    /// `args` (only those it declares, unless it takes `...`), as `nix-instantiate --arg` does.
    pub fn load(&mut self, path: &Path, args: &[(String, Arg)]) -> Result<Value, Error> {
        let r = (|| {
            let v = self.import_path(path, None)?;
            self.auto_call(v, args)
        })();
        r.map_err(|e| self.to_error(&e))
    }

    fn auto_call(&mut self, v: Value, args: &[(String, Arg)]) -> eval::EResult<Value> {
        let Value::Lambda(c) = &v else { return Ok(v) };
        let Some(formals) = c.formals() else { return Ok(v) };
        let span = c.lambda.span;
        // A required argument nobody passed: say how to pass it, not "function called without".
        for (name, has_default) in &formals {
            if !has_default && !args.iter().any(|(n, _)| n == &**name) {
                let declared = c.lambda.param_span(name).unwrap_or(span);
                return Err(error::EvalError::new(
                    ErrorKind::Argument,
                    format!("the definition takes the argument `{name}`, which was not given"),
                )
                .at(declared)
                .label("declared here")
                .help(format!("pass it with `--argstr {name} VALUE` or `--arg {name} EXPR`, or give it a default: `{name} ? value`"))
                .boxed());
            }
        }
        let mut entries = Vec::new();
        for (name, arg) in args {
            if !c.accepts_any() && !formals.iter().any(|(f, _)| &**f == name) {
                continue;
            }
            let value = match arg {
                Arg::Str(s) => Thunk::ready(Value::string(s)),
                Arg::Expr(src) => {
                    let base = self.options.display_base.clone().unwrap_or_else(|| "/".into());
                    let (_, ir) = self.compile_source(format!("(--arg {name})"), &base.join("(arg)"), src)?;
                    Thunk::pending(ir, self.globals.clone())
                }
            };
            entries.push(value::Attr { name: Rc::from(name.as_str()), value, span: None });
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        entries.dedup_by(|a, b| a.name == b.name);
        let arg = Value::Attrs(Rc::new(Attrs::from_sorted(entries)));
        self.call(v, Thunk::ready(arg), span)
    }

    /// Parse and evaluate source text (to weak head normal form) as if it were the file `path`.
    pub fn eval_source(&mut self, path: &Path, text: &str) -> Result<Value, Error> {
        let r = (|| {
            let name = path.display().to_string();
            let (_, ir) = self.compile_source(name, path, text)?;
            let t = Thunk::pending(ir, self.globals.clone());
            self.force(&t)
        })();
        r.map_err(|e| self.to_error(&e))
    }

    /// Evaluate `v` completely (every nested value); errors become diagnostics.
    pub fn force_deep(&mut self, v: &Value) -> Result<(), Error> {
        self.deep_force(v).map_err(|e| self.to_error(&e))
    }

    /// Select a dotted attribute path (`--attr a.b`).
    pub fn select_path(&mut self, v: Value, path: &str) -> Result<Value, Error> {
        let mut cur = v;
        for part in path.split('.').filter(|p| !p.is_empty()) {
            let found = match &cur {
                Value::Attrs(a) => a.get(part).map(|x| x.value.clone()),
                _ => None,
            };
            match found {
                Some(t) => cur = self.force(&t).map_err(|e| self.to_error(&e))?,
                None => {
                    let help = match &cur {
                        Value::Attrs(a) => match error::closest(part, a.names()) {
                            Some(c) => format!("did you mean `{c}`?"),
                            None => format!("the set has: {}", a.names().take(12).collect::<Vec<_>>().join(", ")),
                        },
                        other => format!("`{part}` cannot be selected from {}", other.describe()),
                    };
                    return Err(Error::plain(
                        ErrorKind::MissingAttr,
                        format!("attribute `{part}` of `--attr {path}` missing"),
                        Some(help),
                    ));
                }
            }
        }
        Ok(cur)
    }

    /// Print as `nix-instantiate --eval --strict` does.
    pub fn to_text(&mut self, v: &Value) -> Result<String, Error> {
        let span = span::Span::new(span::FileId(0), 0, 0);
        print::to_text(self, v, span, true).map_err(|e| self.to_error(&e))
    }

    /// Print as `nix-instantiate --eval --strict --json` does (paths print as their absolute path).
    pub fn to_json(&mut self, v: &Value) -> Result<String, Error> {
        let span = span::Span::new(span::FileId(0), 0, 0);
        let mut out = String::new();
        print::write_json(self, v, &mut out, span).map_err(|e| self.to_error(&e))?;
        Ok(out)
    }

    pub fn to_error(&self, e: &error::EvalError) -> Error {
        Error::from_eval(e, &self.sources)
    }
}
