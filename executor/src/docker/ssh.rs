//! Engines reached over SSH (`DOCKER_HOST=ssh://[user@]host[:port][/socket]`), as the Docker CLI reaches
//! them: every connection to the engine is one `ssh [-l user] [-p port] -- host docker system dial-stdio`,
//! whose standard input and output carry the connection to the remote engine. The system's `ssh` is run,
//! so `~/.ssh/config`, keys and the agent work as they do for the Docker CLI.
//!
//! Both the API client (bollard) and the BuildKit session speak to a Unix socket, so a [`Tunnel`] gives
//! them one: a socket in a private folder whose every accepted connection is bridged to a new `ssh`.
//! The `ssh` processes share a few SSH connections (`ControlMaster`, in the same folder), up to
//! [`SHARED_SESSIONS`] each (sshd allows 10 sessions per connection by default), so a run with many
//! concurrent requests pays for a few SSH handshakes, not one per connection. `ssh` runs in batch mode: a
//! password or host-key question fails at once with ssh's own message rather than waiting on a prompt
//! no one sees.
//!
//! The tunnel serves on a thread of its own (its own small runtime), so it outlives any one async runtime
//! of the process; [`close`] ends the shared SSH connection and removes the folder when the run ends.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, OnceLock};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// How long the shared SSH connection outlives its last user (if `pipeline` ends without [`close`]).
const PERSIST_SECS: u32 = 30;

/// An `ssh://` engine address, read as the Docker CLI reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshHost {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    /// The engine's socket on the remote machine, when the address names one (else the remote `docker`
    /// client's own default).
    pub socket: Option<String>,
}

/// Read `ssh://[user@]host[:port][/socket]`; why not, in words.
pub fn parse(address: &str) -> Result<SshHost, String> {
    let rest = address.strip_prefix("ssh://").ok_or_else(|| "not an ssh:// address".to_string())?;
    // A password is refused wherever it would end (even with a `/` in it), and never repeated.
    if rest.split_once('@').is_some_and(|(user, _)| user.contains(':')) {
        return Err("a password in the address is not supported; use a key or an agent".to_string());
    }
    if rest.contains(['?', '#']) {
        return Err("an ssh:// address takes no query or fragment".to_string());
    }
    let (authority, path) = match rest.find('/') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, ""),
    };
    let (user, hostport) = match authority.rsplit_once('@') {
        Some((user, hostport)) => (Some(user), hostport),
        None => (None, authority),
    };
    let user = match user {
        Some(u) if u.contains(':') => {
            return Err("a password in the address is not supported; use a key or an agent".to_string());
        }
        Some("") => return Err("the user before `@` is empty".to_string()),
        Some(u) => Some(u.to_string()),
        None => None,
    };
    let (host, port) = if let Some(bracketed) = hostport.strip_prefix('[') {
        let (host, after) = bracketed.split_once(']').ok_or_else(|| "`[` without `]` around the host".to_string())?;
        if !(after.is_empty() || after.starts_with(':')) {
            return Err("only `:port` may follow `[host]`".to_string());
        }
        (host, after.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            // `host:` is `host` (as Go's URL parser reads it).
            Some((host, "")) => (host, None),
            Some((host, port)) => (host, Some(port)),
            None => (hostport, None),
        }
    };
    if host.is_empty() {
        return Err("no host".to_string());
    }
    let port = match port {
        Some(p) => Some(p.parse::<u16>().map_err(|_| "the port is not a number from 0 to 65535".to_string())?),
        None => None,
    };
    let socket = match path.trim_end_matches('/') {
        "" => None,
        p => Some(p.to_string()),
    };
    Ok(SshHost { user, host: host.to_string(), port, socket })
}

impl SshHost {
    /// The arguments of `ssh` before the connection options: user, port, `--`, host and the remote command.
    pub fn args(&self) -> Vec<String> {
        let mut args = self.destination();
        args.push("docker".to_string());
        if let Some(socket) = &self.socket {
            args.extend(["--host".to_string(), shell_quote(&format!("unix://{socket}"))]);
        }
        args.extend(["system".to_string(), "dial-stdio".to_string()]);
        args
    }

