//! The builtins: pure functions only (no clock, network or environment), and the global scope.

use crate::ast::BinOp;
use crate::error::{ErrorKind, EvalError};
use crate::eval::{EResult, Evaluator, missing_attr, type_err};
use crate::print;
use crate::span::Span;
use crate::value::*;
use std::collections::HashMap;
use std::path::Path;
use std::rc::Rc;

pub struct PrimOp {
    pub name: &'static str,
    pub arity: usize,
    pub f: fn(&mut Evaluator, &[Thunk], Span) -> EResult<Value>,
}

macro_rules! prim {
    ($name:literal, $arity:literal, $f:expr) => {
        PrimOp { name: $name, arity: $arity, f: $f }
    };
}

static PRIMOPS: &[PrimOp] = &[
    prim!("abort", 1, prim_abort),
    prim!("add", 2, |e, a, s| arith(e, a, s, BinOp::Add)),
    prim!("all", 2, prim_all),
    prim!("any", 2, prim_any),
    prim!("attrNames", 1, prim_attr_names),
    prim!("attrValues", 1, prim_attr_values),
    prim!("baseNameOf", 1, prim_base_name_of),
    prim!("catAttrs", 2, prim_cat_attrs),
    prim!("concatLists", 1, prim_concat_lists),
    prim!("concatMap", 2, prim_concat_map),
    prim!("concatStringsSep", 2, prim_concat_strings_sep),
    prim!("deepSeq", 2, prim_deep_seq),
    prim!("dirOf", 1, prim_dir_of),
    prim!("div", 2, |e, a, s| arith(e, a, s, BinOp::Div)),
    prim!("elem", 2, prim_elem),
    prim!("elemAt", 2, prim_elem_at),
    prim!("filter", 2, prim_filter),
    prim!("foldl'", 3, prim_foldl),
    prim!("fromJSON", 1, prim_from_json),
    prim!("functionArgs", 1, prim_function_args),
    prim!("genList", 2, prim_gen_list),
    prim!("getAttr", 2, prim_get_attr),
    prim!("groupBy", 2, prim_group_by),
    prim!("hasAttr", 2, prim_has_attr),
    prim!("head", 1, prim_head),
    prim!("import", 1, prim_import),
    prim!("intersectAttrs", 2, prim_intersect_attrs),
    prim!("isAttrs", 1, |e, a, _| is(e, a, |v| matches!(v, Value::Attrs(_)))),
    prim!("isBool", 1, |e, a, _| is(e, a, |v| matches!(v, Value::Bool(_)))),
    prim!("isFloat", 1, |e, a, _| is(e, a, |v| matches!(v, Value::Float(_)))),
    prim!("isFunction", 1, |e, a, _| is(e, a, Value::is_function)),
    prim!("isInt", 1, |e, a, _| is(e, a, |v| matches!(v, Value::Int(_)))),
    prim!("isList", 1, |e, a, _| is(e, a, |v| matches!(v, Value::List(_)))),
    prim!("isNull", 1, |e, a, _| is(e, a, |v| matches!(v, Value::Null))),
    prim!("isPath", 1, |e, a, _| is(e, a, |v| matches!(v, Value::Path(_)))),
    prim!("isString", 1, |e, a, _| is(e, a, |v| matches!(v, Value::String(_)))),
    prim!("length", 1, prim_length),
    prim!("lessThan", 2, prim_less_than),
    prim!("listToAttrs", 1, prim_list_to_attrs),
    prim!("map", 2, prim_map),
    prim!("mapAttrs", 2, prim_map_attrs),
    prim!("match", 2, prim_match),
    prim!("mul", 2, |e, a, s| arith(e, a, s, BinOp::Mul)),
    prim!("partition", 2, prim_partition),
    prim!("pathExists", 1, prim_path_exists),
    prim!("readFile", 1, prim_read_file),
    prim!("removeAttrs", 2, prim_remove_attrs),
    prim!("replaceStrings", 3, prim_replace_strings),
    prim!("seq", 2, prim_seq),
    prim!("sort", 2, prim_sort),
    prim!("split", 2, prim_split),
    prim!("stringLength", 1, prim_string_length),
    prim!("sub", 2, |e, a, s| arith(e, a, s, BinOp::Sub)),
    prim!("substring", 3, prim_substring),
    prim!("tail", 1, prim_tail),
    prim!("throw", 1, prim_throw),
    prim!("toJSON", 1, prim_to_json),
    prim!("toString", 1, prim_to_string),
    prim!("trace", 2, prim_trace),
    prim!("tryEval", 1, prim_try_eval),
    prim!("typeOf", 1, prim_type_of),
];

/// Names also bound at the top level, outside `builtins`.
const TOP_LEVEL: [&str; 10] =
    ["abort", "baseNameOf", "dirOf", "import", "isNull", "map", "removeAttrs", "throw", "toString", "builtins"];

