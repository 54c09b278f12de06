//! Registry credentials from the Docker client configuration (`config.json`): `auths` entries and the
//! credential helpers (`credsStore`, `credHelpers`), the places `docker login` writes to.
//!
//! Written here rather than taken from the `docker_credential` crate because that crate reads
//! `$DOCKER_CONFIG` from the process environment only (no explicit path, so tests race on the env), runs
//! helpers without a time limit and gives no way to say where a credential came from, which the
//! registry client puts in its messages.

use crate::registry::{ConfigSyntaxError, RegistryError};
use base64::Engine as _;
use miette::{NamedSource, SourceSpan};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long a credential helper may take to answer before it is killed.
pub const HELPER_TIMEOUT: Duration = Duration::from_secs(30);

/// The key Docker uses for Docker Hub in `auths` and in credential helpers.
const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// Credentials for one registry, shaped like bollard's `DockerCredentials` (`username`, `password`,
/// `identitytoken`, `serveraddress`) so the executor can hand them to the Docker engine for pushes.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The server the credentials are for, as Docker names it (`host[:port]`, or Docker Hub's
    /// `https://index.docker.io/v1/`).
    pub server_address: String,
    /// The user name, when the credentials are a user name and password.
    pub username: Option<String>,
    /// The password (or a personal access token used as one).
    pub password: Option<String>,
    /// An OAuth2 refresh token (`identitytoken` in `config.json`, user `<token>` from a helper).
    pub identity_token: Option<String>,
    /// Where they came from, for messages: `auths in /home/me/.docker/config.json`,
    /// `docker-credential-pass`.
    pub source: String,
}

impl Credentials {
    /// `user alice (auths in …/config.json)`: what a message says was tried, without the secret.
    pub fn describe(&self) -> String {
        match (&self.username, &self.identity_token) {
            (Some(user), _) if self.password.is_some() => format!("user {user} ({})", self.source),
            (_, Some(_)) => format!("an identity token ({})", self.source),
            _ => format!("incomplete credentials ({})", self.source),
        }
    }

    /// The user name and password, when both are known.
    pub fn basic(&self) -> Option<(&str, &str)> {
        Some((self.username.as_deref()?, self.password.as_deref()?))
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hidden = |s: &Option<String>| s.as_ref().map(|_| "<hidden>");
        f.debug_struct("Credentials")
            .field("server_address", &self.server_address)
            .field("username", &self.username)
            .field("password", &hidden(&self.password))
            .field("identity_token", &hidden(&self.identity_token))
            .field("source", &self.source)
            .finish()
    }
}

/// Where Docker keeps its client configuration: `$DOCKER_CONFIG/config.json`, else
/// `~/.docker/config.json`; `None` when neither variable gives a place.
pub fn default_config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::home_dir().map(|home| home.join(".docker").join("config.json"))
}

#[derive(Debug, Default, Deserialize)]
struct ConfigFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
    identitytoken: Option<String>,
}

/// The credentials Docker would use for `host` (`host[:port]` as in an image reference), read from the
/// config file at `config` (`None`: no config, so no credentials).
///
/// Order as in the Docker CLI: a helper named for this host in `credHelpers`, else the `credsStore`
/// helper, else the `auths` entry. Unlike the Docker CLI, when a helper has nothing for the host the
/// `auths` entry is still used. A missing config file means no credentials; an unreadable or invalid one,
/// or a failing helper, is an error. Blocking (it may run a helper process): from async code call it
/// through `tokio::task::spawn_blocking`.
pub fn credentials_for(config: Option<&Path>, host: &str) -> Result<Option<Credentials>, RegistryError> {
    let Some(path) = config else { return Ok(None) };
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(RegistryError::ConfigRead { path: path.to_owned(), error }),
    };
    let file: ConfigFile = serde_json::from_str(&text).map_err(|e| syntax_error(path, &text, &e))?;
    let wanted = config_hostname(host);
    let server = if wanted == "index.docker.io" { DOCKER_HUB_KEY.to_owned() } else { host.to_owned() };

    let helper = file
        .cred_helpers
        .iter()
        .find(|(key, _)| config_hostname(key) == wanted)
        .map(|(_, helper)| helper)
        .or(file.creds_store.as_ref())
        .filter(|h| !h.is_empty());
    if let Some(helper) = helper
        && let Some(found) = run_helper(helper, &server, path)?
    {
        return Ok(Some(found));
    }

    let entry =
        file.auths.get(host).map(|e| (host, e)).or_else(|| {
            file.auths.iter().find(|(key, _)| config_hostname(key) == wanted).map(|(k, e)| (k.as_str(), e))
        });
    let Some((key, entry)) = entry else { return Ok(None) };
    let source = format!("auths in {}", path.display());
    let nonempty = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
    let (mut username, mut password) = (nonempty(&entry.username), nonempty(&entry.password));
    if let Some(auth) = nonempty(&entry.auth) {
        let bad = || RegistryError::BadAuthEntry { path: path.to_owned(), key: key.to_owned(), host: host.to_owned() };
        let decoded = base64::engine::general_purpose::STANDARD.decode(auth.trim()).map_err(|_| bad())?;
        let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
        let (user, pass) = decoded.split_once(':').ok_or_else(bad)?;
        username = Some(user.to_owned());
        password = Some(pass.to_owned());
    }
    let identity_token = nonempty(&entry.identitytoken);
    if password.is_none() && identity_token.is_none() {
        return Ok(None);
    }
    Ok(Some(Credentials { server_address: key.to_owned(), username, password, identity_token, source }))
}