    /// Whom `ssh` logs in as, where: `[-l user] [-p port] -- host`.
    fn destination(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(user) = &self.user {
            args.extend(["-l".to_string(), user.clone()]);
        }
        if let Some(port) = self.port {
            args.extend(["-p".to_string(), port.to_string()]);
        }
        args.extend(["--".to_string(), self.host.clone()]);
        args
    }
}

/// One word for the remote shell (ssh joins the command's words with spaces).
fn shell_quote(word: &str) -> String {
    if word.chars().all(|c| c.is_ascii_alphanumeric() || "/:._-+=@".contains(c)) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// A local socket that reaches an `ssh://` engine.
#[derive(Debug)]
pub struct Tunnel {
    host: SshHost,
    dir: PathBuf,
    socket: PathBuf,
    /// The shared SSH connections' control sockets (made as they are first needed).
    controls: Vec<PathBuf>,
    /// What the last `ssh` that failed said (its last lines and exit status).
    failure: Arc<Mutex<Option<String>>>,
}

impl Tunnel {
    /// The local socket: `unix://` + this is the engine's address for this process.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Why the last connection failed, in ssh's words, when one did.
    pub fn failure(&self) -> Option<String> {
        self.failure.lock().ok().and_then(|f| f.clone())
    }

    fn open(address: &str) -> Result<Tunnel, String> {
        let host = parse(address)?;
        let dir = std::env::temp_dir().join(format!("pipeline-ssh-{}-{}", std::process::id(), unique()));
        {
            use std::os::unix::fs::DirBuilderExt as _;
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(&dir)
                .map_err(|e| format!("cannot make the folder {} for the SSH tunnel: {e}", dir.display()))?;
        }
        let socket = dir.join("docker.sock");
        let controls: Vec<PathBuf> = (0..SHARED_CONNECTIONS).map(|i| dir.join(format!("ssh-{i}"))).collect();
        let listener = std::os::unix::net::UnixListener::bind(&socket)
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|e| format!("cannot listen on {}: {e}", socket.display()))?;
        let common = ["-T", "-o", "BatchMode=yes", "-o", "ConnectTimeout=30"].map(String::from);
        let mux = |control: &PathBuf| {
            [
                "-o".to_string(),
                "ControlMaster=auto".to_string(),
                "-o".to_string(),
                format!("ControlPath={}", control.display()),
                "-o".to_string(),
                format!("ControlPersist={PERSIST_SECS}"),
            ]
        };
        let own = ["-o", "ControlMaster=no", "-o", "ControlPath=none"].map(String::from);
        let ssh = SshArgs {
            shared: controls
                .iter()
                .map(|c| common.iter().cloned().chain(mux(c)).chain(host.args()).collect())
                .collect(),
            own: common.iter().chain(&own).cloned().chain(host.args()).collect(),
        };
        let failure = Arc::new(Mutex::new(None));
        let shared = Arc::clone(&failure);
        std::thread::Builder::new()
            .name("ssh-tunnel".into())
            .spawn(move || serve(listener, ssh, shared))
            .map_err(|e| format!("cannot start the SSH tunnel: {e}"))?;
        Ok(Tunnel { host, dir, socket, controls, failure })
    }

    /// End the shared SSH connections and remove the folder.
    fn close(&self) {
        for control in self.controls.iter().filter(|c| c.exists()) {
            let mut exit = std::process::Command::new("ssh");
            exit.args(["-o", "BatchMode=yes", "-o", &format!("ControlPath={}", control.display()), "-O", "exit"]);
            exit.args(self.host.destination());
            let _ = exit.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The tunnels this process opened, by address.
type Tunnels = Mutex<Vec<(String, Arc<Tunnel>)>>;

fn tunnels() -> &'static Tunnels {
    static TUNNELS: OnceLock<Tunnels> = OnceLock::new();
    TUNNELS.get_or_init(Default::default)
}

/// The tunnel to the `ssh://` engine at `address`, opened on first use and shared by the whole process.
pub fn tunnel(address: &str) -> Result<Arc<Tunnel>, String> {
    let mut open = tunnels().lock().map_err(|_| "the SSH tunnels' table is poisoned".to_string())?;
    if let Some((_, t)) = open.iter().find(|(a, _)| a == address) {
        return Ok(Arc::clone(t));
    }
    let t = Arc::new(Tunnel::open(address)?);
    open.push((address.to_string(), Arc::clone(&t)));
    Ok(t)
}

/// The tunnel already open to `address`, if any (for error messages).
pub fn opened(address: &str) -> Option<Arc<Tunnel>> {
    tunnels().lock().ok()?.iter().find(|(a, _)| a == address).map(|(_, t)| Arc::clone(t))
}

/// Close every tunnel this process opened (at the end of a run; connections still open are cut).
pub fn close() {
    let open = match tunnels().lock() {
        Ok(mut open) => std::mem::take(&mut *open),
        Err(_) => return,
    };
    for (_, t) in open {
        t.close();
    }
}

/// How `ssh` is run: over one of the shared connections, or (when all are full) on a login of its own.
struct SshArgs {
    /// One per shared connection.
    shared: Vec<Vec<String>>,
    own: Vec<String>,
}

/// Sessions on one shared SSH connection at once. sshd refuses more than its `MaxSessions` (10 by
/// default) on one connection, and a build holds two for its whole length (its BuildKit session and the
/// build request), so a run with many builds at once needs several connections.
const SHARED_SESSIONS: usize = 8;
/// Shared SSH connections, made as they are needed; past them all, a connection logs in on its own.
const SHARED_CONNECTIONS: usize = 4;

fn serve(listener: std::os::unix::net::UnixListener, ssh: SshArgs, failure: Arc<Mutex<Option<String>>>) {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            record(&failure, Some(format!("cannot start the SSH tunnel's runtime: {e}")));
            return;
        }
    };
    let ssh = Arc::new(ssh);
    let shared: Vec<_> =
        (0..ssh.shared.len()).map(|_| Arc::new(tokio::sync::Semaphore::new(SHARED_SESSIONS))).collect();
    runtime.block_on(async move {
        let listener = match tokio::net::UnixListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => return record(&failure, Some(format!("cannot listen for the SSH tunnel: {e}"))),
        };
        // Serves until the process ends (`close` removes the socket, so nothing new connects).
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    // The first shared connection with a free session.
                    let slot = shared
                        .iter()
                        .enumerate()
                        .find_map(|(i, s)| Arc::clone(s).try_acquire_owned().ok().map(|permit| (i, permit)));
                    tokio::spawn(bridge(stream, Arc::clone(&ssh), slot, Arc::clone(&failure)));
                }
                // Out of file descriptors, or a connection gone before it was accepted: try again.
                Err(e) => {
                    record(&failure, Some(format!("the SSH tunnel cannot accept a connection: {e}")));
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        }
    });
}

