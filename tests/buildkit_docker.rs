//! Builds through the engine's BuildKit, end to end through the `pipeline` binary, against the real
//! engine and the registry on 127.0.0.1:5000 (`scripts/start-services`): the Dockerfile features of
//! Docker's own guides (cache, bind, tmpfs and secret mounts, `COPY --chmod`, multi-stage with a
//! target), build secrets that end up nowhere else, a secret the definitions do not give, and one build
//! per key across two runs started at the same moment.

use serde_json::Value as Json;
use std::path::Path;
use std::process::{Command, Output, Stdio};

mod support;

const BASE: &str = "127.0.0.1:5000/pipeline-examples/busybox:1";

/// A project in a temporary folder, destroyed (with its images) when dropped.
/// A project (see `support::project`) whose runs write build logs under its folder.
struct Project(support::project::Project);

impl std::ops::Deref for Project {
    type Target = support::project::Project;

    fn deref(&self) -> &support::project::Project {
        &self.0
    }
}

impl Project {
    fn new(prefix: &str, definitions: &str, files: &[(&str, &str)]) -> Project {
        let p = Project(support::project::Project::new(prefix));
        p.write("pipeline.nix", definitions);
        for (path, text) in files {
            p.write(path, text);
        }
        p
    }

    /// Every log the runs wrote, concatenated.
    fn logs(&self) -> String {
        let mut all = String::new();
        let root = self.path().join(".pipeline/logs");
        for run in std::fs::read_dir(&root).into_iter().flatten().flatten() {
            for f in std::fs::read_dir(run.path()).into_iter().flatten().flatten() {
                // Without the seconds each line starts with (`   0.26s #4 CACHED`).
                for line in std::fs::read_to_string(f.path()).unwrap_or_default().lines() {
                    let line = line.trim_start();
                    let timed = line
                        .split_once(' ')
                        .filter(|(t, _)| t.strip_suffix('s').is_some_and(|n| n.parse::<f64>().is_ok()));
                    all.push_str(timed.map_or(line, |(_, rest)| rest));
                    all.push('\n');
                }
            }
        }
        all
    }
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn docker(args: &[&str]) -> Output {
    Command::new("docker").args(args).output().expect("run docker")
}

fn json(o: &Output) -> Json {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("no JSON ({e}): {}", text(o)))
}

/// A one-service project: a job built from `dockerfile`, run to completion.
fn job_definitions(build_extra: &str) -> String {
    format!(
        r#"{{ project, env ? "staging" }}:
let std = import <std>; in
std.environment {{
  inherit project;
  name = env;
  registry = "127.0.0.1:5000/${{project}}";
  target = std.docker {{ }};
  services.app = std.job {{ build = {{ context = ./app; {build_extra} }}; }};
}}
"#
    )
}