/// The global scope: `builtins`, `true`, `false`, `null` and the top-level builtins.
pub(crate) fn globals() -> (Rc<Env>, HashMap<Name, u32>) {
    let prim = |p: &'static PrimOp| Value::PrimOp(Rc::new(PrimOpApp { op: p, args: Vec::new() }));
    let mut entries: Vec<Attr> =
        PRIMOPS.iter().map(|p| Attr { name: Rc::from(p.name), value: Thunk::ready(prim(p)), span: None }).collect();
    for (name, v) in [("true", Value::Bool(true)), ("false", Value::Bool(false)), ("null", Value::Null)] {
        entries.push(Attr { name: Rc::from(name), value: Thunk::ready(v), span: None });
    }
    // `builtins.builtins` is `builtins` itself.
    let self_ref = Thunk::ready(Value::Null);
    entries.push(Attr { name: Rc::from("builtins"), value: self_ref.clone(), span: None });
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    let builtins = Value::Attrs(Rc::new(Attrs::from_sorted(entries)));
    *self_ref.0.borrow_mut() = ThunkState::Done(builtins.clone());
    let mut names = HashMap::new();
    let mut slots = Vec::new();
    let mut bind = |name: &str, v: Value| {
        names.insert(Rc::from(name), slots.len() as u32);
        slots.push(Thunk::ready(v));
    };
    bind("true", Value::Bool(true));
    bind("false", Value::Bool(false));
    bind("null", Value::Null);
    for name in TOP_LEVEL {
        if name == "builtins" {
            bind("builtins", builtins.clone());
        } else if let Some(p) = PRIMOPS.iter().find(|p| p.name == name) {
            bind(name, prim(p));
        }
    }
    (Env::new(None, slots), names)
}

// --- argument helpers --------------------------------------------------------------------

fn fail(kind: ErrorKind, msg: impl Into<String>, span: Span) -> Box<EvalError> {
    Box::new(EvalError::new(kind, msg).at(span))
}

fn int(e: &mut Evaluator, t: &Thunk, what: &str, span: Span) -> EResult<i64> {
    match e.force(t)? {
        Value::Int(i) => Ok(i),
        v => Err(type_err(&format!("an integer as {what}"), &v, span)),
    }
}

fn string(e: &mut Evaluator, t: &Thunk, what: &str, span: Span) -> EResult<Rc<str>> {
    match e.force(t)? {
        Value::String(s) => Ok(s),
        v => Err(type_err(&format!("a string as {what}"), &v, span)),
    }
}

fn list(e: &mut Evaluator, t: &Thunk, what: &str, span: Span) -> EResult<Rc<Vec<Thunk>>> {
    match e.force(t)? {
        Value::List(l) => Ok(l),
        v => Err(type_err(&format!("a list as {what}"), &v, span)),
    }
}

fn attrs(e: &mut Evaluator, t: &Thunk, what: &str, span: Span) -> EResult<Rc<Attrs>> {
    match e.force(t)? {
        Value::Attrs(a) => Ok(a),
        v => Err(type_err(&format!("a set as {what}"), &v, span)),
    }
}

fn function(e: &mut Evaluator, t: &Thunk, what: &str, span: Span) -> EResult<Value> {
    match e.force(t)? {
        v @ (Value::Lambda(_) | Value::PrimOp(_)) => Ok(v),
        Value::Attrs(a) if a.get("__functor").is_some() => Ok(Value::Attrs(a)),
        v => Err(type_err(&format!("a function as {what}"), &v, span)),
    }
}

fn boolean(v: Value, what: &str, span: Span) -> EResult<bool> {
    match v {
        Value::Bool(b) => Ok(b),
        v => Err(type_err(&format!("a Boolean from {what}"), &v, span)),
    }
}

/// A string argument that may also be a path (for `baseNameOf`, `dirOf`, `readFile`, ...).
fn string_or_path(e: &mut Evaluator, t: &Thunk, span: Span) -> EResult<(Rc<str>, bool)> {
    match e.force(t)? {
        Value::String(s) => Ok((s, false)),
        Value::Path(p) => Ok((p, true)),
        v @ Value::Attrs(_) => {
            let mut s = String::new();
            e.coerce_to_string(&v, &mut s, false, span)?;
            Ok((Rc::from(s), false))
        }
        v => Err(type_err("a string or a path", &v, span)),
    }
}

fn list_value(items: Vec<Thunk>) -> Value {
    Value::List(Rc::new(items))
}

fn str_value(s: impl AsRef<str>) -> Value {
    Value::String(Rc::from(s.as_ref()))
}

// --- the builtins ------------------------------------------------------------------------

fn prim_abort(e: &mut Evaluator, a: &[Thunk], span: Span) -> EResult<Value> {
    let msg = e.force(&a[0])?;
    let mut s = String::new();
    e.coerce_to_string(&msg, &mut s, false, span)?;
    Err(fail(ErrorKind::Abort, format!("evaluation aborted: {s}"), span))
}