/// Remember why the last `ssh` failed (`None`: the last one ended well).
fn record(failure: &Mutex<Option<String>>, why: Option<String>) {
    if let Ok(mut f) = failure.lock() {
        *f = why;
    }
}

/// Carry one connection over a new `ssh ... docker system dial-stdio`: on the shared SSH connection it
/// holds a `slot` on, else on a login of its own.
async fn bridge(
    stream: tokio::net::UnixStream,
    ssh: Arc<SshArgs>,
    slot: Option<(usize, tokio::sync::OwnedSemaphorePermit)>,
    failure: Arc<Mutex<Option<String>>>,
) {
    let args = match &slot {
        Some((i, _)) => &ssh.shared[*i],
        None => &ssh.own,
    };
    let child = tokio::process::Command::new("ssh")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group: Ctrl-C at the terminal is pipeline's to handle (running deploys finish),
        // not a signal that cuts every connection to the engine.
        .process_group(0)
        .kill_on_drop(true)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return record(&failure, Some(format!("cannot run `ssh`: {e}"))),
    };
    let (Some(mut stdin), Some(mut stdout), Some(mut stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return record(&failure, Some("cannot talk to `ssh`: its standard streams are missing".into()));
    };
    let (mut from_client, mut to_client) = stream.into_split();
    let up = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut from_client, &mut stdin).await;
        // Dropping stdin tells the remote end this side is done sending.
    });
    let said = tokio::spawn(async move {
        let mut text = Vec::new();
        let _ = (&mut stderr).take(64 * 1024).read_to_end(&mut text).await;
        // Keep reading (and dropping) so ssh never blocks on a full pipe.
        let _ = tokio::io::copy(&mut stderr, &mut tokio::io::sink()).await;
        text
    });
    let client_gone = tokio::io::copy(&mut stdout, &mut to_client).await.is_err();
    if client_gone {
        // Nothing more can reach the client: end this connection's ssh (not a failure to report).
        let _ = child.start_kill();
    }
    up.abort();
    // What went wrong is recorded before the client sees the connection end, so its error can say it.
    // ssh's standard error may stay open after it exits (a proxy command it started holds it): its
    // words are waited for briefly, its exit for good.
    let status = child.wait().await;
    let said = tokio::time::timeout(std::time::Duration::from_secs(1), said).await;
    let said = said.ok().and_then(Result::ok).unwrap_or_default();
    match status {
        _ if client_gone => {}
        Ok(s) if s.success() => record(&failure, None),
        Ok(s) => {
            let said = String::from_utf8_lossy(&said);
            let last: Vec<&str> = said.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
            let last = last[last.len().saturating_sub(3)..].join("; ");
            let code = s.code().map_or_else(|| "killed by a signal".to_string(), |c| format!("exit code {c}"));
            let why = if last.is_empty() { format!("ssh ended ({code})") } else { format!("{last} (ssh {code})") };
            record(&failure, Some(why));
        }
        Err(e) => record(&failure, Some(format!("cannot wait for `ssh`: {e}"))),
    }
    let _ = to_client.shutdown().await;
    drop(slot);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(user: Option<&str>, host: &str, port: Option<u16>, socket: Option<&str>) -> SshHost {
        SshHost { user: user.map(str::to_string), host: host.to_string(), port, socket: socket.map(str::to_string) }
    }

    #[test]
    fn addresses_read_as_the_docker_cli_reads_them() {
        let cases = [
            ("ssh://box", Ok(host(None, "box", None, None))),
            ("ssh://me@box", Ok(host(Some("me"), "box", None, None))),
            ("ssh://me@box:2222", Ok(host(Some("me"), "box", Some(2222), None))),
            ("ssh://me@box:2222/", Ok(host(Some("me"), "box", Some(2222), None))),
            ("ssh://box/run/user/1000/docker.sock", Ok(host(None, "box", None, Some("/run/user/1000/docker.sock")))),
            ("ssh://ci@[::1]:22", Ok(host(Some("ci"), "::1", Some(22), None))),
            ("ssh://a@b@box", Ok(host(Some("a@b"), "box", None, None))),
            ("ssh://box:", Ok(host(None, "box", None, None))),
            ("ssh://me@box:22/run/a@b.sock", Ok(host(Some("me"), "box", Some(22), Some("/run/a@b.sock")))),
        ];
        for (address, want) in cases {
            assert_eq!(parse(address), want, "{address}");
        }
        for (address, says) in [
            ("ssh://", "no host"),
            ("ssh://me@", "no host"),
            ("ssh://me:secret@box", "password"),
            ("ssh://box:ssh", "port is not a number"),
            ("ssh://box:99999", "port is not a number"),
            ("ssh://me:pa/ss@box", "password"),
            ("ssh://me:p@ss@box", "password"),
            ("ssh://[::1]x", "only `:port`"),
            ("ssh://box?x=1", "no query"),
            ("ssh://[::1", "without `]`"),
            ("ssh://@box", "empty"),
        ] {
            let err = parse(address).unwrap_err();
            assert!(err.contains(says), "{address}: {err}");
        }
    }

    #[test]
    fn ssh_is_asked_for_dial_stdio_on_the_host() {
        assert_eq!(host(None, "box", None, None).args(), ["--", "box", "docker", "system", "dial-stdio"]);
        assert_eq!(
            host(Some("ci"), "box", Some(2222), Some("/run/my docker.sock")).args(),
            [
                "-l",
                "ci",
                "-p",
                "2222",
                "--",
                "box",
                "docker",
                "--host",
                "'unix:///run/my docker.sock'",
                "system",
                "dial-stdio"
            ]
        );
    }
}
