//! Deep recursion (the stack grows on the heap, within a budget) and the warnings for deprecated
//! syntax, through the crate's public API.

use miette::Diagnostic;
use pipeline_lang::io::MemoryIo;
use pipeline_lang::{ErrorKind, Evaluator, Options};
use std::path::Path;

/// Evaluate `src` completely and print it as JSON, on a thread with a small stack of its own: the
/// evaluator must not depend on the thread's stack size.
fn eval_on_small_stack(src: &'static str) -> (Result<String, (ErrorKind, String)>, Vec<String>) {
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || {
            let io = MemoryIo::default();
            let mut ev = Evaluator::new(&io, Options::default());
            let r = ev
                .eval_source(Path::new("/t/input.nix"), src)
                .and_then(|v| ev.force_deep(&v).map(|()| v))
                .and_then(|v| ev.to_json(&v))
                .map_err(|e| (e.kind(), e.to_string()));
            let warnings = ev
                .take_warnings()
                .iter()
                .map(|w| format!("{:?} {} {}", w.severity(), w.code().map(|c| c.to_string()).unwrap_or_default(), w))
                .collect();
            (r, warnings)
        })
        .expect("spawn")
        .join()
        .expect("the evaluator panicked")
}

#[test]
fn recursion_100000_calls_deep_evaluates() {
    let (r, _) = eval_on_small_stack("let f = n: if n == 100000 then n else f (n + 1); in f 0");
    assert_eq!(r, Ok("100000".to_string()));
}

#[test]
fn non_tail_recursion_over_a_long_list_evaluates() {
    let src = "let xs = builtins.genList (i: i) 50000; n = builtins.length xs; \
               sum = i: if i == n then 0 else builtins.elemAt xs i + sum (i + 1); in sum 0";
    let (r, _) = eval_on_small_stack(src);
    assert_eq!(r, Ok("1249975000".to_string()));
}

#[test]
fn infinite_recursion_is_a_clean_error() {
    let (r, _) = eval_on_small_stack("let f = n: 1 + f (n + 1); in f 0");
    let (kind, msg) = r.expect_err("must fail");
    assert_eq!(kind, ErrorKind::StackOverflow);
    assert!(msg.starts_with("stack overflow"), "{msg}");
}

#[test]
fn a_long_chain_of_lazy_values_evaluates() {
    // `acc.v + 1`, 200,000 times over: forcing the last `v` nests as deeply, with no call in between.
    let (r, _) = eval_on_small_stack(
        "(builtins.foldl' (acc: x: { v = acc.v + 1; }) { v = 0; } (builtins.genList (i: i) 200000)).v",
    );
    assert_eq!(r, Ok("200000".to_string()));
}

#[test]
fn or_as_a_variable_is_accepted_with_one_warning_per_place() {
    let (r, w) = eval_on_small_stack("let or = 1; in [ (x: x) or ((y: y) or) ]");
    assert_eq!(r, Ok("[1,1]".to_string()));
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(w[0].starts_with("Some(Warning) pipeline::deprecated `or` used as a variable name"), "{w:?}");
}

#[test]
fn no_warning_for_or_as_default_or_attribute_name() {
    let (r, w) = eval_on_small_stack("let s = { or = 1; }; in [ s.or (s.x or 2) (s ? or) ]");
    assert_eq!(r, Ok("[1,2,true]".to_string()));
    assert!(w.is_empty(), "{w:?}");
}

#[test]
fn try_eval_catches_what_nix_2_8_catches() {
    let (r, _) =
        eval_on_small_stack("map (x: (builtins.tryEval x).success) [ (throw \"t\") (assert false; 1) <missing> 1 ]");
    assert_eq!(r, Ok("[false,false,false,true]".to_string()));
    for src in ["builtins.tryEval ({ }.a)", "builtins.tryEval (abort \"a\")", "builtins.tryEval (1 + \"a\")"] {
        let (r, _) = eval_on_small_stack(src);
        assert!(r.is_err(), "{src} must not be caught: {r:?}");
    }
}