#[test]
fn dockerfile_features_of_docker_guides_build() {
    if !support::services_and_base_image_up() {
        return;
    }
    let secret = format!("tok-{}-never-anywhere", std::process::id());
    // BuildKit's cache does not key a step by the secrets it mounts: a step unique to this run reads this
    // run's value.
    let nonce = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let dockerfile = format!(
        r#"FROM {BASE} AS deps
RUN --mount=type=cache,target=/cache echo cached >/cache/x && cp /cache/x /deps
FROM {BASE} AS unused
RUN exit 9
FROM {BASE} AS runtime
ARG TARGETPLATFORM
ARG BUILDPLATFORM
COPY --from=deps /deps /app/deps
RUN --mount=type=bind,source=bound.txt,target=/mnt/bound.txt cp /mnt/bound.txt /app/bound
RUN --mount=type=tmpfs,target=/scratch touch /scratch/t && test "$(ls /scratch)" = t && test ! -e /app/scratch
RUN --mount=type=secret,id=TOKEN echo {nonce} >/dev/null && sha256sum /run/secrets/TOKEN | cut -d' ' -f1 >/app/secret-check
COPY --chmod=755 run.sh /app/run.sh
RUN echo "$BUILDPLATFORM -> $TARGETPLATFORM" >/app/platforms
CMD ["/app/run.sh"]
FROM runtime AS after-target
RUN exit 7
"#
    );
    let p = Project::new(
        "bk",
        &job_definitions(r#"target = "runtime"; secrets.TOKEN = std.secret "build-token";"#),
        &[("app/Dockerfile", &dockerfile), ("app/bound.txt", "bound\n"), ("app/run.sh", "#!/bin/sh\necho ran\n")],
    );
    let vars = [("PIPELINE_SECRET_BUILD_TOKEN", secret.as_str())];
    let plan = p.run(&["plan", "--json"], "staging", &vars);
    assert!(plan.status.success(), "{}", text(&plan));
    let applied = p.run(&["apply", "--yes", "--json"], "staging", &vars);
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    let outcome = json(&applied);
    let image = outcome["builds"][0]["image"].as_str().expect("the built image").to_string();

    // What the image holds: each mount did its job, `--chmod` set the mode, the target stopped the build.
    let shown = docker(&[
        "run",
        "--rm",
        "--entrypoint",
        "sh",
        &image,
        "-c",
        "cat /app/deps /app/bound /app/secret-check /app/platforms; stat -c %a /app/run.sh; ls /app",
    ]);
    let shown = String::from_utf8_lossy(&shown.stdout).into_owned();
    // The step read the value: the image holds its sha256 (computed here by the host's sha256sum).
    let mut sum = Command::new("sha256sum").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("sha256sum");
    std::io::Write::write_all(sum.stdin.as_mut().expect("stdin"), secret.as_bytes()).expect("write");
    let sum = sum.wait_with_output().expect("sha256sum");
    let sum = String::from_utf8_lossy(&sum.stdout).split(' ').next().unwrap_or_default().to_string();
    assert!(shown.starts_with(&format!("cached\nbound\n{sum}\nlinux/")), "{shown}");
    assert!(shown.contains("\n755\n"), "COPY --chmod=755: {shown}");
    assert!(!shown.contains("scratch"), "the tmpfs mount left files: {shown}");

    // The secret is nowhere: not in the image's layers or history, the logs, the plan or the outcome.
    let saved = docker(&["save", &image]);
    assert!(saved.status.success());
    assert!(!contains(&saved.stdout, secret.as_bytes()), "the secret is in `docker save` of the image");
    let history = docker(&["history", "--no-trunc", &image]);
    assert!(!text(&history).contains(&secret), "the secret is in the image's history");
    let inspect = docker(&["image", "inspect", &image]);
    assert!(!text(&inspect).contains(&secret));
    assert!(!p.logs().contains(&secret), "the secret is in the build log");
    assert!(p.logs().contains("RUN --mount=type=secret"), "{}", p.logs());
    assert!(!text(&plan).contains(&secret) && !text(&applied).contains(&secret));
    // The plan names the secret, never its value.
    assert!(text(&plan).contains("build-token"), "{}", text(&plan));

    // The image carries BuildKit's inline cache metadata, so another engine can reuse its layers.
    assert!(text(&inspect).contains("moby.buildkit.cache.v0") || image_config_has_cache(&image), "no inline cache");
}

fn image_config_has_cache(image: &str) -> bool {
    let saved = docker(&["save", image]);
    contains(&saved.stdout, b"moby.buildkit.cache.v0")
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn a_secret_the_definitions_do_not_give_is_refused_before_building() {
    // `check` needs no engine or registry; `plan` says the same.
    let p = Project::new(
        "bkmiss",
        &job_definitions(""),
        &[(
            "app/Dockerfile",
            &format!("FROM {BASE}\nRUN true\nRUN --mount=type=secret,id=NPM_TOKEN cat /run/secrets/NPM_TOKEN\n"),
        )],
    );
    for cmd in ["check", "plan"] {
        let out = p.run(&[cmd], "staging", &[]);
        let t = text(&out);
        assert_eq!(out.status.code(), Some(1), "{cmd}: {t}");
        assert!(t.contains("Dockerfile:3"), "{cmd} names the Dockerfile line: {t}");
        assert!(t.contains("NPM_TOKEN") && t.contains("build.secrets.NPM_TOKEN"), "{cmd} gives the way out: {t}");
    }
    // `required=false` in the mount: the step runs without it, and pipeline lets it.
    p.write("app/Dockerfile", &format!("FROM {BASE}\nRUN --mount=type=secret,id=NPM_TOKEN,required=false true\n"));
    let out = p.run(&["check"], "staging", &[]);
    assert!(out.status.success(), "{}", text(&out));
    // A plain value is not a secret.
    p.write("pipeline.nix", &job_definitions(r#"secrets.NPM_TOKEN = "plain";"#));
    let out = p.run(&["check"], "staging", &[]);
    assert!(!out.status.success() && text(&out).contains("not a secret reference"), "{}", text(&out));
}

#[test]
fn two_runs_build_a_shared_key_once_and_a_killed_builder_is_taken_over() {
    if !support::services_and_base_image_up() {
        return;
    }
    let p = Project::new(
        "bkclaim",
        &job_definitions(""),
        &[("app/Dockerfile", &format!("FROM {BASE}\nCOPY stamp /stamp\nRUN sleep 4\nCMD [\"true\"]\n"))],
    );
    // Stamps unique to this run: the engine's cache must not make a build instant.
    let stamp = |n: u32| format!("{n} {} {}\n", p.name, std::process::id());
    p.write("app/stamp", &stamp(1));
    // Two environments of one commit, applied at the same moment: one builds, the other waits for it.
    let a = p.command(&["apply", "--yes", "--json"], "alpha").stdout(Stdio::piped()).stderr(Stdio::piped()).spawn();
    let b = p.run(&["apply", "--yes", "--json"], "beta", &[]);
    let a = a.expect("start alpha").wait_with_output().expect("alpha");
    assert_eq!(a.status.code(), Some(0), "{}", text(&a));
    assert_eq!(b.status.code(), Some(0), "{}", text(&b));
    let by = |o: &Output| json(o)["builds"][0]["built_by"].as_str().map(str::to_string);
    let waited: Vec<Option<String>> = vec![by(&a), by(&b)];
    assert_eq!(waited.iter().filter(|w| w.is_some()).count(), 1, "exactly one run waits: {waited:?}");
    let building = p.logs().matches("building 127.0.0.1:5000/").count();
    assert_eq!(building, 1, "the key was built {building} times:\n{}", p.logs());

    // A new key; the run that builds it is killed mid-build: the other takes the claim over and builds.
    p.write("app/stamp", &stamp(2));
    let mut killed =
        p.command(&["apply", "--yes"], "alpha").stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("start");
    let claimed = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        let o = docker(&[
            "ps",
            "-a",
            "--filter",
            "label=pipeline.build.key",
            "--format",
            "{{.Label \"pipeline.build.holder\"}}",
        ]);
        text(&o).contains(&format!("pid {}", killed.id()))
    });
    assert!(claimed, "the first run never claimed the build");
    let waiter = p
        .command(&["apply", "--yes", "--json"], "beta")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start");
    std::thread::sleep(std::time::Duration::from_millis(700));
    killed.kill().expect("kill");
    let _ = killed.wait();
    let w = waiter.wait_with_output().expect("beta");
    assert_eq!(w.status.code(), Some(0), "{}", text(&w));
    assert_eq!(json(&w)["builds"][0]["built_by"], Json::Null, "beta built it itself after the claim was dropped");
}

/// A fresh engine (tests/support/fresh-engine), stopped and removed when dropped.
struct FreshEngine {
    dir: tempfile::TempDir,
    host: String,
}

impl FreshEngine {
    fn start() -> FreshEngine {
        FreshEngine::start_with("start", &[])
    }

    /// Also listening on TCP with TLS (`--tlsverify`): `host` is that address; the client's files are in
    /// [`FreshEngine::certs`].
    fn start_tls() -> FreshEngine {
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        FreshEngine::start_with("start-tls", &[&port.to_string()])
    }

    fn start_with(command: &str, extra: &[&str]) -> FreshEngine {
        let dir = tempfile::Builder::new().prefix("pl-fresh").tempdir_in("/tmp").expect("tempdir");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/fresh-engine");
        let out = Command::new(&script).arg(command).arg(dir.path()).args(extra).output().expect("run fresh-engine");
        assert!(out.status.success(), "the fresh engine did not start: {}", text(&out));
        FreshEngine { host: String::from_utf8_lossy(&out.stdout).trim().to_string(), dir }
    }

    fn certs(&self) -> String {
        self.dir.path().join("certs").to_string_lossy().into_owned()
    }
}

impl Drop for FreshEngine {
    fn drop(&mut self) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/fresh-engine");
        let _ = Command::new(script).arg("stop").arg(self.dir.path()).output();
    }
}

#[test]
fn a_fresh_engine_reuses_the_layers_of_the_mirror() {
    if !support::services_and_base_image_up() {
        return;
    }
    // The expensive step is unique to this run, so no engine has it cached from elsewhere.
    let nonce = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos())
    );
    let p = Project::new(
        "bkfresh",
        &job_definitions(""),
        &[
            (
                "app/Dockerfile",
                &format!(
                    "FROM {BASE}\nRUN echo {nonce} >/nonce && sleep 3\nCOPY src/ /src/\nRUN cat /src/* >/all\nCMD [\"cat\", \"/all\"]\n"
                ),
            ),
            ("app/src/a.txt", "one\n"),
        ],
    );
    let first = p.run(&["apply", "--yes"], "built-here", &[]);
    assert!(first.status.success(), "{}", text(&first));

    // One source file changes; a machine whose engine never built the service applies.
    p.write("app/src/a.txt", "two\n");
    let _ = std::fs::remove_dir_all(p.path().join(".pipeline/logs"));
    let fresh = FreshEngine::start();
    let out = p.run(&["apply", "--yes", "--json"], "fresh", &[("DOCKER_HOST", fresh.host.as_str())]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let log = p.logs();
    // The expensive step comes from the mirror's cache; the steps after the changed COPY run.
    let step = |marker: &str| {
        let n = log
            .lines()
            .find(|l| l.contains(marker) && l.starts_with('#'))
            .and_then(|l| l.split(' ').next())
            .unwrap_or_else(|| panic!("no step {marker} in:\n{log}"));
        log.lines().filter(|l| l.starts_with(&format!("{n} "))).map(str::to_string).collect::<Vec<_>>()
    };
    assert!(step("RUN echo").iter().any(|l| l.ends_with("CACHED")), "the expensive step ran again:\n{log}");
    assert!(!step("RUN cat").iter().any(|l| l.ends_with("CACHED")), "a step after the change was cached:\n{log}");
    assert!(log.contains("importing cache manifest from 127.0.0.1:5000/"), "{log}");
}