fn prim_throw(e: &mut Evaluator, a: &[Thunk], span: Span) -> EResult<Value> {
    let msg = e.force(&a[0])?;
    let mut s = String::new();
    e.coerce_to_string(&msg, &mut s, false, span)?;
    Err(fail(ErrorKind::Throw, s, span))
}

fn arith(e: &mut Evaluator, a: &[Thunk], span: Span, op: BinOp) -> EResult<Value> {
    let x = e.force(&a[0])?;
    let y = e.force(&a[1])?;
    if !matches!(x, Value::Int(_) | Value::Float(_)) {
        return Err(type_err("a number", &x, span));
    }
    e.binary_values(op, x, y, span, span, span)
}

fn prim_all(e: &mut Evaluator, a: &[Thunk], span: Span) -> EResult<Value> {
    let f = function(e, &a[0], "the first argument of `all`", span)?;
    for t in list(e, &a[1], "the second argument of `all`", span)?.iter() {
        let r = e.call(f.clone(), t.clone(), span)?;
        if !boolean(r, "the predicate of `all`", span)? {
            return Ok(Value::Bool(false));
        }
    }
    Ok(Value::Bool(true))
}

fn prim_any(e: &mut Evaluator, a: &[Thunk], span: Span) -> EResult<Value> {
    let f = function(e, &a[0], "the first argument of `any`", span)?;
    for t in list(e, &a[1], "the second argument of `any`", span)?.iter() {
        let r = e.call(f.clone(), t.clone(), span)?;
        if boolean(r, "the predicate of `any`", span)? {
            return Ok(Value::Bool(true));
        }
    }
    Ok(Value::Bool(false))
}

fn prim_attr_names(e: &mut Evaluator, a: &[Thunk], span: Span) -> EResult<Value> {
    let s = attrs(e, &a[0], "the argument of `attrNames`", span)?;
    Ok(list_value(s.iter().map(|x| Thunk::ready(Value::String(x.name.clone()))).collect()))
}

fn prim_attr_values(e: &mut Evaluator, a: &[Thunk], span: Span) -> EResult<Value> {
    let s = attrs(e, &a[0], "the argument of `attrValues`", span)?;
    Ok(list_value(s.iter().map(|x| x.value.clone()).collect()))
}

fn prim_base_name_of(e: &mut Evaluator, a: &[Thunk], span: Span) -> EResult<Value> {
    let (s, _) = string_or_path(e, &a[0], span)?;
    let trimmed = s.strip_suffix('/').unwrap_or(&s);
    let base = trimmed.rsplit('/').next().unwrap_or("");
    Ok(str_value(base))
}

fn prim_dir_of(e: &mut Evaluator, a: &[Thunk], span: Span) -> EResult<Value> {
    let (s, is_path) = string_or_path(e, &a[0], span)?;
    let dir = match s.rfind('/') {
        None => ".",
        Some(0) => "/",
        Some(i) => &s[..i],
    };
    Ok(if is_path { Value::Path(Rc::from(dir)) } else { str_value(dir) })
}

fn prim_cat_attrs(e: &mut Evaluator, a: &[Thunk], span: Span) -> EResult<Value> {
    let name = string(e, &a[0], "the attribute name for `catAttrs`", span)?;
    let mut out = Vec::new();
    for t in list(e, &a[1], "the second argument of `catAttrs`", span)?.iter() {
        let s = attrs(e, t, "an element of the list given to `catAttrs`", span)?;
        if let Some(x) = s.get(&name) {
            out.push(x.value.clone());
        }
    }
    Ok(list_value(out))
}

fn prim_concat_lists(e: &mut Evaluator, a: &[Thunk], span: Span) -> EResult<Value> {
    let mut out = Vec::new();
    for t in list(e, &a[0], "the argument of `concatLists`", span)?.iter() {
        out.extend(list(e, t, "an element of the list given to `concatLists`", span)?.iter().cloned());
    }
    Ok(list_value(out))
}

fn prim_concat_map(e: &mut Evaluator, a: &[Thunk], span: Span) -> EResult<Value> {
    let f = function(e, &a[0], "the first argument of `concatMap`", span)?;
    let mut out = Vec::new();
    for t in list(e, &a[1], "the second argument of `concatMap`", span)?.iter() {
        match e.call(f.clone(), t.clone(), span)? {
            Value::List(l) => out.extend(l.iter().cloned()),
            v => return Err(type_err("a list from the function given to `concatMap`", &v, span)),
        }
    }
    Ok(list_value(out))
}

fn prim_concat_strings_sep(e: &mut Evaluator, a: &[Thunk], span: Span) -> EResult<Value> {
    let sep = string(e, &a[0], "the separator of `concatStringsSep`", span)?;
    let mut out = String::new();
    for (i, t) in list(e, &a[1], "the second argument of `concatStringsSep`", span)?.iter().enumerate() {
        if i > 0 {
            out.push_str(&sep);
        }
        let v = e.force(t)?;
        e.coerce_to_string(&v, &mut out, false, span)?;
    }
    Ok(str_value(out))
}

