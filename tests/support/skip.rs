//! How a test that needs something from outside (a Docker engine and the registry, nix-instantiate)
//! skips, the same way in every crate's tests (included with `#[path]` where it is not in `support`).
//!
//! A requirement flag (`PIPELINE_REQUIRE_DOCKER`, `PIPELINE_REQUIRE_ORACLE`) is on when set to anything but
//! empty or `0`; `scripts/test` (what CI runs) sets both. With the flag on, a missing system fails the
//! test. With it off, the test says `skipped: ...` on the process's stderr, past the test harness's
//! output capture, so `cargo test` shows it beside the test's `ok`.

#![allow(dead_code)]

/// `PIPELINE_REQUIRE_DOCKER`: the Docker engine and the registry on 127.0.0.1:5000.
pub const DOCKER: &str = "PIPELINE_REQUIRE_DOCKER";
/// `PIPELINE_REQUIRE_ORACLE`: `nix-instantiate`.
pub const ORACLE: &str = "PIPELINE_REQUIRE_ORACLE";

/// Whether a requirement flag is on.
pub fn required(flag: &str) -> bool {
    std::env::var(flag).is_ok_and(|v| is_on(&v))
}

fn is_on(value: &str) -> bool {
    let v = value.trim();
    !v.is_empty() && v != "0"
}

/// The test cannot run (`why`): a failure when `flag` is on, else say so where the harness shows it.
pub fn skip(flag: &str, why: &str) {
    assert!(!required(flag), "{flag} is set, but {why}");
    use std::io::Write as _;
    let test = std::thread::current().name().unwrap_or("a test").to_string();
    // Not `eprintln!`: the harness captures that and shows it only for failures.
    let _ = writeln!(std::io::stderr().lock(), "skipped: {test}: {why} (set {flag}=1 to make this a failure)");
}

#[cfg(test)]
mod tests {
    #[test]
    fn flags_are_on_unless_empty_or_zero() {
        assert!(super::is_on("1"));
        assert!(super::is_on("yes"));
        assert!(!super::is_on(""));
        assert!(!super::is_on("0"));
        assert!(!super::is_on(" 0 "));
    }
}