/// A job whose Dockerfile only BuildKit builds (a cache mount, `COPY --chmod`); it prints `hi`.
fn buildkit_only_job(prefix: &str) -> Project {
    Project::new(
        prefix,
        &job_definitions(""),
        &[
            (
                "app/Dockerfile",
                &format!(
                    "FROM {BASE}\nRUN --mount=type=cache,target=/cache echo hi >/cache/x && cp /cache/x /x\nCOPY --chmod=755 run.sh /run.sh\nCMD [\"/run.sh\"]\n"
                ),
            ),
            ("app/run.sh", "#!/bin/sh\ncat /x\n"),
        ],
    )
}

#[test]
fn an_engine_reached_over_tls_builds_with_buildkit() {
    if !support::services_and_base_image_up() {
        return;
    }
    // A BuildKit-only Dockerfile: over TLS the build must still go through a BuildKit session.
    let p = buildkit_only_job("bktls");
    let engine = FreshEngine::start_tls();
    assert!(engine.host.starts_with("tcp://"), "{}", engine.host);
    let certs = engine.certs();
    let tls = [("DOCKER_HOST", engine.host.as_str()), ("DOCKER_TLS_VERIFY", "1"), ("DOCKER_CERT_PATH", certs.as_str())];
    let out = p.run(&["apply", "--yes"], "tls", &tls);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("builds use BuildKit"), "{}", text(&out));
    // The job ran the script `--chmod` made executable, on the engine behind TLS.
    let logs = Command::new("docker")
        .args(["logs", &format!("{}-tls-app-1", p.name)])
        .envs(tls)
        .output()
        .expect("docker logs");
    assert_eq!(String::from_utf8_lossy(&logs.stdout).trim(), "hi", "{}", text(&logs));

    // Without the client's certificate the engine refuses, and the error says where.
    let wrong = tempfile::tempdir().expect("tempdir");
    let wrong_path = wrong.path().to_string_lossy().into_owned();
    p.write("app/run.sh", "#!/bin/sh\necho changed\n");
    let refused = p.run(
        &["apply", "--yes"],
        "tls",
        &[("DOCKER_HOST", engine.host.as_str()), ("DOCKER_TLS_VERIFY", "1"), ("DOCKER_CERT_PATH", wrong_path.as_str())],
    );
    assert_ne!(refused.status.code(), Some(0), "{}", text(&refused));
}