fn prim_deep_seq(e: &mut Evaluator, a: &[Thunk], _span: Span) -> EResult<Value> {
    let v = e.force(&a[0])?;
    e.deep_force(&v)?;
    e.force(&a[1])
}

fn prim_seq(e: &mut Evaluator, a: &[Thunk], _span: Span) -> EResult<Value> {
    e.force(&a[0])?;
    e.force(&a[1])
}

fn prim_elem(e: &mut Evaluator, a: &[Thunk], span: Span) -> EResult<Value> {
    let x = e.force(&a[0])?;
    for t in list(e, &a[1], "the second argument of `elem`", span)?.iter() {
        let y = e.force(t)?;
        if e.equal(&x, &y)? {
            return Ok(Value::Bool(true));
        }
    }
    Ok(Value::Bool(false))
}

fn prim_elem_at(e: &mut Evaluator, a: &[Thunk], span: Span) -> EResult<Value> {
    let l = list(e, &a[0], "the first argument of `elemAt`", span)?;
    let n = int(e, &a[1], "the index given to `elemAt`", span)?;
    if n < 0 || n as usize >= l.len() {
        return Err(fail(ErrorKind::Index, format!("list index {n} is out of bounds"), span).with_help(format!(
            "the list has {} element{}",
            l.len(),
            if l.len() == 1 { "" } else { "s" }
        )));
    }
    e.force(&l[n as usize])
}

fn prim_filter(e: &mut Evaluator, a: &[Thunk], span: Span) -> EResult<Value> {
    let f = function(e, &a[0], "the first argument of `filter`", span)?;
    let mut out = Vec::new();
    for t in list(e, &a[1], "the second argument of `filter`", span)?.iter() {
        let r = e.call(f.clone(), t.clone(), span)?;
        if boolean(r, "the predicate of `filter`", span)? {
            out.push(t.clone());
        }
    }
    Ok(list_value(out))
}

fn prim_foldl(e: &mut Evaluator, a: &[Thunk], span: Span) -> EResult<Value> {
    let f = function(e, &a[0], "the first argument of `foldl'`", span)?;
    let mut acc = a[1].clone();
    let l = list(e, &a[2], "the third argument of `foldl'`", span)?;
    if l.is_empty() {
        return e.force(&acc);
    }
    for t in l.iter() {
        let g = e.call(f.clone(), acc, span)?;
        let v = e.call(g, t.clone(), span)?;
        acc = Thunk::ready(v);
    }
    e.force(&acc)
}

fn prim_from_json(e: &mut Evaluator, a: &[Thunk], span: Span) -> EResult<Value> {
    let s = string(e, &a[0], "the argument of `fromJSON`", span)?;
    let j: serde_json::Value =
        serde_json::from_str(&s).map_err(|err| fail(ErrorKind::Json, format!("invalid JSON: {err}"), span))?;
    Ok(from_json(&j))
}

/// A JSON value as a language value.
pub fn from_json(j: &serde_json::Value) -> Value {
    match j {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        // serde_json keeps integer literals as integers and anything with `.` or an exponent as
        // a float, which is Nix's rule too. Nix 2.8 (the oracle) reads an integer from 2^63 to
        // 2^64 - 1 as unsigned and wraps it into a negative integer; a larger one is a float.
        serde_json::Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Value::Int(i),
            (None, Some(u)) => Value::Int(u as i64),
            (None, None) => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        serde_json::Value::String(s) => str_value(s),
        serde_json::Value::Array(items) => list_value(items.iter().map(|x| Thunk::ready(from_json(x))).collect()),
        serde_json::Value::Object(m) => {
            let mut entries: Vec<Attr> = m
                .iter()
                .map(|(k, v)| Attr { name: Rc::from(k.as_str()), value: Thunk::ready(from_json(v)), span: None })
                .collect();
            entries.sort_by(|a, b| a.name.cmp(&b.name));
            entries.dedup_by(|a, b| a.name == b.name);
            Value::Attrs(Rc::new(Attrs::from_sorted(entries)))
        }
    }
}

fn prim_function_args(e: &mut Evaluator, a: &[Thunk], span: Span) -> EResult<Value> {
    match e.force(&a[0])? {
        Value::Lambda(c) => {
            let entries = c
                .formals()
                .unwrap_or_default()
                .into_iter()
                .map(|(n, has_default)| Attr { name: n, value: Thunk::ready(Value::Bool(has_default)), span: None })
                .collect::<Vec<_>>();
            let mut entries = entries;
            entries.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(Value::Attrs(Rc::new(Attrs::from_sorted(entries))))
        }
        Value::PrimOp(_) => Ok(Value::Attrs(Rc::new(Attrs::default()))),
        v => Err(type_err("a function", &v, span)),
    }
}