/// Docker's `ConvertToHostname`: `https://host:port/v1/` → `host:port`, with Docker Hub's aliases
/// folded into `index.docker.io`.
fn config_hostname(key: &str) -> String {
    let key = key.strip_prefix("https://").or_else(|| key.strip_prefix("http://")).unwrap_or(key);
    let host = key.split('/').next().unwrap_or(key).to_ascii_lowercase();
    match host.as_str() {
        "docker.io" | "registry-1.docker.io" => "index.docker.io".to_owned(),
        _ => host,
    }
}

fn syntax_error(path: &Path, text: &str, e: &serde_json::Error) -> RegistryError {
    let offset = text
        .split_inclusive('\n')
        .take(e.line().saturating_sub(1))
        .map(str::len)
        .sum::<usize>()
        .saturating_add(e.column().saturating_sub(1))
        .min(text.len());
    let message = e.to_string();
    let message = message.split(" at line ").next().unwrap_or(&message).to_owned();
    RegistryError::ConfigSyntax(Box::new(ConfigSyntaxError {
        path: path.to_owned(),
        message,
        src: NamedSource::new(path.display().to_string(), text.to_owned()).with_language("json"),
        span: SourceSpan::from((offset, 0)),
    }))
}

#[derive(Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// `docker-credential-<helper> get` with `server` on stdin; `None` when the helper has nothing for it.
fn run_helper(helper: &str, server: &str, config: &Path) -> Result<Option<Credentials>, RegistryError> {
    let program = format!("docker-credential-{helper}");
    let fail = |reason: String| RegistryError::CredentialHelper {
        program: program.clone(),
        server: server.to_owned(),
        reason,
        config: config.to_owned(),
    };
    if helper.contains(['/', '\\']) {
        return Err(fail("a helper name must not contain a path separator".into()));
    }
    let (status, stdout, stderr) = run_with_timeout(&program, server, HELPER_TIMEOUT).map_err(fail)?;
    let stdout = String::from_utf8_lossy(&stdout);
    if !status.success() {
        if stdout.contains("credentials not found") {
            return Ok(None);
        }
        let stderr = String::from_utf8_lossy(&stderr);
        let said = first_line(&stdout).or_else(|| first_line(&stderr)).unwrap_or("no output");
        return Err(fail(format!("{status}: {said}")));
    }
    let answer: HelperAnswer =
        serde_json::from_str(&stdout).map_err(|e| fail(format!("its answer is not the expected JSON: {e}")))?;
    if answer.secret.is_empty() {
        return Ok(None);
    }
    let source = program.clone();
    let creds = if answer.username == "<token>" {
        Credentials {
            server_address: server.to_owned(),
            username: None,
            password: None,
            identity_token: Some(answer.secret),
            source,
        }
    } else {
        Credentials {
            server_address: server.to_owned(),
            username: Some(answer.username),
            password: Some(answer.secret),
            identity_token: None,
            source,
        }
    };
    Ok(Some(creds))
}

fn first_line(s: &str) -> Option<&str> {
    s.lines().map(str::trim).find(|l| !l.is_empty())
}