/// An OpenSSH server on a free loopback port that lets this user in with a key made for it, and an `ssh`
/// (first on `PATH`) that uses that key and logs its arguments: the "remote" host of an `ssh://` engine,
/// whose `docker` client reaches the main engine.
struct SshServer {
    child: std::process::Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl SshServer {
    /// None when there is no sshd here (a failure under `PIPELINE_REQUIRE_DOCKER`, which CI sets).
    fn start() -> Option<SshServer> {
        if !Path::new("/usr/sbin/sshd").exists() {
            support::skip::skip(
                support::skip::DOCKER,
                "no /usr/sbin/sshd (scripts/install-test-deps installs openssh-server)",
            );
            return None;
        }
        let dir = tempfile::Builder::new().prefix("pl-ssh").tempdir_in("/tmp").expect("tempdir");
        let d = dir.path().to_string_lossy().into_owned();
        for key in ["host_key", "client_key"] {
            let out = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f", &format!("{d}/{key}")])
                .output()
                .expect("ssh-keygen");
            assert!(out.status.success(), "ssh-keygen: {}", text(&out));
        }
        std::fs::copy(format!("{d}/client_key.pub"), format!("{d}/authorized_keys")).expect("authorized_keys");
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        std::fs::write(
            format!("{d}/sshd_config"),
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nAuthorizedKeysFile {d}/authorized_keys\n\
                 PermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 UsePAM no\nStrictModes no\nPidFile {d}/sshd.pid\n"
            ),
        )
        .expect("sshd_config");
        std::fs::write(
            format!("{d}/ssh_config"),
            format!(
                "Host *\n  IdentityFile {d}/client_key\n  IdentitiesOnly yes\n  UserKnownHostsFile {d}/known_hosts\n  \
                 StrictHostKeyChecking accept-new\n  LogLevel ERROR\n"
            ),
        )
        .expect("ssh_config");
        std::fs::create_dir_all(format!("{d}/bin")).expect("bin");
        let wrapper = format!("{d}/bin/ssh");
        std::fs::write(
            &wrapper,
            format!("#!/bin/sh\necho \"$*\" >>{d}/ssh.calls\nexec /usr/bin/ssh -F {d}/ssh_config \"$@\"\n"),
        )
        .expect("ssh wrapper");
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        // sshd wants its privilege separation folder.
        let _ = std::fs::create_dir_all("/run/sshd");
        let log = std::fs::File::create(format!("{d}/sshd.log")).expect("sshd.log");
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f", &format!("{d}/sshd_config")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start sshd");
        let server = SshServer { child, dir, port };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "sshd did not listen: {}", server.read("sshd.log"));
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Some(server)
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }

    /// `PATH` with the logging `ssh` first.
    fn path(&self) -> String {
        format!("{}/bin:{}", self.dir.path().display(), std::env::var("PATH").unwrap_or_default())
    }

    fn address(&self, port: u16) -> String {
        let user = Command::new("id").arg("-un").output().expect("id -un");
        format!("ssh://{}@127.0.0.1:{port}", String::from_utf8_lossy(&user.stdout).trim())
    }
}

