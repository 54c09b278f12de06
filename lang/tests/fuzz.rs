//! Property tests: no input makes the parser or evaluator panic, overflow the stack or hang.
//! Random bytes, random token soups and deeply nested input, a bounded number of cases per run
//! (`PROPTEST_CASES` raises it).

use pipeline_lang::io::MemoryIo;
use pipeline_lang::{Evaluator, Options};
use proptest::prelude::*;
use std::path::Path;

/// Parse, evaluate and print; every outcome but a panic is fine.
fn run(src: &str) {
    let io = MemoryIo::default();
    let mut ev = Evaluator::new(&io, Options::default());
    if let Ok(v) = ev.eval_source(Path::new("/fuzz/input.nix"), src)
        && ev.force_deep(&v).is_ok()
    {
        let _ = ev.to_json(&v);
        let _ = ev.to_text(&v);
    }
}

const TOKENS: &[&str] = &[
    "let",
    "in",
    "rec",
    "with",
    "inherit",
    "if",
    "then",
    "else",
    "assert",
    "or",
    "x",
    "y",
    "f",
    "a",
    "b",
    "builtins",
    "map",
    "toString",
    "import",
    "true",
    "false",
    "null",
    "0",
    "1",
    "2",
    "7",
    "1.5",
    ".5",
    "\"s\"",
    "\"${",
    "}\"",
    "''",
    "''\n  a ${x}\n''",
    "./p",
    "/abs",
    "<std>",
    "http://u",
    "{",
    "}",
    "[",
    "]",
    "(",
    ")",
    ";",
    ":",
    ",",
    ".",
    "...",
    "?",
    "@",
    "=",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "&&",
    "||",
    "->",
    "!",
    "-",
    "+",
    "*",
    "/",
    "//",
    "++",
    "${",
    "#c\n",
    "/*c*/",
    " ",
    "\n",
    "x:",
    "{ a, b ? 1 }:",
    "builtins.length",
    "builtins.head",
    "builtins.genList",
    "builtins.foldl'",
    "builtins.tryEval",
    "builtins.fromJSON",
    "builtins.toJSON",
    "builtins.match",
    "builtins.split",
    "builtins.substring",
    "throw",
    "abort",
];

fn soup() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(TOKENS), 0..60).prop_map(|t| t.join(" "))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        run(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn token_soups_never_panic(src in soup()) {
        run(&src);
    }

    #[test]
    fn nesting_of_any_depth_is_an_error_or_a_value(depth in 0usize..3000, kind in 0usize..6) {
        let (open, close) = [("(", ")"), ("[", "]"), ("{ a = ", "; }"), ("x: ", ""), ("!", ""), ("-", "")][kind];
        let src = format!("{}{}{}", open.repeat(depth), if kind == 4 { "true" } else { "1" }, close.repeat(depth));
        run(&src);
    }
}

#[test]
fn cyclic_values_print_as_an_error() {
    let io = MemoryIo::default();
    let mut ev = Evaluator::new(&io, Options::default());
    let v = ev.eval_source(Path::new("/c.nix"), "let x = { inherit x; }; in x").expect("evaluates lazily");
    let err = ev.to_json(&v).expect_err("a cycle has no JSON form");
    assert!(err.to_string().contains("cyclic"), "{err}");
}

#[test]
fn ten_thousand_levels_error_cleanly() {
    for (open, close) in [("(", ")"), ("[", "]"), ("{ a = ", "; }")] {
        let src = format!("{}1{}", open.repeat(10_000), close.repeat(10_000));
        let io = MemoryIo::default();
        let mut ev = Evaluator::new(&io, Options::default());
        let err = ev.eval_source(Path::new("/deep.nix"), &src).expect_err("too deep");
        assert!(err.to_string().contains("nested too deeply"), "{err}");
    }
}