fn prim_gen_list(e: &mut Evaluator, a: &[Thunk], span: Span) -> EResult<Value> {
    let f = &a[0];
    let n = int(e, &a[1], "the length given to `genList`", span)?;
    if n < 0 {
        return Err(fail(ErrorKind::Argument, format!("cannot create a list of length {n}"), span));
    }
    // A length no memory can hold is an error here, not a capacity-overflow panic or an abort.
    let mut items = Vec::new();
    if usize::try_from(n).ok().is_none_or(|n| items.try_reserve_exact(n).is_err()) {
        return Err(fail(ErrorKind::Argument, format!("a list of length {n} does not fit in memory"), span)
            .with_help("`genList` builds every element's slot at once; ask for a shorter list"));
    }
    items.extend((0..n).map(|i| Thunk::apply(f.clone(), vec![Thunk::ready(Value::Int(i))], span)));
    Ok(list_value(items))
}

fn prim_get_attr(e: &mut Evaluator, a: &[Thunk], span: Span) -> EResult<Value> {
    let name = string(e, &a[0], "the attribute name for `getAttr`", span)?;
    let s = attrs(e, &a[1], "the second argument of `getAttr`", span)?;
    match s.get(&name) {
        Some(x) => {
            let t = x.value.clone();
            e.force(&t)
        }
        None => Err(missing_attr(&name, &s, span)),
    }
}

fn prim_group_by(e: &mut Evaluator, a: &[Thunk], span: Span) -> EResult<Value> {
    let f = function(e, &a[0], "the first argument of `groupBy`", span)?;
    let mut groups: Vec<(Rc<str>, Vec<Thunk>)> = Vec::new();
    let mut index: HashMap<Rc<str>, usize> = HashMap::new();
    for t in list(e, &a[1], "the second argument of `groupBy`", span)?.iter() {
        let k = match e.call(f.clone(), t.clone(), span)? {
            Value::String(s) => s,
            v => return Err(type_err("a string from the function given to `groupBy`", &v, span)),
        };
        match index.get(&k) {
            Some(i) => groups[*i].1.push(t.clone()),
            None => {
                index.insert(k.clone(), groups.len());
                groups.push((k, vec![t.clone()]));
            }
        }
    }
    let mut entries: Vec<Attr> =
        groups.into_iter().map(|(k, v)| Attr { name: k, value: Thunk::ready(list_value(v)), span: None }).collect();
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Value::Attrs(Rc::new(Attrs::from_sorted(entries))))
}

fn prim_has_attr(e: &mut Evaluator, a: &[Thunk], span: Span) -> EResult<Value> {
    let name = string(e, &a[0], "the attribute name for `hasAttr`", span)?;
    let s = attrs(e, &a[1], "the second argument of `hasAttr`", span)?;
    Ok(Value::Bool(s.get(&name).is_some()))
}

fn prim_head(e: &mut Evaluator, a: &[Thunk], span: Span) -> EResult<Value> {
    let l = list(e, &a[0], "the argument of `head`", span)?;
    match l.first() {
        Some(t) => e.force(t),
        None => Err(fail(ErrorKind::Index, "`head` called on an empty list", span)
            .with_help("check the list is non-empty first, e.g. `if xs == [ ] then ... else head xs`")),
    }
}

fn prim_tail(e: &mut Evaluator, a: &[Thunk], span: Span) -> EResult<Value> {
    let l = list(e, &a[0], "the argument of `tail`", span)?;
    if l.is_empty() {
        return Err(fail(ErrorKind::Index, "`tail` called on an empty list", span));
    }
    Ok(list_value(l[1..].to_vec()))
}

fn prim_import(e: &mut Evaluator, a: &[Thunk], span: Span) -> EResult<Value> {
    let p = match e.force(&a[0])? {
        Value::Path(p) => p,
        Value::String(s) if s.starts_with('/') => s,
        v => {
            return Err(type_err("a path to import", &v, span)
                .with_help("import takes a path such as `./services.nix` or `<std>`"));
        }
    };
    e.import_path(Path::new(&*p), Some(span))
}

fn prim_intersect_attrs(e: &mut Evaluator, a: &[Thunk], span: Span) -> EResult<Value> {
    let x = attrs(e, &a[0], "the first argument of `intersectAttrs`", span)?;
    let y = attrs(e, &a[1], "the second argument of `intersectAttrs`", span)?;
    let entries: Vec<Attr> = y.iter().filter(|b| x.get(&b.name).is_some()).cloned().collect();
    Ok(Value::Attrs(Rc::new(Attrs::from_sorted(entries))))
}

fn is(e: &mut Evaluator, a: &[Thunk], f: fn(&Value) -> bool) -> EResult<Value> {
    let v = e.force(&a[0])?;
    Ok(Value::Bool(f(&v)))
}

fn prim_length(e: &mut Evaluator, a: &[Thunk], span: Span) -> EResult<Value> {
    Ok(Value::Int(list(e, &a[0], "the argument of `length`", span)?.len() as i64))
}