impl Drop for SshServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn an_engine_reached_over_ssh_builds_with_buildkit() {
    if !support::services_and_base_image_up() {
        return;
    }
    let Some(sshd) = SshServer::start() else { return };
    let p = buildkit_only_job("bkssh");
    // The address names the engine's socket on the host: a second engine's, so that a connection that
    // bypassed the tunnel (to the local default socket) would reach the wrong engine and fail the build.
    let engine = FreshEngine::start();
    let socket = engine.host.strip_prefix("unix://").expect("a unix:// engine");
    let path = sshd.path();
    let address = format!("{}{socket}", sshd.address(sshd.port));
    let over_ssh = [("DOCKER_HOST", address.as_str()), ("PATH", path.as_str())];
    let out = p.run(&["apply", "--yes"], "ssh", &over_ssh);
    assert_eq!(out.status.code(), Some(0), "{}\nsshd: {}", text(&out), sshd.read("sshd.log"));
    assert!(text(&out).contains("builds use BuildKit"), "{}", text(&out));
    // The job ran on that engine the script `--chmod` made executable.
    let logs = Command::new("docker")
        .args(["logs", &format!("{}-ssh-app-1", p.name)])
        .env("DOCKER_HOST", &engine.host)
        .output()
        .expect("docker logs");
    assert_eq!(String::from_utf8_lossy(&logs.stdout).trim(), "hi", "{}", text(&logs));
    // Every connection went through `ssh ... docker --host ... system dial-stdio`, over one shared SSH
    // connection.
    let calls = sshd.read("ssh.calls");
    let dials =
        calls.lines().filter(|l| l.ends_with(&format!("docker --host unix://{socket} system dial-stdio"))).count();
    let logins = sshd.read("sshd.log").matches("Accepted publickey").count();
    assert!(dials >= 3, "the API and the BuildKit session went elsewhere:\n{calls}");
    assert!(logins >= 1 && logins < dials, "{logins} SSH logins for {dials} connections:\n{calls}");
    // The shared connection ends with the run (its process is titled `ssh: <ControlPath> [mux]`).
    assert!(calls.lines().last().is_some_and(|l| l.contains("-O exit")), "{calls}");
    let masters = Command::new("pgrep").args(["-af", "pipeline-ssh-"]).output().expect("pgrep");
    assert!(masters.stdout.is_empty(), "an SSH connection outlived the run: {}", text(&masters));

