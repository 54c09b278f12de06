//! Printing values as Nix-like text and as JSON, byte for byte as `nix-instantiate --eval --strict`
//! prints them (floats as C++ streams print them: six significant digits).

use crate::error::{ErrorKind, EvalError};
use crate::eval::{EResult, Evaluator};
use crate::span::Span;
use crate::value::Value;
use std::fmt::Write;

/// A float as `std::ostream << double` prints it (`%g`, precision 6).
pub fn format_float(v: f64) -> String {
    if v.is_nan() {
        return if v.is_sign_negative() { "-nan".into() } else { "nan".into() };
    }
    if v.is_infinite() {
        return if v < 0.0 { "-inf".into() } else { "inf".into() };
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    let sci = format!("{v:.5e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        let m = strip_zeros(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{m}e{sign}{:02}", exp.abs())
    } else {
        let prec = (5 - exp).max(0) as usize;
        strip_zeros(&format!("{v:.prec$}")).to_string()
    }
}

fn strip_zeros(s: &str) -> &str {
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.') } else { s }
}

fn is_identifier(s: &str) -> bool {
    const KEYWORDS: [&str; 10] = ["if", "then", "else", "assert", "with", "let", "in", "rec", "inherit", "or"];
    let b = s.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'\'' | b'-'))
        && !KEYWORDS.contains(&s)
}

/// An attribute name as it is written in source, for messages: as is when it is an identifier,
/// else quoted and escaped (so a newline in it cannot break the message's line).
pub fn attr_name(name: &str) -> String {
    if is_identifier(name) {
        return name.to_string();
    }
    let mut quoted = String::new();
    quote_string(name, &mut quoted);
    quoted
}

/// A string literal as Nix prints it.
pub fn quote_string(s: &str, out: &mut String) {
    out.push('"');
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '$' if chars.peek() == Some(&'{') => out.push_str("\\$"),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A string as a JSON string literal (Nix's escaping: control characters as `\u00XX`).
pub fn json_string(s: &str, out: &mut String) {
    out.push('"');
    // Fast path: most strings need no escaping at all.
    if !s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        out.push_str(s);
        out.push('"');
        return;
    }
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Null, Booleans and numbers print the same way as text and as JSON. Returns false for others.
fn write_scalar(v: &Value, out: &mut String) -> bool {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) => out.push_str(&format_float(*f)),
        _ => return false,
    }
    true
}

/// Text form of a value. `strict`: force everything (as `--strict`); otherwise print thunks as `«thunk»`.
pub fn to_text(e: &mut Evaluator, v: &Value, span: Span, strict: bool) -> EResult<String> {
    let mut out = String::new();
    write_text(e, v, &mut out, span, strict, 0)?;
    Ok(out)
}

fn write_text(e: &mut Evaluator, v: &Value, out: &mut String, span: Span, strict: bool, depth: usize) -> EResult<()> {
    if depth > MAX_PRINT_DEPTH {
        return Err(too_deep(span));
    }
    stacker::maybe_grow(64 * 1024, 1024 * 1024, || match v {
        Value::Null | Value::Bool(_) | Value::Int(_) | Value::Float(_) => {
            write_scalar(v, out);
            Ok(())
        }
        Value::String(s) => {
            quote_string(s, out);
            Ok(())
        }
        Value::Path(p) => {
            out.push_str(p);
            Ok(())
        }
        Value::Lambda(_) => {
            out.push_str("<LAMBDA>");
            Ok(())
        }
        Value::PrimOp(p) => {
            out.push_str(if p.args.is_empty() { "<PRIMOP>" } else { "<PRIMOP-APP>" });
            Ok(())
        }
        Value::List(items) => {
            out.push_str("[ ");
            for t in items.iter() {
                if strict || t.value().is_some() {
                    let x = e.force(t)?;
                    write_text(e, &x, out, span, strict, depth + 1)?;
                } else {
                    out.push_str("«thunk»");
                }
                out.push(' ');
            }
            out.push(']');
            Ok(())
        }
        Value::Attrs(a) => {
            out.push_str("{ ");
            for attr in a.iter() {
                if is_identifier(&attr.name) {
                    out.push_str(&attr.name);
                } else {
                    quote_string(&attr.name, out);
                }
                out.push_str(" = ");
                if strict || attr.value.value().is_some() {
                    let x = e.force(&attr.value)?;
                    write_text(e, &x, out, span, strict, depth + 1)?;
                } else {
                    out.push_str("«thunk»");
                }
                out.push_str("; ");
            }
            out.push('}');
            Ok(())
        }
    })
}

/// Values nested deeper than this are refused when printed (a cyclic value would never end).
pub const MAX_PRINT_DEPTH: usize = 10_000;

fn too_deep(span: Span) -> Box<EvalError> {
    Box::new(
        EvalError::new(ErrorKind::Other, format!("value nested more than {MAX_PRINT_DEPTH} levels deep, or cyclic"))
            .at(span)
            .help("a set that contains itself (for example `let x = { inherit x; }; in x`) has no finite form"),
    )
}

/// JSON form of a value, forcing it completely (`builtins.toJSON`, `--json`).
pub fn write_json(e: &mut Evaluator, v: &Value, out: &mut String, span: Span) -> EResult<()> {
    write_json_at(e, v, out, span, 0)
}

fn write_json_at(e: &mut Evaluator, v: &Value, out: &mut String, span: Span, depth: usize) -> EResult<()> {
    if depth > MAX_PRINT_DEPTH {
        return Err(too_deep(span));
    }
    stacker::maybe_grow(64 * 1024, 1024 * 1024, || match v {
        Value::Null | Value::Bool(_) | Value::Int(_) | Value::Float(_) => {
            write_scalar(v, out);
            Ok(())
        }
        Value::String(s) => {
            json_string(s, out);
            Ok(())
        }
        Value::Path(p) => {
            json_string(p, out);
            Ok(())
        }
        Value::List(items) => {
            out.push('[');
            for (i, t) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let x = e.force(t)?;
                write_json_at(e, &x, out, span, depth + 1)?;
            }
            out.push(']');
            Ok(())
        }
        Value::Attrs(a) => {
            if let Some(p) = a.get("outPath") {
                let x = e.force(&p.value.clone())?;
                return write_json_at(e, &x, out, span, depth + 1);
            }
            out.push('{');
            for (i, attr) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_string(&attr.name, out);
                out.push(':');
                let x = e.force(&attr.value).map_err(crate::error::in_attr(attr))?;
                write_json_at(e, &x, out, span, depth + 1).map_err(crate::error::in_attr(attr))?;
            }
            out.push('}');
            Ok(())
        }
        Value::Lambda(_) | Value::PrimOp(_) => Err(Box::new(
            EvalError::new(ErrorKind::Type, "cannot convert a function to JSON")
                .at(span)
                .help("functions have no JSON form; call the function or leave it out of the value"),
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::format_float;

    #[test]
    fn floats_print_like_cpp_streams() {
        let cases = [
            (1.0, "1"),
            (2.5, "2.5"),
            (1.5e20, "1.5e+20"),
            (1.0 / 3.0, "0.333333"),
            (1e8, "1e+08"),
            (1e-6, "1e-06"),
            (1.5e-7, "1.5e-07"),
            (0.1 + 0.2, "0.3"),
            (123456789.123, "1.23457e+08"),
            (123456.7, "123457"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (-2.5, "-2.5"),
            (999999.5, "1e+06"),
        ];
        for (v, want) in cases {
            assert_eq!(format_float(v), want, "{v}");
        }
    }
}