fn prim_less_than(e: &mut Evaluator, a: &[Thunk], span: Span) -> EResult<Value> {
    let x = e.force(&a[0])?;
    let y = e.force(&a[1])?;
    Ok(Value::Bool(e.less_than(&x, &y, span)?))
}

fn prim_list_to_attrs(e: &mut Evaluator, a: &[Thunk], span: Span) -> EResult<Value> {
    let mut entries: Vec<Attr> = Vec::new();
    let mut seen: HashMap<Rc<str>, ()> = HashMap::new();
    for t in list(e, &a[0], "the argument of `listToAttrs`", span)?.iter() {
        let item = attrs(e, t, "an element of the list given to `listToAttrs`", span)?;
        let Some(n) = item.get("name") else {
            return Err(
                missing_attr("name", &item, span).with_help("each element must be `{ name = ...; value = ...; }`")
            );
        };
        let name = string(e, &n.value.clone(), "the `name` of a `listToAttrs` element", span)?;
        let Some(v) = item.get("value") else {
            return Err(
                missing_attr("value", &item, span).with_help("each element must be `{ name = ...; value = ...; }`")
            );
        };
        // The first occurrence of a name wins.
        if seen.insert(name.clone(), ()).is_none() {
            entries.push(Attr { name, value: v.value.clone(), span: v.span });
        }
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Value::Attrs(Rc::new(Attrs::from_sorted(entries))))
}

fn prim_map(e: &mut Evaluator, a: &[Thunk], span: Span) -> EResult<Value> {
    let f = &a[0];
    let l = list(e, &a[1], "the second argument of `map`", span)?;
    Ok(list_value(l.iter().map(|t| Thunk::apply(f.clone(), vec![t.clone()], span)).collect()))
}

fn prim_map_attrs(e: &mut Evaluator, a: &[Thunk], span: Span) -> EResult<Value> {
    let f = &a[0];
    let s = attrs(e, &a[1], "the second argument of `mapAttrs`", span)?;
    let entries = s
        .iter()
        .map(|x| Attr {
            name: x.name.clone(),
            value: Thunk::apply(f.clone(), vec![Thunk::ready(Value::String(x.name.clone())), x.value.clone()], span),
            span: x.span,
        })
        .collect();
    Ok(Value::Attrs(Rc::new(Attrs::from_sorted(entries))))
}

fn regex(e: &mut Evaluator, re: &str, anchored: bool, span: Span) -> EResult<Rc<regex::bytes::Regex>> {
    let key = format!("{}{re}", if anchored { "^" } else { "" });
    if let Some(r) = e.regexes.get(&key) {
        return Ok(r.clone());
    }
    // POSIX extended regular expressions over bytes, as Nix's `std::regex` sees them: `.` matches any
    // one byte (newlines too), `[[:alpha:]]` is ASCII, and `é` in a pattern is its two UTF-8 bytes
    // (so `[é]` is a class of two bytes and `é*` repeats the last one).
    let bytes = byte_pattern(re);
    let pattern = if anchored { format!("(?s-u)^(?:{bytes})$") } else { format!("(?s-u){bytes}") };
    let r = regex::bytes::Regex::new(&pattern).map_err(|err| {
        fail(ErrorKind::Regex, format!("invalid regular expression `{re}`"), span).with_help(err.to_string())
    })?;
    let r = Rc::new(r);
    e.regexes.insert(key, r.clone());
    Ok(r)
}

/// `re` with every non-ASCII character written as its UTF-8 bytes (`\xC3\xA9`).
fn byte_pattern(re: &str) -> String {
    let mut out = String::with_capacity(re.len());
    let mut escaped = false;
    for c in re.chars() {
        if c.is_ascii() {
            if escaped {
                out.push('\\');
            }
            escaped = c == '\\' && !escaped;
            if !escaped {
                out.push(c);
            }
        } else if escaped {
            // `\é` escapes a lone byte, which Nix refuses; so does `regex`.
            escaped = false;
            out.push('\\');
            out.push(c);
        } else {
            let mut buf = [0; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("\\x{b:02X}"));
            }
        }
    }
    if escaped {
        out.push('\\');
    }
    out
}

fn captures_list(c: &regex::bytes::Captures) -> Value {
    list_value(
        c.iter()
            .skip(1)
            .map(|m| Thunk::ready(m.map_or(Value::Null, |m| str_value(String::from_utf8_lossy(m.as_bytes())))))
            .collect(),
    )
}

fn prim_match(e: &mut Evaluator, a: &[Thunk], span: Span) -> EResult<Value> {
    let re = string(e, &a[0], "the regular expression of `match`", span)?;
    let s = string(e, &a[1], "the string given to `match`", span)?;
    let r = regex(e, &re, true, span)?;
    Ok(match r.captures(s.as_bytes()) {
        Some(c) => captures_list(&c),
        None => Value::Null,
    })
}

