//! Property tests: no input makes the parser or evaluator panic, overflow the stack or hang, and
//! every diagnostic they give renders. Random bytes, random token soups (integers at the 64-bit
//! edges, multi-byte text, escapes) and deeply nested input, a bounded number of cases per run
//! (`PROPTEST_CASES` raises it).

use miette::{GraphicalReportHandler, GraphicalTheme, NarratableReportHandler};
use pipeline_lang::io::MemoryIo;
use pipeline_lang::{Error, ErrorKind, Evaluator, Options};
use proptest::prelude::*;
use std::path::Path;

/// Parse, evaluate and print; every outcome but a panic is fine. Each error and warning is rendered
/// as the binary renders it (`src/output.rs`: graphical, one line of context) and as narration, so a
/// span inside a multi-byte character or past the end of the source panics here, not in a terminal.
fn run(src: &str) {
    let io = MemoryIo::default();
    let mut ev = Evaluator::new(&io, Options::default());
    let result = ev.eval_source(Path::new("/fuzz/input.nix"), src).and_then(|v| {
        ev.force_deep(&v)?;
        ev.to_json(&v)?;
        ev.to_text(&v)
    });
    for w in ev.take_warnings() {
        render(&w);
    }
    if let Err(e) = result {
        render(&e);
    }
}

/// Render `e` graphically at the binary's width and a narrow one (labels wrap), and narrated.
fn render(e: &Error) {
    for width in [100, 24] {
        let handler = GraphicalReportHandler::new_themed(GraphicalTheme::unicode_nocolor())
            .with_width(width)
            .with_context_lines(1);
        let mut out = String::new();
        handler.render_report(&mut out, e).expect("graphical rendering");
        // Messages that quote names from the source keep to one line (a thrown one may not).
        let message = e.to_string();
        let quotes_names = matches!(e.kind(), ErrorKind::Syntax | ErrorKind::DuplicateAttr | ErrorKind::MissingAttr);
        assert!(!quotes_names || !message.contains('\n'), "a message is one line: {message:?}");
    }
    let mut out = String::new();
    NarratableReportHandler::new().render_report(&mut out, e).expect("narrated rendering");
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
    // integers at and past the 64-bit edges, floats out of range
    "9223372036854775807",
    "9223372036854775808",
    "99999999999999999999",
    "-9223372036854775807",
    "(-9223372036854775807 - 1)",
    "4611686018427387904",
    "1.0e400",
    "1.0e-310",
    "builtins.add",
    "builtins.mul",
    "builtins.div",
    // multi-byte text, quoted and (wrongly) unquoted
    r#""é""#,
    r#""日本🙂""#,
    r#""🙂${"#,
    "é",
    "日本",
    "🙂",
    r#"{ "é" = 1; }"#,
    r#"."日本""#,
    "''\n  ü ${x} ß\n''",
    "#🙂\n",
    "/*日本*/",
    "\u{301}",
    "\u{200b}",
    "\t",
    "\r\n",
    // escapes in both kinds of string, and next to interpolations
    r#""\n\t\"\$\\""#,
    r#""\${x}""#,
    r#""$${x}""#,
    r#""\é""#,
    r#""a\"#,
    "''$${x}''",
    "''''${x}''",
    "'''''",
    r"''\n''",
    r"''a''\é''",
    "''\n\t''${''",
    r#"builtins.match "[é]""#,
    r#"builtins.split """#,
];

/// Characters of two, three and four bytes, combining and zero-width ones, and an emoji sequence.
const WIDE: &[&str] = &["é", "ß", "日", "本語", "🙂", "e\u{301}", "\u{200b}", "\u{feff}", "👩‍👩‍👧"];

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

    /// Multi-byte characters glued to tokens, so spans start and end right beside them; and the
    /// same source cut short at a character boundary, so it ends mid-construct.
    #[test]
    fn multi_byte_soups_render_their_errors(
        parts in prop::collection::vec((prop::sample::select(TOKENS), prop::sample::select(WIDE), any::<bool>()), 0..30),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut src = String::new();
        for (tok, wide, glue) in parts {
            src.push_str(tok);
            if glue {
                src.push_str(wide);
            }
            src.push(' ');
        }
        run(&src);
        let mut at = cut.index(src.len() + 1);
        while !src.is_char_boundary(at) {
            at -= 1;
        }
        run(&src[..at]);
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
