//! BuildKit through the engine, with this crate's own session: mounts, `--chmod`, secrets.

#[path = "../../tests/support/skip.rs"]
mod skip;

use futures_util::StreamExt as _;
use pipeline_executor::buildkit::{self, BuildRequest, BuilderKind, Credentials, Event};
use std::collections::BTreeMap;

fn tar_of(files: &[(&str, &str, u32)]) -> Vec<u8> {
    let mut t = tar::Builder::new(Vec::new());
    for (path, body, mode) in files {
        let mut h = tar::Header::new_gnu();
        h.set_mode(*mode);
        h.set_size(body.len() as u64);
        t.append_data(&mut h, path, body.as_bytes()).unwrap();
    }
    t.into_inner().unwrap()
}

fn engine_up() -> bool {
    let up = std::process::Command::new("docker").arg("info").output().is_ok_and(|o| o.status.success());
    if !up {
        skip::skip(skip::DOCKER, "no Docker engine answers (scripts/start-services starts one)");
    }
    up
}

#[test]
fn a_session_build_gives_its_secret_and_runs_mounts() {
    if !engine_up() {
        return;
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let docker = pipeline_executor::docker::connect().await.unwrap();
        let kind = buildkit::detect(&docker).await;
        let BuilderKind::BuildKit { endpoint, api_version, .. } = kind else { panic!("{kind:?}") };
        let secrets = BTreeMap::from([("TOKEN".to_string(), pipeline_planner::secrets::SecretValue::new("s3cr3t-value"))]);
        let session = buildkit::open_session(&endpoint, &api_version, "test", Credentials::default(), secrets).await.unwrap();
        let dockerfile = "FROM 127.0.0.1:5000/pipeline-examples/busybox:1\nRUN --mount=type=cache,target=/cache echo hi > /cache/x && cat /cache/x\nRUN --mount=type=secret,id=TOKEN test \"$(cat /run/secrets/TOKEN)\" = s3cr3t-value && echo secret-ok\nCOPY --chmod=755 run.sh /app/run.sh\nRUN ls -l /app/run.sh\n";
        let tar = tar_of(&[("Dockerfile", dockerfile, 0o644), ("run.sh", "#!/bin/sh\necho hi\n", 0o644)]);
        let req = BuildRequest { tag: "pipeline-bk-experiment:1".into(), dockerfile: "Dockerfile".into(), session: session.id.clone(), ..Default::default() };
        let mut stream = Box::pin(buildkit::build(&endpoint, &api_version, &req, tar).await.unwrap());
        let mut p = buildkit::Progress::default();
        while let Some(events) = stream.next().await {
            for e in events.unwrap() {
                for l in p.take(&e) { println!("{l}"); }
                if let Event::Failed(f) = &e { panic!("failed: {f}"); }
            }
        }
        println!("{:?}", p.line());
    });
}
