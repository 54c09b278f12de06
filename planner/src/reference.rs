//! Image references as Docker reads them (distribution's `reference` grammar): `node:20` is
//! `docker.io/library/node:20`, a first component with a `.` or `:` (or `localhost`) is a registry host,
//! a missing tag is `latest`, and `@sha256:…` pins a digest. Pure: no network.

use std::fmt;

/// The registry Docker assumes when a reference names none.
pub const DEFAULT_DOMAIN: &str = "docker.io";

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    /// Registry host, with its port when given (`127.0.0.1:5000`); `docker.io` when none was written.
    pub domain: String,
    /// Repository path in the registry (`library/node` for `node`).
    pub path: String,
    /// The tag, when written (`latest` is implied when neither a tag nor a digest is).
    pub tag: Option<String>,
    /// `sha256:<64 hex>`, when written.
    pub digest: Option<String>,
}

impl Reference {
    /// Parse `text` with Docker's rules; the error says what is wrong with it.
    pub fn parse(text: &str) -> Result<Reference, String> {
        if text.is_empty() {
            return Err("an image reference cannot be empty".into());
        }
        if text.len() > 512 {
            return Err("is longer than an image reference may be".into());
        }
        let (rest, digest) = match text.split_once('@') {
            Some((r, d)) => {
                check_digest(d)?;
                (r, Some(d.to_string()))
            }
            None => (text, None),
        };
        // A tag follows the last `:` that comes after the last `/` (a `:` before it is a port).
        let (name, tag) = match rest.rfind(':') {
            Some(i) if !rest[i..].contains('/') => (&rest[..i], Some(&rest[i + 1..])),
            _ => (rest, None),
        };
        if let Some(t) = tag {
            check_tag(t)?;
        }
        let (domain, path) = match name.split_once('/') {
            Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => {
                check_domain(first)?;
                (first.to_string(), rest.to_string())
            }
            _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
        };
        if path.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(format!("repository name `{path}` must be lower-case"));
        }
        for component in path.split('/') {
            check_component(component, &path)?;
        }
        if path.len() > 255 {
            return Err(format!("repository name `{path}` is longer than 255 characters"));
        }
        let path = if domain == DEFAULT_DOMAIN && !path.contains('/') { format!("library/{path}") } else { path };
        Ok(Reference { domain, path, tag: tag.map(str::to_string), digest })
    }

    /// The tag the registry is asked for: the written one, or `latest`.
    pub fn tag_or_latest(&self) -> &str {
        self.tag.as_deref().unwrap_or("latest")
    }

    /// `domain/path:tag`, the digest left out: the name a lock entry is kept under.
    pub fn name_with_tag(&self) -> String {
        format!("{}/{}:{}", self.domain, self.path, self.tag_or_latest())
    }

    /// The name this reference's digest is known under in a build key: `domain/path:tag` for a reference
    /// without a digest (what the lock pins), the full reference for one written with its digest.
    pub fn key_name(&self) -> String {
        if self.digest.is_some() { self.to_string() } else { self.name_with_tag() }
    }

    /// `domain/path@digest` for a digest: what an engine is told to run or build from.
    pub fn with_digest(&self, digest: &str) -> String {
        format!("{}/{}@{digest}", self.domain, self.path)
    }

    /// The short form people write: `node:20` for `docker.io/library/node:20`.
    pub fn familiar(&self) -> String {
        let name = if self.domain == DEFAULT_DOMAIN {
            self.path.strip_prefix("library/").unwrap_or(&self.path).to_string()
        } else {
            format!("{}/{}", self.domain, self.path)
        };
        let mut s = name;
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d);
        }
        if self.tag.is_none() && self.digest.is_none() {
            s.push_str(":latest");
        }
        s
    }
}

impl fmt::Display for Reference {
    /// The fully normalised form: `docker.io/library/node:20`, `…@sha256:…` when pinned.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.domain, self.path)?;
        match (&self.tag, &self.digest) {
            (Some(t), _) => write!(f, ":{t}")?,
            (None, None) => f.write_str(":latest")?,
            (None, Some(_)) => {}
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// `sha256:` followed by 64 lower-case hex digits (the only algorithm registries serve in practice;
/// `sha512:` with 128 is accepted too).
pub fn check_digest(d: &str) -> Result<(), String> {
    let ok = match d.split_once(':') {
        Some(("sha256", hex)) => {
            hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        }
        Some(("sha512", hex)) => {
            hex.len() == 128 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        }
        _ => false,
    };
    if ok { Ok(()) } else { Err(format!("`{d}` is not a digest (`sha256:` and 64 lower-case hex digits)")) }
}

fn check_tag(t: &str) -> Result<(), String> {
    let ok = (1..=128).contains(&t.len())
        && t.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        && t.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok { Ok(()) } else { Err(format!("`{t}` is not a tag (up to 128 of letters, digits, `_`, `.`, `-`)")) }
}

fn check_domain(d: &str) -> Result<(), String> {
    let ok = d.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    if ok { Ok(()) } else { Err(format!("`{d}` is not a registry host")) }
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn check_component(c: &str, path: &str) -> Result<(), String> {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    let bad = || {
        Err(format!(
            "`{path}` is not a repository name (lower-case letters and digits, separated by `.`, `_`, `__`, `-` or `/`)"
        ))
    };
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return bad();
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-')) {
            return bad();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation() {
        let d = format!("sha256:{}", "a".repeat(64));
        let table: &[(&str, &str, &str)] = &[
            ("node", "docker.io/library/node:latest", "node:latest"),
            ("node:20", "docker.io/library/node:20", "node:20"),
            ("library/node:20", "docker.io/library/node:20", "node:20"),
            ("docker.io/node:20", "docker.io/library/node:20", "node:20"),
            ("bitnami/redis:7.2", "docker.io/bitnami/redis:7.2", "bitnami/redis:7.2"),
            ("ghcr.io/o/r/img:v1", "ghcr.io/o/r/img:v1", "ghcr.io/o/r/img:v1"),
            ("127.0.0.1:5000/base/busy:1", "127.0.0.1:5000/base/busy:1", "127.0.0.1:5000/base/busy:1"),
            ("localhost/app", "localhost/app:latest", "localhost/app:latest"),
            ("localhost:5000/app:x", "localhost:5000/app:x", "localhost:5000/app:x"),
            ("a_b__c-d--e/f.g", "docker.io/a_b__c-d--e/f.g:latest", "a_b__c-d--e/f.g:latest"),
        ];
        for (input, normal, familiar) in table {
            let r = Reference::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(r.to_string(), *normal, "{input}");
            assert_eq!(r.familiar(), *familiar, "{input}");
        }
        let r = Reference::parse(&format!("node:20@{d}")).unwrap();
        assert_eq!(r.name_with_tag(), "docker.io/library/node:20");
        assert_eq!(r.to_string(), format!("docker.io/library/node:20@{d}"));
        assert_eq!(r.with_digest(&d), format!("docker.io/library/node@{d}"));
        let r = Reference::parse(&format!("127.0.0.1:5000/x@{d}")).unwrap();
        assert_eq!((r.tag.as_deref(), r.to_string()), (None, format!("127.0.0.1:5000/x@{d}")));
    }

    #[test]
    fn refused() {
        for bad in [
            "",
            "Node:20",
            "node:",
            "node:-x",
            "node@sha256:abc",
            "node@md5:00",
            "a//b",
            "a/-b",
            "a..b",
            "ex ample/x",
            "/x",
            "x/",
            "a___b",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
