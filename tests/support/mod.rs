//! What the tests against real systems share.

use std::process::Command;

/// Whether the registry on 127.0.0.1:5000 and a Docker engine are up (`scripts/start-services` starts
/// both). When they are not, the test says it was skipped, unless PIPELINE_REQUIRE_DOCKER is set.
pub fn services_up() -> bool {
    let registry = std::net::TcpStream::connect("127.0.0.1:5000").is_ok();
    let docker = Command::new("docker").arg("info").output().is_ok_and(|o| o.status.success());
    if registry && docker {
        return true;
    }
    assert!(
        std::env::var_os("PIPELINE_REQUIRE_DOCKER").is_none(),
        "PIPELINE_REQUIRE_DOCKER is set but the registry (127.0.0.1:5000: {registry}) or Docker engine ({docker}) is not up; run scripts/start-services"
    );
    eprintln!("skipped: no registry on 127.0.0.1:5000 or no Docker engine (scripts/start-services starts both)");
    false
}

/// Compare `actual` with the expected file at `path`; `UPDATE_EXPECT=1` rewrites it (review the diff).
#[allow(dead_code)]
pub fn expect_file(path: &std::path::Path, actual: &str) {
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, actual).expect("write expected file");
        return;
    }
    let want = std::fs::read_to_string(path)
        .unwrap_or_else(|_| panic!("missing {} (run with UPDATE_EXPECT=1)", path.display()));
    assert!(want == actual, "{}: output differs\n--- expected\n{want}\n--- actual\n{actual}", path.display());
}
