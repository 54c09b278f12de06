//! Secret values: read from a dotenv file (`--secrets FILE`) or `PIPELINE_SECRET_<NAME>` variables at
//! plan/apply time, never from definitions. Values are only ever shown as a keyed fingerprint, which
//! lets a plan say "(sensitive value changed)" without holding the value.

use crate::error::Diag;
use crate::model::env_var_suffix;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// A secret's value. `Debug` and `Display` never print it.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(String);

impl SecretValue {
    pub fn new(v: impl Into<String>) -> SecretValue {
        SecretValue(v.into())
    }

    /// The value itself, for the one place that needs it: handing it to the target at deploy time.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue(<redacted>)")
    }
}

/// The environment variable that supplies secret `name`: `db-password` -> `PIPELINE_SECRET_DB_PASSWORD`.
pub fn env_var(name: &str) -> String {
    format!("PIPELINE_SECRET_{}", env_var_suffix(name))
}

/// Parse a dotenv file: `NAME=value` lines, `#` comments, optional `export `, single quotes (literal),
/// double quotes (with `\n`, `\"`, `\\` escapes). `file` names the file in errors.
pub fn parse_dotenv(file: &str, text: &str) -> Result<BTreeMap<String, SecretValue>, Box<Diag>> {
    let mut out = BTreeMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").map_or(line, str::trim_start);
        let bad = |why: &str| {
            // Never quote the line itself: it may hold a value.
            Box::new(
                Diag::new("pipeline::secrets::syntax", format!("{file}:{}: {why}", i + 1))
                    .help("write one `name=value` per line; quote values with spaces or `#`"),
            )
        };
        let Some((name, rest)) = line.split_once('=') else { return Err(bad("expected `name=value`")) };
        let name = name.trim();
        if name.is_empty() || name.chars().any(char::is_whitespace) {
            return Err(bad("the name before `=` is empty or has spaces"));
        }
        let rest = rest.trim_start();
        let value = if let Some(body) = rest.strip_prefix('\'') {
            let Some(end) = body.find('\'') else { return Err(bad("unterminated single quote")) };
            body[..end].to_string()
        } else if let Some(body) = rest.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = body.chars();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '"' => {
                        closed = true;
                        break;
                    }
                    '\\' => match chars.next() {
                        Some('n') => v.push('\n'),
                        Some('t') => v.push('\t'),
                        Some(other) => v.push(other),
                        None => break,
                    },
                    c => v.push(c),
                }
            }
            if !closed {
                return Err(bad("unterminated double quote"));
            }
            v
        } else {
            // Unquoted: up to an inline ` #` comment, trimmed.
            let v = match rest.find(" #") {
                Some(p) => &rest[..p],
                None => rest,
            };
            v.trim_end().to_string()
        };
        out.insert(name.to_string(), SecretValue(value));
    }
    Ok(out)
}

/// Secret values by secret name.
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    values: BTreeMap<String, SecretValue>,
    /// Secrets known by name only (see [`Secrets::names_only`]).
    unvalued: BTreeSet<String>,
}

/// The fingerprint of a secret whose value was not read ([`Secrets::names_only`]).
pub const NO_VALUE: &str = "(value not read)";