fn prim_split(e: &mut Evaluator, a: &[Thunk], span: Span) -> EResult<Value> {
    let re = string(e, &a[0], "the regular expression of `split`", span)?;
    let s = string(e, &a[1], "the string given to `split`", span)?;
    let r = regex(e, &re, false, span)?;
    let mut out = Vec::new();
    let mut last = 0;
    let b = s.as_bytes();
    for c in r.captures_iter(b) {
        let m = c.get(0).expect("group 0 always matches");
        out.push(Thunk::ready(str_value(String::from_utf8_lossy(&b[last..m.start()]))));
        out.push(Thunk::ready(captures_list(&c)));
        last = m.end();
    }
    out.push(Thunk::ready(str_value(String::from_utf8_lossy(&b[last..]))));
    Ok(list_value(out))
}

fn prim_partition(e: &mut Evaluator, a: &[Thunk], span: Span) -> EResult<Value> {
    let f = function(e, &a[0], "the first argument of `partition`", span)?;
    let (mut right, mut wrong) = (Vec::new(), Vec::new());
    for t in list(e, &a[1], "the second argument of `partition`", span)?.iter() {
        let r = e.call(f.clone(), t.clone(), span)?;
        if boolean(r, "the predicate of `partition`", span)? {
            right.push(t.clone());
        } else {
            wrong.push(t.clone());
        }
    }
    let entries = vec![
        Attr { name: Rc::from("right"), value: Thunk::ready(list_value(right)), span: None },
        Attr { name: Rc::from("wrong"), value: Thunk::ready(list_value(wrong)), span: None },
    ];
    Ok(Value::Attrs(Rc::new(Attrs::from_sorted(entries))))
}

fn checked_path(e: &mut Evaluator, t: &Thunk, span: Span) -> EResult<std::path::PathBuf> {
    let (p, _) = string_or_path(e, t, span)?;
    if !p.starts_with('/') {
        return Err(fail(ErrorKind::Type, format!("`{p}` is not an absolute path"), span)
            .with_help("use a path literal such as `./file.txt`"));
    }
    let path = std::path::PathBuf::from(&*p);
    e.check_access(&path, Some(span))?;
    Ok(path)
}

fn prim_path_exists(e: &mut Evaluator, a: &[Thunk], span: Span) -> EResult<Value> {
    let path = checked_path(e, &a[0], span)?;
    Ok(Value::Bool(e.io.file_kind(&path).is_ok()))
}

fn prim_read_file(e: &mut Evaluator, a: &[Thunk], span: Span) -> EResult<Value> {
    let path = checked_path(e, &a[0], span)?;
    match e.io.read_to_string(&path) {
        Ok(s) => Ok(str_value(s)),
        Err(err) => Err(fail(
            ErrorKind::Io,
            format!("cannot read `{}`: {}", e.display_name(&path), crate::eval::io_reason(&err)),
            span,
        )
        .with_help("check the path; relative paths are resolved against the file that contains them")),
    }
}

fn prim_remove_attrs(e: &mut Evaluator, a: &[Thunk], span: Span) -> EResult<Value> {
    let s = attrs(e, &a[0], "the first argument of `removeAttrs`", span)?;
    let mut names = Vec::new();
    for t in list(e, &a[1], "the second argument of `removeAttrs`", span)?.iter() {
        names.push(string(e, t, "an attribute name given to `removeAttrs`", span)?);
    }
    let entries: Vec<Attr> = s.iter().filter(|x| !names.contains(&x.name)).cloned().collect();
    Ok(Value::Attrs(Rc::new(Attrs::from_sorted(entries))))
}

fn prim_replace_strings(e: &mut Evaluator, a: &[Thunk], span: Span) -> EResult<Value> {
    let from_l = list(e, &a[0], "the first argument of `replaceStrings`", span)?;
    let to_l = list(e, &a[1], "the second argument of `replaceStrings`", span)?;
    if from_l.len() != to_l.len() {
        return Err(fail(ErrorKind::Argument, "`replaceStrings` needs two lists of the same length", span)
            .with_help(format!("the first has {} elements, the second {}", from_l.len(), to_l.len())));
    }
    let mut from = Vec::with_capacity(from_l.len());
    for t in from_l.iter() {
        from.push(string(e, t, "a pattern given to `replaceStrings`", span)?);
    }
    let mut to: Vec<Option<Rc<str>>> = vec![None; to_l.len()];
    let s = string(e, &a[2], "the string given to `replaceStrings`", span)?;
    let b = s.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(b.len());
    // Nix's algorithm: at each byte position (and once at the end) the first pattern that matches
    // is replaced; an empty pattern matches everywhere.
    let mut p = 0;
    while p <= b.len() {
        match from.iter().position(|pat| b[p..].starts_with(pat.as_bytes())) {
            Some(k) => {
                if to[k].is_none() {
                    to[k] = Some(string(e, &to_l[k], "a replacement given to `replaceStrings`", span)?);
                }
                out.extend_from_slice(to[k].as_deref().unwrap_or("").as_bytes());
                if from[k].is_empty() {
                    if p < b.len() {
                        out.push(b[p]);
                    }
                    p += 1;
                } else {
                    p += from[k].len();
                }
            }
            None => {
                if p < b.len() {
                    out.push(b[p]);
                }
                p += 1;
            }
        }
    }
    Ok(str_value(String::from_utf8_lossy(&out)))
}

