//! The images a build uses, read from its Dockerfile with Docker's rules, and the Dockerfile rewritten to
//! build from pinned digests.
//!
//! Followed from Docker (BuildKit's `dockerfile2llb` and the classic builder agree on these):
//! - `ARG`s declared before the first `FROM` may be used in `FROM` (and in `--from`); a build arg given
//!   for a declared name replaces its default; a default may use earlier ARGs. With `build.platform`
//!   set, `TARGETPLATFORM`, `TARGETOS`, `TARGETARCH` and `TARGETVARIANT` are known too.
//! - A `FROM` naming an earlier stage (case-insensitively) builds on that stage; `scratch` is no image.
//! - `COPY --from=X`, `ADD --from=X` and `RUN --mount=…,from=X` name a stage (by name or index) or
//!   else an image.
//! - Only the stages the build target needs (the target, or the last stage, and what it builds on or
//!   takes files from, transitively) are built, so only their images are used.
//! - The `# syntax=` directive names the frontend image BuildKit runs the file with.

use crate::dockerfile::{Dockerfile, SourceKind};
use crate::reference::Reference;
use std::collections::{BTreeMap, BTreeSet};

/// Where in a Dockerfile an image is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UseKind {
    From,
    CopyFrom,
    MountFrom,
    Syntax,
}

impl UseKind {
    pub fn describe(self) -> &'static str {
        match self {
            UseKind::From => "FROM",
            UseKind::CopyFrom => "COPY --from",
            UseKind::MountFrom => "RUN --mount from",
            UseKind::Syntax => "# syntax",
        }
    }
}

/// One image a Dockerfile uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageUse {
    pub reference: Reference,
    pub kind: UseKind,
    /// First and last line (1-based) of the instruction.
    pub line: usize,
    pub end_line: usize,
    /// The reference as it reads after ARGs are expanded.
    pub written: String,
    /// The value as written in the file (for `--from` rewriting), before expansion.
    pub raw: String,
}

/// Why the images of a Dockerfile cannot be known: the line and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UseError {
    pub line: usize,
    pub message: String,
    pub help: String,
}

/// The images the build of `target` (the last stage when `None`) uses, in file order, each once per place.
pub fn images_used(
    df: &Dockerfile,
    args: &BTreeMap<String, String>,
    target: Option<&str>,
    platform: Option<&str>,
) -> Result<Vec<ImageUse>, UseError> {
    analyse(df, args, target, platform).map(|(uses, _)| uses)
}

