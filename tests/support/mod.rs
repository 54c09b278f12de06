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