impl Secrets {
    /// Find a value for every name: in the secrets file (under the secret's name or its variable name),
    /// else in the `PIPELINE_SECRET_*` variable read through `lookup_env`. All missing names are reported
    /// together.
    pub fn resolve(
        names: &BTreeSet<String>,
        file: Option<&BTreeMap<String, SecretValue>>,
        lookup_env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Secrets, Box<Diag>> {
        let mut by_var: BTreeMap<String, &String> = BTreeMap::new();
        for name in names {
            if let Some(other) = by_var.insert(env_var(name), name) {
                return Err(Box::new(
                    Diag::new(
                        "pipeline::secrets::ambiguous",
                        format!("secrets `{other}` and `{name}` would both be read from `{}`", env_var(name)),
                    )
                    .help("rename one of them so that their names differ in more than case and punctuation"),
                ));
            }
        }
        let mut values = BTreeMap::new();
        let mut missing = Vec::new();
        for name in names {
            let var = env_var(name);
            let found = file
                .and_then(|f| f.get(name).or_else(|| f.get(&var)).cloned())
                .or_else(|| lookup_env(&var).map(SecretValue));
            match found {
                Some(v) => {
                    values.insert(name.clone(), v);
                }
                None => missing.push((name.clone(), var)),
            }
        }
        if missing.is_empty() {
            return Ok(Secrets { values, unvalued: BTreeSet::new() });
        }
        let list = missing.iter().map(|(n, _)| format!("`{n}`")).collect::<Vec<_>>().join(", ");
        let (first, var) = &missing[0];
        Err(Box::new(
            Diag::new(
                "pipeline::secrets::missing",
                format!("no value for secret{} {list}", if missing.len() > 1 { "s" } else { "" }),
            )
            .help(format!("set the environment variable `{var}`, or pass `--secrets FILE` with a line `{first}=...`")),
        ))
    }

    /// The secrets `names`, without their values: for `render`, which prints keys only and needs no
    /// value. Each one's fingerprint is [`NO_VALUE`], the same whatever the value is.
    pub fn names_only(names: &BTreeSet<String>) -> Secrets {
        Secrets { values: BTreeMap::new(), unvalued: names.clone() }
    }

    pub fn get(&self, name: &str) -> Option<&SecretValue> {
        self.values.get(name)
    }

    /// A fingerprint of a secret's value, keyed by project, environment and secret name, so equal
    /// values in different places do not look alike. Used to notice changes; not shown in text output,
    /// but saved in plans and deployed labels. It is not confidential: like any hash of a value, it lets
    /// someone holding it test guesses of a weak secret.
    pub fn fingerprint(&self, project: &str, environment: &str, name: &str) -> Option<String> {
        if self.unvalued.contains(name) {
            return Some(NO_VALUE.to_string());
        }
        let v = self.values.get(name)?;
        let key = blake3::derive_key(
            "pipeline 2026 secret fingerprint v1",
            format!("{project}\0{environment}\0{name}").as_bytes(),
        );
        Some(blake3::keyed_hash(&key, v.0.as_bytes()).to_hex()[..32].to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_var_names() {
        assert_eq!(env_var("db-password"), "PIPELINE_SECRET_DB_PASSWORD");
        assert_eq!(env_var("api.key/2"), "PIPELINE_SECRET_API_KEY_2");
    }

    #[test]
    fn dotenv_forms() {
        let text = "# c\nexport A=1\nB = 'x # y'\nC=\"a\\nb\\\"\"\nD=plain # note\n\ndb-password=s3cret\n";
        let m = parse_dotenv("f", text).unwrap();
        let got: Vec<(&str, &str)> = m.iter().map(|(k, v)| (k.as_str(), v.expose())).collect();
        assert_eq!(got, [("A", "1"), ("B", "x # y"), ("C", "a\nb\""), ("D", "plain"), ("db-password", "s3cret")]);
        assert!(parse_dotenv("f", "A='x").is_err());
        assert!(parse_dotenv("f", "novalue").is_err());
    }

    #[test]
    fn resolve_prefers_file_and_reports_all_missing() {
        let file = parse_dotenv("f", "a=1\nPIPELINE_SECRET_B=2").unwrap();
        let names: BTreeSet<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let env = |v: &str| (v == "PIPELINE_SECRET_C").then(|| "3".to_string());
        let s = Secrets::resolve(&names, Some(&file), &env).unwrap();
        assert_eq!(s.get("b").map(SecretValue::expose), Some("2"));
        assert_eq!(s.get("c").map(SecretValue::expose), Some("3"));
        let none = |_: &str| None;
        let e = Secrets::resolve(&names, None, &none).unwrap_err();
        assert!(e.message().contains("`a`, `b`, `c`"), "{}", e.message());
        assert!(!format!("{:?}", s).contains('3'));
    }
}