    // Nothing listens: the error is ssh's, and says how to check.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
    let nowhere = sshd.address(closed);
    let refused = p.run(&["plan"], "ssh", &[("DOCKER_HOST", nowhere.as_str()), ("PATH", path.as_str())]);
    let said = text(&refused);
    assert_eq!(refused.status.code(), Some(1), "{said}");
    assert!(said.contains("ssh failed") && said.contains("Connection refused"), "{said}");
    assert!(said.contains("docker system dial-stdio"), "{said}");
    // A password in the address is refused, and never printed.
    let with_password = format!("ssh://me:hunter2@127.0.0.1:{}", sshd.port);
    let refused = p.run(&["plan"], "ssh", &[("DOCKER_HOST", with_password.as_str()), ("PATH", path.as_str())]);
    let said = text(&refused);
    assert_eq!(refused.status.code(), Some(1), "{said}");
    assert!(said.contains("password") && !said.contains("hunter2"), "{said}");
}

/// A registry that wants a password (Debian's docker-registry with htpasswd), stopped when dropped.
struct PasswordRegistry {
    child: std::process::Child,
    _dir: tempfile::TempDir,
    addr: String,
}

impl Drop for PasswordRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn password_registry(user: &str, password: &str) -> PasswordRegistry {
    let dir = tempfile::tempdir().expect("tempdir");
    // bcrypt, the one hash docker-registry's htpasswd takes (Python's crypt on Debian 12's glibc).
    let hash = Command::new("python3")
        .args([
            "-W",
            "ignore",
            "-c",
            "import crypt,sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH)))",
            password,
        ])
        .output()
        .expect("python3");
    let hash = String::from_utf8_lossy(&hash.stdout).trim().to_string();
    assert!(hash.starts_with("$2"), "no bcrypt hash: {hash}");
    std::fs::write(dir.path().join("htpasswd"), format!("{user}:{hash}\n")).expect("htpasswd");
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let addr = format!("127.0.0.1:{port}");
    let config = format!(
        "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\nauth:\n  htpasswd:\n    realm: test\n    path: {}\n",
        dir.path().join("data").display(),
        dir.path().join("htpasswd").display()
    );
    std::fs::write(dir.path().join("config.yml"), config).expect("config");
    let child = Command::new("docker-registry")
        .arg("serve")
        .arg(dir.path().join("config.yml"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start docker-registry");
    let up = (0..50).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        std::net::TcpStream::connect(&addr).is_ok()
    });
    assert!(up, "the password-protected registry did not start on {addr}");
    PasswordRegistry { child, _dir: dir, addr }
}