/// The images the build of `target` uses (as [`images_used`]) and the stages it runs (indexes into
/// `df.stages`): BuildKit skips the others.
pub fn analyse(
    df: &Dockerfile,
    args: &BTreeMap<String, String>,
    target: Option<&str>,
    platform: Option<&str>,
) -> Result<(Vec<ImageUse>, BTreeSet<usize>), UseError> {
    let mut uses = Vec::new();
    if let Some(s) = &df.syntax {
        let reference = Reference::parse(&s.image).map_err(|why| UseError {
            line: s.line,
            message: format!("`# syntax={}` does not name an image: {why}", s.image),
            help: "write the frontend image as `docker/dockerfile:1`, or remove the line".into(),
        })?;
        uses.push(ImageUse {
            reference,
            kind: UseKind::Syntax,
            line: s.line,
            end_line: s.line,
            written: s.image.clone(),
            raw: s.image.clone(),
        });
    }
    if df.stages.is_empty() {
        return Ok((uses, BTreeSet::new()));
    }
    let globals = global_args(df, args, platform)?;

    // What each stage builds on: another stage, nothing (scratch) or an image.
    enum Base {
        Stage(usize),
        Scratch,
        Image(String),
    }
    let stage_named = |name: &str, before: usize| {
        df.stages[..before].iter().rposition(|st| st.name.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(name)))
    };
    let mut bases = Vec::with_capacity(df.stages.len());
    for (i, st) in df.stages.iter().enumerate() {
        if st.base.is_empty() {
            return Err(UseError {
                line: st.line,
                message: "`FROM` names no image".into(),
                help: "write `FROM <image>` or `FROM scratch`".into(),
            });
        }
        let base = expand_in(&st.base, &globals, st.line, "FROM", df.escape)?;
        bases.push(if base.eq_ignore_ascii_case("scratch") {
            Base::Scratch
        } else if let Some(j) = stage_named(&base, i) {
            Base::Stage(j)
        } else {
            Base::Image(base)
        });
    }
    let target_stage = match target {
        Some(t) => df.stages.iter().position(|st| st.name.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(t))),
        None => None,
    }
    .unwrap_or(df.stages.len() - 1);

    // Sources per stage: a stage it takes files from, or an image.
    let mut source_stages: Vec<Vec<usize>> = vec![Vec::new(); df.stages.len()];
    let mut source_images: Vec<Vec<(usize, String)>> = vec![Vec::new(); df.stages.len()];
    for (k, src) in df.sources.iter().enumerate() {
        let what = match src.kind {
            SourceKind::Copy => "--from",
            SourceKind::Mount => "--mount from",
        };
        let from = expand_in(&src.from, &globals, src.line, what, df.escape)?;
        if let Ok(n) = from.parse::<usize>() {
            if n < src.stage {
                source_stages[src.stage].push(n);
                continue;
            }
            return Err(UseError {
                line: src.line,
                message: format!("`{what}={from}` names stage {n}, which is not an earlier stage"),
                help: "name an earlier stage (by its `AS` name or its index from 0)".into(),
            });
        }
        match stage_named(&from, src.stage + 1) {
            Some(j) if j != src.stage => source_stages[src.stage].push(j),
            _ => source_images[src.stage].push((k, from)),
        }
    }

    // The stages the target needs.
    let mut needed = BTreeSet::new();
    let mut todo = vec![target_stage];
    while let Some(i) = todo.pop() {
        if !needed.insert(i) {
            continue;
        }
        if let Base::Stage(j) = bases[i] {
            todo.push(j);
        }
        todo.extend(source_stages[i].iter().copied());
    }

    let parse = |text: &str, line: usize, what: &str| {
        Reference::parse(text).map_err(|why| UseError {
            line,
            message: format!("`{what} {text}` does not name an image: {why}"),
            help: "write an image reference such as `node:20`, `registry.example/team/app:1.2` or `name@sha256:…`"
                .into(),
        })
    };
    let mut per_line: Vec<ImageUse> = Vec::new();
    for &i in &needed {
        let st = &df.stages[i];
        if let Base::Image(text) = &bases[i] {
            per_line.push(ImageUse {
                reference: parse(text, st.line, "FROM")?,
                kind: UseKind::From,
                line: st.line,
                end_line: st.end_line,
                written: text.clone(),
                raw: st.base.clone(),
            });
        }
        for (k, text) in &source_images[i] {
            let src = &df.sources[*k];
            let kind = match src.kind {
                SourceKind::Copy => UseKind::CopyFrom,
                SourceKind::Mount => UseKind::MountFrom,
            };
            per_line.push(ImageUse {
                reference: parse(text, src.line, kind.describe())?,
                kind,
                line: src.line,
                end_line: src.end_line,
                written: text.clone(),
                raw: src.from.clone(),
            });
        }
    }
    per_line.sort_by_key(|u| u.line);
    uses.extend(per_line);
    Ok((uses, needed))
}

/// The ARGs declared before the first `FROM`, with the values they take.
fn global_args(
    df: &Dockerfile,
    given: &BTreeMap<String, String>,
    platform: Option<&str>,
) -> Result<BTreeMap<String, Option<String>>, UseError> {
    let mut vars: BTreeMap<String, Option<String>> = BTreeMap::new();
    if let Some(p) = platform {
        let mut parts = p.split('/');
        let os = parts.next().unwrap_or_default();
        let arch = parts.next().unwrap_or_default();
        let variant = parts.next().unwrap_or_default();
        vars.insert("TARGETPLATFORM".into(), Some(p.to_string()));
        vars.insert("TARGETOS".into(), Some(os.to_string()));
        vars.insert("TARGETARCH".into(), Some(arch.to_string()));
        vars.insert("TARGETVARIANT".into(), Some(variant.to_string()));
    }
    let first_from = df.stages.first().map_or(usize::MAX, |s| s.line);
    for a in df.args.iter().filter(|a| a.line < first_from) {
        let value = match (given.get(&a.name), &a.default) {
            (Some(v), _) => Some(v.clone()),
            (None, Some(d)) => Some(expand_in(d, &vars, a.line, "ARG", df.escape)?),
            (None, None) => None,
        };
        vars.insert(a.name.clone(), value);
    }
    Ok(vars)
}