/// Run `program get`, feed it `input`, collect its output; kill it after `timeout`.
fn run_with_timeout(program: &str, input: &str, timeout: Duration) -> Result<(ExitStatus, Vec<u8>, Vec<u8>), String> {
    let mut child = Command::new(program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => "it is not on PATH".to_owned(),
            _ => format!("cannot start it: {e}"),
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading its input is answered by its exit status, not by this.
        let _ = stdin.write_all(input.as_bytes());
    }
    let reader = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = reader(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let err = reader(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("no answer within {}s", timeout.as_secs()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(format!("cannot wait for it: {e}")),
        }
    };
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    Ok((status, stdout, stderr))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, json).unwrap();
        (dir, path)
    }

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn auth_field_is_decoded() {
        let (_d, path) = config(&format!(r#"{{"auths":{{"reg.example:5000":{{"auth":"{}"}}}}}}"#, b64("alice:pa:ss")));
        let c = credentials_for(Some(&path), "reg.example:5000").unwrap().unwrap();
        assert_eq!(c.basic(), Some(("alice", "pa:ss")));
        assert_eq!(c.server_address, "reg.example:5000");
        assert!(c.describe().starts_with("user alice (auths in "), "{}", c.describe());
        assert!(!format!("{c:?}").contains("pa:ss"));
    }

    #[test]
    fn username_password_and_identity_token_fields() {
        let (_d, path) = config(
            r#"{"auths":{"https://reg.example/v1/":{"username":"bob","password":"pw"},
                "tok.example":{"identitytoken":"refresh-me"}}}"#,
        );
        let c = credentials_for(Some(&path), "reg.example").unwrap().unwrap();
        assert_eq!(c.basic(), Some(("bob", "pw")));
        assert_eq!(c.server_address, "https://reg.example/v1/");
        let t = credentials_for(Some(&path), "tok.example").unwrap().unwrap();
        assert_eq!(t.identity_token.as_deref(), Some("refresh-me"));
        assert_eq!(t.basic(), None);
        assert!(t.describe().starts_with("an identity token"));
    }

    #[test]
    fn docker_hub_aliases_use_the_index_key() {
        let (_d, path) = config(&format!(r#"{{"auths":{{"{DOCKER_HUB_KEY}":{{"auth":"{}"}}}}}}"#, b64("u:p")));
        for host in ["docker.io", "index.docker.io", "registry-1.docker.io"] {
            assert!(credentials_for(Some(&path), host).unwrap().is_some(), "{host}");
        }
    }

    #[test]
    fn no_entry_empty_entry_or_no_file_means_no_credentials() {
        let (dir, path) = config(r#"{"auths":{"reg.example":{}, "other":{"auth":""}}}"#);
        assert_eq!(credentials_for(Some(&path), "reg.example").unwrap(), None);
        assert_eq!(credentials_for(Some(&path), "other").unwrap(), None);
        assert_eq!(credentials_for(Some(&path), "elsewhere").unwrap(), None);
        assert_eq!(credentials_for(Some(&dir.path().join("missing.json")), "reg.example").unwrap(), None);
        assert_eq!(credentials_for(None, "reg.example").unwrap(), None);
    }

    #[test]
    fn invalid_json_points_at_the_place() {
        let (_d, path) = config("{\n  \"auths\": {\n    \"a\": { \"auth\": 3 }\n  }\n}\n");
        let err = credentials_for(Some(&path), "a").unwrap_err();
        let RegistryError::ConfigSyntax(syntax) = &err else { panic!("{err:?}") };
        let ConfigSyntaxError { message, span, .. } = &**syntax;
        assert!(message.contains("invalid type"), "{message}");
        assert_eq!(span.offset(), "{\n  \"auths\": {\n    \"a\": { \"auth\": ".len(), "points at the 3");
        assert!(err.to_string().contains("is not valid JSON"));
    }

    #[test]
    fn bad_base64_names_the_entry() {
        let (_d, path) = config(r#"{"auths":{"reg.example":{"auth":"%%%"}}}"#);
        let err = credentials_for(Some(&path), "reg.example").unwrap_err();
        assert!(matches!(&err, RegistryError::BadAuthEntry { key, .. } if key == "reg.example"), "{err:?}");
        let (_d, path) = config(&format!(r#"{{"auths":{{"reg.example":{{"auth":"{}"}}}}}}"#, b64("nocolon")));
        assert!(credentials_for(Some(&path), "reg.example").is_err());
    }

    #[test]
    fn missing_helper_is_an_error_that_names_it() {
        let (_d, path) = config(r#"{"credsStore":"pipeline-test-does-not-exist"}"#);
        let err = credentials_for(Some(&path), "reg.example").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("docker-credential-pipeline-test-does-not-exist"), "{text}");
        assert!(text.contains("not on PATH"), "{text}");
        let (_d, path) = config(r#"{"credHelpers":{"reg.example":"../evil"}}"#);
        assert!(credentials_for(Some(&path), "reg.example").unwrap_err().to_string().contains("path separator"));
    }
}