#[test]
fn a_from_image_on_a_registry_that_wants_a_password() {
    if !support::services_and_base_image_up() {
        return;
    }
    let registry = password_registry("builder", "s3cret-pass");
    let config = tempfile::tempdir().expect("docker config dir");
    let cfg = config.path().to_str().expect("utf-8 path");
    let base = format!("{}/base/busybox:1", registry.addr);
    let login = docker(&["--config", cfg, "login", &registry.addr, "-u", "builder", "-p", "s3cret-pass"]);
    assert!(login.status.success(), "{}", text(&login));
    assert!(docker(&["tag", BASE, &base]).status.success());
    let push = docker(&["--config", cfg, "push", &base]);
    assert!(push.status.success(), "{}", text(&push));
    let _ = docker(&["rmi", &base]);

    let p = Project::new(
        "bkauth",
        &job_definitions(""),
        &[(
            "app/Dockerfile",
            &format!("FROM {base}\nRUN echo built-from-private >/proof\nCMD [\"cat\", \"/proof\"]\n"),
        )],
    );
    // Without the login, planning stops at the image, naming the registry and the way in.
    let empty = tempfile::tempdir().expect("empty docker config");
    let out = p.run(&["plan"], "staging", &[("DOCKER_CONFIG", empty.path().to_str().expect("utf-8"))]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains(&registry.addr) && text(&out).contains("docker login"), "{}", text(&out));
    // With it, the lock pins the image and BuildKit pulls it with the credentials the session gives.
    let out = p.run(&["apply", "--yes", "--json"], "staging", &[("DOCKER_CONFIG", cfg)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let image = json(&out)["builds"][0]["image"].as_str().expect("image").to_string();
    let shown = docker(&["run", "--rm", &image]);
    assert_eq!(String::from_utf8_lossy(&shown.stdout).trim(), "built-from-private");
}
