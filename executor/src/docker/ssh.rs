//! Engines reached over SSH (`DOCKER_HOST=ssh://[user@]host[:port][/socket]`), as the Docker CLI reaches
//! them: every connection to the engine is one `ssh [-l user] [-p port] -- host docker system dial-stdio`,
//! whose standard input and output carry the connection to the remote engine. The system's `ssh` is run,
//! so `~/.ssh/config`, keys and the agent work as they do for the Docker CLI.
//!
//! Both the API client (bollard) and the BuildKit session speak to a Unix socket, so a [`Tunnel`] gives
//! them one: a socket in a private folder whose every accepted connection is bridged to a new `ssh`.
//! The `ssh` processes share one SSH connection (`ControlMaster`, in the same folder), so a run with many
//! concurrent requests pays for one SSH handshake, not one per connection. `ssh` runs in batch mode: a
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
        (host, after.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (hostport, None),
        }
    };
    if host.is_empty() {
        return Err("no host".to_string());
    }
    let port = match port {
        Some(p) => Some(p.parse::<u16>().map_err(|_| format!("`{p}` is not a port number"))?),
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
        let mut args = Vec::new();
        if let Some(user) = &self.user {
            args.extend(["-l".to_string(), user.clone()]);
        }
        if let Some(port) = self.port {
            args.extend(["-p".to_string(), port.to_string()]);
        }
        args.extend(["--".to_string(), self.host.clone(), "docker".to_string()]);
        if let Some(socket) = &self.socket {
            args.extend(["--host".to_string(), shell_quote(&format!("unix://{socket}"))]);
        }
        args.extend(["system".to_string(), "dial-stdio".to_string()]);
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
    control: PathBuf,
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
        let control = dir.join("ssh");
        let listener = std::os::unix::net::UnixListener::bind(&socket)
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|e| format!("cannot listen on {}: {e}", socket.display()))?;
        let mut args = vec![
            "-T".to_string(),
            "-o".to_string(),
            "BatchMode=yes".to_string(),
            "-o".to_string(),
            "ConnectTimeout=30".to_string(),
            "-o".to_string(),
            "ControlMaster=auto".to_string(),
            "-o".to_string(),
            format!("ControlPath={}", control.display()),
            "-o".to_string(),
            format!("ControlPersist={PERSIST_SECS}"),
        ];
        args.extend(host.args());
        let failure = Arc::new(Mutex::new(None));
        let shared = Arc::clone(&failure);
        std::thread::Builder::new()
            .name("ssh-tunnel".into())
            .spawn(move || serve(listener, Arc::new(args), shared))
            .map_err(|e| format!("cannot start the SSH tunnel: {e}"))?;
        Ok(Tunnel { host, dir, socket, control, failure })
    }

    /// End the shared SSH connection and remove the folder.
    fn close(&self) {
        let mut exit = std::process::Command::new("ssh");
        exit.args(["-o", "BatchMode=yes", "-o", &format!("ControlPath={}", self.control.display()), "-O", "exit"]);
        if let Some(port) = self.host.port {
            exit.args(["-p", &port.to_string()]);
        }
        if let Some(user) = &self.host.user {
            exit.args(["-l", user]);
        }
        exit.args(["--", &self.host.host]);
        if self.control.exists() {
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

fn serve(listener: std::os::unix::net::UnixListener, args: Arc<Vec<String>>, failure: Arc<Mutex<Option<String>>>) {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            record(&failure, format!("cannot start the SSH tunnel's runtime: {e}"));
            return;
        }
    };
    runtime.block_on(async move {
        let listener = match tokio::net::UnixListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => return record(&failure, format!("cannot listen for the SSH tunnel: {e}")),
        };
        // Serves until the process ends (`close` removes the socket, so nothing new connects).
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(bridge(stream, Arc::clone(&args), Arc::clone(&failure)));
        }
    });
}

fn record(failure: &Mutex<Option<String>>, why: String) {
    if let Ok(mut f) = failure.lock() {
        *f = Some(why);
    }
}

/// Carry one connection over a new `ssh ... docker system dial-stdio`.
async fn bridge(stream: tokio::net::UnixStream, args: Arc<Vec<String>>, failure: Arc<Mutex<Option<String>>>) {
    let child = tokio::process::Command::new("ssh")
        .args(args.iter())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return record(&failure, format!("cannot run `ssh`: {e}")),
    };
    let (Some(mut stdin), Some(mut stdout), Some(mut stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return record(&failure, "cannot talk to `ssh`: its standard streams are missing".into());
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
    let _ = tokio::io::copy(&mut stdout, &mut to_client).await;
    up.abort();
    // What went wrong is recorded before the client sees the connection end, so its error can say it.
    let said = said.await.unwrap_or_default();
    match child.wait().await {
        Ok(s) if s.success() => {}
        Ok(s) => {
            let said = String::from_utf8_lossy(&said);
            let last: Vec<&str> = said.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
            let last = last[last.len().saturating_sub(3)..].join("; ");
            let code = s.code().map_or_else(|| "killed by a signal".to_string(), |c| format!("exit code {c}"));
            record(
                &failure,
                if last.is_empty() { format!("ssh ended ({code})") } else { format!("{last} (ssh {code})") },
            );
        }
        Err(e) => record(&failure, format!("cannot wait for `ssh`: {e}")),
    }
    let _ = to_client.shutdown().await;
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
        ];
        for (address, want) in cases {
            assert_eq!(parse(address), want, "{address}");
        }
        for (address, says) in [
            ("ssh://", "no host"),
            ("ssh://me@", "no host"),
            ("ssh://me:secret@box", "password"),
            ("ssh://box:ssh", "not a port"),
            ("ssh://box:99999", "not a port"),
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