fn prim_sort(e: &mut Evaluator, a: &[Thunk], span: Span) -> EResult<Value> {
    let f = function(e, &a[0], "the comparator given to `sort`", span)?;
    let l = list(e, &a[1], "the list given to `sort`", span)?;
    let items: Vec<Thunk> = l.iter().cloned().collect();
    let sorted = merge_sort(e, items, &f, span)?;
    Ok(list_value(sorted))
}

/// A stable merge sort whose comparator may fail.
fn merge_sort(e: &mut Evaluator, v: Vec<Thunk>, f: &Value, span: Span) -> EResult<Vec<Thunk>> {
    if v.len() <= 1 {
        return Ok(v);
    }
    let mut v = v;
    let right = v.split_off(v.len() / 2);
    let left = merge_sort(e, v, f, span)?;
    let right = merge_sort(e, right, f, span)?;
    let mut out = Vec::with_capacity(left.len() + right.len());
    let (mut i, mut j) = (0, 0);
    while i < left.len() && j < right.len() {
        // Take from the right only when it is strictly less: keeps equal elements in order.
        let g = e.call(f.clone(), right[j].clone(), span)?;
        let r = e.call(g, left[i].clone(), span)?;
        if boolean(r, "the comparator of `sort`", span)? {
            out.push(right[j].clone());
            j += 1;
        } else {
            out.push(left[i].clone());
            i += 1;
        }
    }
    out.extend_from_slice(&left[i..]);
    out.extend_from_slice(&right[j..]);
    Ok(out)
}

fn prim_string_length(e: &mut Evaluator, a: &[Thunk], span: Span) -> EResult<Value> {
    let v = e.force(&a[0])?;
    let mut s = String::new();
    e.coerce_to_string(&v, &mut s, false, span)?;
    Ok(Value::Int(s.len() as i64))
}

fn prim_substring(e: &mut Evaluator, a: &[Thunk], span: Span) -> EResult<Value> {
    let start = int(e, &a[0], "the start of `substring`", span)?;
    let len = int(e, &a[1], "the length of `substring`", span)?;
    let v = e.force(&a[2])?;
    let mut s = String::new();
    e.coerce_to_string(&v, &mut s, false, span)?;
    if start < 0 {
        return Err(fail(ErrorKind::Argument, format!("negative start position {start} in `substring`"), span));
    }
    let b = s.as_bytes();
    let start = (start as usize).min(b.len());
    let end = if len < 0 { b.len() } else { start.saturating_add(len as usize).min(b.len()) };
    // Byte offsets, as in Nix; a cut through a multi-byte character keeps the valid part.
    Ok(str_value(String::from_utf8_lossy(&b[start..end])))
}

fn prim_to_json(e: &mut Evaluator, a: &[Thunk], span: Span) -> EResult<Value> {
    let v = e.force(&a[0])?;
    let mut out = String::new();
    print::write_json(e, &v, &mut out, span)?;
    Ok(str_value(out))
}

fn prim_to_string(e: &mut Evaluator, a: &[Thunk], span: Span) -> EResult<Value> {
    let v = e.force(&a[0])?;
    let mut s = String::new();
    e.coerce_to_string(&v, &mut s, true, span)?;
    Ok(str_value(s))
}

fn prim_trace(e: &mut Evaluator, a: &[Thunk], span: Span) -> EResult<Value> {
    let v = e.force(&a[0])?;
    let shown = match &v {
        Value::String(s) => s.to_string(),
        other => print::to_text(e, other, span, false)?,
    };
    e.io.trace(&shown);
    e.force(&a[1])
}

fn prim_try_eval(e: &mut Evaluator, a: &[Thunk], _span: Span) -> EResult<Value> {
    let (ok, v) = match e.force(&a[0]) {
        Ok(v) => (true, v),
        Err(err) if err.kind.catchable() => (false, Value::Bool(false)),
        Err(err) => return Err(err),
    };
    let entries = vec![
        Attr { name: Rc::from("success"), value: Thunk::ready(Value::Bool(ok)), span: None },
        Attr { name: Rc::from("value"), value: Thunk::ready(v), span: None },
    ];
    Ok(Value::Attrs(Rc::new(Attrs::from_sorted(entries))))
}

fn prim_type_of(e: &mut Evaluator, a: &[Thunk], _span: Span) -> EResult<Value> {
    Ok(str_value(e.force(&a[0])?.type_name()))
}