fn expand_in(
    word: &str,
    vars: &BTreeMap<String, Option<String>>,
    line: usize,
    what: &str,
    escape: char,
) -> Result<String, UseError> {
    expand(word, vars, escape).map_err(|missing| {
        let platform_arg = missing.starts_with("TARGET") || missing.starts_with("BUILD");
        let help = if platform_arg {
            format!("set `build.platform` (e.g. \"linux/amd64\") so `{missing}` is known when planning, or write the image in full")
        } else {
            format!(
                "declare it with a default before the first FROM (`ARG {missing}=…`), or give it with `build.args.{missing}`"
            )
        };
        UseError { line, message: format!("`{what} {word}` uses the ARG `{missing}`, which has no value"), help }
    })
}

/// Docker's word expansion (`ProcessWord`): quotes, the escape character, `$V`, `${V}`, `${V:-w}`,
/// `${V-w}`, `${V:+w}`, `${V+w}`. A variable without a value is an error naming it (Docker would put an
/// empty string there and fail later with a less useful message).
pub fn expand(word: &str, vars: &BTreeMap<String, Option<String>>, escape: char) -> Result<String, String> {
    let chars: Vec<char> = word.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    let mut quote: Option<char> = None;
    while i < chars.len() {
        let c = chars[i];
        match (quote, c) {
            (None, '\'') | (None, '"') => {
                quote = Some(c);
                i += 1;
            }
            (Some(q), _) if c == q => {
                quote = None;
                i += 1;
            }
            (Some('\''), _) => {
                out.push(c);
                i += 1;
            }
            (_, e) if e == escape && i + 1 < chars.len() => {
                out.push(chars[i + 1]);
                i += 2;
            }
            (_, '$') => {
                let (value, used) = variable(&chars[i + 1..], vars, escape)?;
                out.push_str(&value);
                i += 1 + used;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(out)
}

/// After a `$`: the value and how many characters were read.
fn variable(rest: &[char], vars: &BTreeMap<String, Option<String>>, escape: char) -> Result<(String, usize), String> {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let lookup = |name: &str| vars.get(name).cloned().flatten();
    if rest.first() == Some(&'{') {
        let Some(close) = rest.iter().position(|&c| c == '}') else {
            return Ok(("$".into(), 0));
        };
        let inner: String = rest[1..close].iter().collect();
        let name_len = inner.chars().take_while(|&c| is_name(c)).count();
        let name = &inner[..name_len];
        let op = &inner[name_len..];
        let value = lookup(name);
        let (colon, op) = match op.strip_prefix(':') {
            Some(o) => (true, o),
            None => (false, op),
        };
        let set = match &value {
            Some(v) => !(colon && v.is_empty()),
            None => false,
        };
        let text = if let Some(w) = op.strip_prefix('-') {
            if set { value.unwrap_or_default() } else { expand(w, vars, escape)? }
        } else if let Some(w) = op.strip_prefix('+') {
            if set { expand(w, vars, escape)? } else { String::new() }
        } else if op.is_empty() {
            value.ok_or_else(|| name.to_string())?
        } else {
            return Err(name.to_string());
        };
        return Ok((text, close + 1));
    }
    let len = rest.iter().take_while(|&&c| is_name(c)).count();
    if len == 0 {
        return Ok(("$".into(), 0));
    }
    let name: String = rest[..len].iter().collect();
    Ok((lookup(&name).ok_or(name)?, len))
}

/// The Dockerfile with every use in `uses` pointing at `pinned(reference)` (`None`: left as written).
/// Line numbers stay the same: an instruction continued over several lines becomes one line followed by
/// empty ones.
pub fn pin_dockerfile(
    text: &str,
    df: &Dockerfile,
    uses: &[ImageUse],
    pinned: impl Fn(&Reference) -> Option<String>,
) -> String {
    let bom = text.starts_with('\u{feff}');
    let body = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines: Vec<String> = body.split_inclusive('\n').map(str::to_string).collect();
    let ending = |l: &str| {
        if l.ends_with("\r\n") {
            "\r\n"
        } else if l.ends_with('\n') {
            "\n"
        } else {
            ""
        }
    };
    for u in uses {
        let Some(to) = pinned(&u.reference) else { continue };
        let Some(first) = lines.get(u.line - 1).cloned() else { continue };
        match u.kind {
            UseKind::Syntax => lines[u.line - 1] = format!("# syntax={to}{}", ending(&first)),
            UseKind::From => {
                let Some(st) = df.stages.iter().find(|s| s.line == u.line) else { continue };
                let mut l = String::from("FROM ");
                if let Some(p) = &st.platform {
                    l.push_str(&format!("--platform={p} "));
                }
                l.push_str(&to);
                if let Some(n) = &st.name {
                    l.push_str(&format!(" AS {n}"));
                }
                let last = lines.get(u.end_line - 1).map(|s| ending(s).to_string()).unwrap_or_default();
                lines[u.line - 1] = format!("{l}{last}");
                for k in u.line..u.end_line.min(lines.len()) {
                    lines[k] = ending(&lines[k]).to_string();
                }
            }
            UseKind::CopyFrom | UseKind::MountFrom => {
                for k in (u.line - 1)..u.end_line.min(lines.len()) {
                    for (from, with) in [
                        (format!("from={}", u.raw), format!("from={to}")),
                        (format!("from=\"{}\"", u.raw), format!("from={to}")),
                        (format!("from='{}'", u.raw), format!("from={to}")),
                    ] {
                        lines[k] = lines[k].replace(&from, &with);
                    }
                }
            }
        }
    }
    let mut out = String::with_capacity(text.len() + 128);
    if bom {
        out.push('\u{feff}');
    }
    out.extend(lines);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    type Uses = Result<Vec<(String, usize)>, String>;
    type Case<'a> = (String, Vec<(&'a str, &'a str)>, Option<&'a str>, Uses);

    fn uses(text: &str, args: &[(&str, &str)], target: Option<&str>) -> Uses {
        let df = Dockerfile::parse(text);
        let args = args.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        images_used(&df, &args, target, None)
            .map(|u| u.into_iter().map(|u| (u.reference.to_string(), u.line)).collect())
            .map_err(|e| format!("{}: {}", e.line, e.message))
    }

    fn ok(v: &[(&str, usize)]) -> Uses {
        Ok(v.iter().map(|(r, l)| (r.to_string(), *l)).collect())
    }

    #[test]
    fn from_and_sources() {
        let d = format!("sha256:{}", "b".repeat(64));
        let table: Vec<Case> = vec![
            ("FROM scratch\n".into(), vec![], None, ok(&[])),
            ("FROM Scratch AS x\nCOPY a /\n".into(), vec![], None, ok(&[])),
            ("FROM node:20\n".into(), vec![], None, ok(&[("docker.io/library/node:20", 1)])),
            // ARGs before the first FROM, defaults, given args, braces and defaults.
            (
                "ARG V=20\nARG IMG=node:${V}-slim\nFROM $IMG\n".into(),
                vec![],
                None,
                ok(&[("docker.io/library/node:20-slim", 3)]),
            ),
            ("ARG V=20\nFROM node:${V}\n".into(), vec![("V", "22")], None, ok(&[("docker.io/library/node:22", 2)])),
            ("FROM node:${V:-18}\n".into(), vec![], None, ok(&[("docker.io/library/node:18", 1)])),
            ("ARG V\nFROM \"node:$V\"\n".into(), vec![("V", "1")], None, ok(&[("docker.io/library/node:1", 2)])),
            // An ARG after the first FROM is not visible in a later FROM.
            (
                "FROM a\nARG V=1\nFROM b:$V\n".into(),
                vec![],
                None,
                Err("3: `FROM b:$V` uses the ARG `V`, which has no value".into()),
            ),
            (
                "ARG V\nFROM node:$V\n".into(),
                vec![],
                None,
                Err("2: `FROM node:$V` uses the ARG `V`, which has no value".into()),
            ),
            // Earlier stage names, case-insensitively; only what the target needs.
            (
                "FROM golang:1 AS Build\nFROM build AS test\nFROM alpine:3 AS runtime\nCOPY --from=BUILD /x /\n".into(),
                vec![],
                Some("runtime"),
                ok(&[("docker.io/library/golang:1", 1), ("docker.io/library/alpine:3", 3)]),
            ),
            (
                "FROM golang:1 AS build\nFROM python:3 AS unused\nFROM alpine:3\nCOPY --from=0 /x /\n".into(),
                vec![],
                None,
                ok(&[("docker.io/library/golang:1", 1), ("docker.io/library/alpine:3", 3)]),
            ),
            (
                "FROM golang:1 AS build\nFROM alpine:3 AS runtime\n".into(),
                vec![],
                Some("build"),
                ok(&[("docker.io/library/golang:1", 1)]),
            ),
            // Images in COPY --from and RUN --mount from, a pinned reference, the syntax directive.
            (
                format!(
                    "# syntax=docker/dockerfile:1.7\nFROM r.example/base@{d}\nCOPY --from=nginx:1.27 /etc/nginx /n\nRUN --mount=type=bind,from=busybox:1,target=/b \\\n  ls /b\n"
                ),
                vec![],
                None,
                ok(&[
                    ("docker.io/docker/dockerfile:1.7", 1),
                    (&format!("r.example/base@{d}"), 2),
                    ("docker.io/library/nginx:1.27", 3),
                    ("docker.io/library/busybox:1", 4),
                ]),
            ),
            // A stage's own name is not an earlier stage: an image of that name.
            ("FROM node:20 AS node\nFROM node\n".into(), vec![], None, ok(&[("docker.io/library/node:20", 1)])),
            (
                "FROM Node:20\n".into(),
                vec![],
                None,
                Err("1: `FROM Node:20` does not name an image: repository name `Node` must be lower-case".into()),
            ),
            (
                "FROM a\nCOPY --from=3 /x /\n".into(),
                vec![],
                None,
                Err("2: `--from=3` names stage 3, which is not an earlier stage".into()),
            ),
        ];
        for (text, args, target, want) in table {
            assert_eq!(uses(&text, &args, target), want, "{text}");
        }
    }

    #[test]
    fn platform_args_need_a_platform() {
        let df = Dockerfile::parse("FROM repo/img:${TARGETARCH}\n");
        let e = images_used(&df, &BTreeMap::new(), None, None).unwrap_err();
        assert!(e.help.contains("build.platform"), "{e:?}");
        let u = images_used(&df, &BTreeMap::new(), None, Some("linux/arm64")).unwrap();
        assert_eq!(u[0].reference.to_string(), "docker.io/repo/img:arm64");
    }

    #[test]
    fn pinning_keeps_lines() {
        let text = "# syntax=docker/dockerfile:1\nARG B=alpine:3\nFROM --platform=$BUILDPLATFORM golang:1 \\\n  AS build\nRUN --mount=type=cache,target=/c --mount=from=busybox:1,target=/b true\nFROM $B\nCOPY --from=build /x /x\nCOPY --from=\"nginx:1\" /y /y\n";
        let df = Dockerfile::parse(text);
        let u = images_used(&df, &BTreeMap::new(), None, None).unwrap();
        let pinned = pin_dockerfile(text, &df, &u, |r| Some(r.with_digest("sha256:0")));
        assert_eq!(
            pinned,
            "# syntax=docker.io/docker/dockerfile@sha256:0\nARG B=alpine:3\nFROM --platform=$BUILDPLATFORM docker.io/library/golang@sha256:0 AS build\n\nRUN --mount=type=cache,target=/c --mount=from=docker.io/library/busybox@sha256:0,target=/b true\nFROM docker.io/library/alpine@sha256:0\nCOPY --from=build /x /x\nCOPY --from=docker.io/library/nginx@sha256:0 /y /y\n"
        );
        assert_eq!(pinned.lines().count(), text.lines().count());
        // The rewritten file reads the same way, with the same stages and lines.
        let again = Dockerfile::parse(&pinned);
        assert_eq!(
            again.stages.iter().map(|s| (s.name.clone(), s.line)).collect::<Vec<_>>(),
            vec![(Some("build".into()), 3), (None, 6)]
        );
    }
}
