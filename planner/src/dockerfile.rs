//! What the planner needs from a Dockerfile: its `ARG` declarations and its stages, read the way
//! Docker's Dockerfile parser (moby/buildkit `frontend/dockerfile/parser`) splits a file into
//! instructions.
//!
//! Followed from Docker: a UTF-8 byte-order mark at the start is dropped; parser directives
//! (`# escape=``, `# syntax=...`) are read from the lines before anything else and `escape` sets the
//! line-continuation character (`\` or `` ` ``); an instruction whose line ends with that character
//! (spaces and tabs after it allowed) continues on the next line, where comment lines and blank lines
//! are skipped; comment lines start with `#` after leading whitespace; keywords are case-insensitive;
//! leading `--flag=value` words are not arguments; `ARG` words are split like Docker's
//! `parseNameOrNameVal` (quotes and the escape character keep a word together).
//!
//! Heredocs (`RUN <<EOF`, `COPY <<-"EOF" /x`) are opaque: the body lines up to the terminator are
//! skipped, so an `ARG` written inside a heredoc body is not a declaration. The classic builder of
//! Docker 20.10 does not support heredocs at all; this follows BuildKit, which does.
//!
//! The parser never fails: what Docker would reject (an invalid `escape` value, a second directive,
//! `FROM a b`, `ARG =x`) is skipped or kept without a stage name, and unknown instructions are ignored.

/// One name declared by an `ARG` instruction (`ARG A B=1` declares two).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDecl {
    pub name: String,
    /// 1-based line of the instruction (its first line when it is continued).
    pub line: usize,
    /// The default exactly as written after `=` (quotes kept, variables not expanded).
    pub default: Option<String>,
}

/// One `FROM` instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageDecl {
    /// The name after `AS`, as written (Docker compares stage names case-insensitively).
    pub name: Option<String>,
    /// 1-based line of the instruction.
    pub line: usize,
    /// 1-based last line of the instruction (after continuations).
    pub end_line: usize,
    /// The base as written: an image, an earlier stage's name or `scratch`, ARGs not yet expanded.
    pub base: String,
    /// `--platform=…` as written.
    pub platform: Option<String>,
}

/// Where an instruction takes files from another stage or an image: `COPY --from=X`, `ADD --from=X`,
/// `RUN --mount=…,from=X`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceDecl {
    /// The stage (index into `stages`) the instruction belongs to.
    pub stage: usize,
    /// `X` as written: a stage name, a stage index or an image.
    pub from: String,
    pub kind: SourceKind,
    pub line: usize,
    pub end_line: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// `COPY --from` or `ADD --from`.
    Copy,
    /// `RUN --mount=…,from=…`.
    Mount,
}

/// `RUN --mount=type=secret,…`: a build secret the step reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretMount {
    /// The stage (index into `stages`) the instruction belongs to.
    pub stage: usize,
    /// `id=`, else the file name of `target=` (as BuildKit defaults it).
    pub id: String,
    /// `required=true`: BuildKit fails the step without the secret. A mount without it gets an empty
    /// directory instead, which pipeline also refuses unless `required=false` is written.
    pub required: Option<bool>,
    pub line: usize,
}

/// The `# syntax=` directive: the frontend image BuildKit runs the file with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Syntax {
    pub image: String,
    pub line: usize,
}

/// The `ARG`s, stages and image sources of a Dockerfile, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    pub args: Vec<ArgDecl>,
    pub stages: Vec<StageDecl>,
    pub sources: Vec<SourceDecl>,
    pub secrets: Vec<SecretMount>,
    pub syntax: Option<Syntax>,
    /// The escape character (`\` unless a directive says `` ` ``).
    pub escape: char,
}

impl Default for Dockerfile {
    fn default() -> Dockerfile {
        Dockerfile { args: vec![], stages: vec![], sources: vec![], secrets: vec![], syntax: None, escape: '\\' }
    }
}

impl Dockerfile {
    /// Reads the `ARG` and `FROM` instructions of a Dockerfile; never fails.
    pub fn parse(text: &str) -> Dockerfile {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let lines: Vec<&str> = text.lines().map(|l| l.strip_suffix('\r').unwrap_or(l)).collect();
        let mut out = Dockerfile::default();
        let mut directives = Directives { escape: '\\', done: false, seen_escape: false, syntax: None };
        let mut next = 0;
        while next < lines.len() {
            let start_line = next + 1;
            let first = lines[next].trim_start();
            next += 1;
            directives.read(first, start_line);
            let is_comment = first.starts_with('#');
            let (head, mut continues) = trim_continuation(if is_comment { "" } else { first }, directives.escape);
            if !continues && head.is_empty() {
                continue;
            }
            let mut instruction = head.to_owned();
            while continues && next < lines.len() {
                let line = lines[next];
                next += 1;
                directives.read(line, next);
                let trimmed = line.trim_start();
                if trimmed.starts_with('#') || trimmed.is_empty() {
                    continue;
                }
                let (part, more) = trim_continuation(line, directives.escape);
                instruction.push_str(part);
                continues = more;
            }
            let end_line = next;
            let (keyword, flags, args) = split_command(&instruction);
            let flag = |name: &str| {
                flags.iter().find_map(|f| {
                    let (k, v) = f.strip_prefix("--")?.split_once('=')?;
                    k.eq_ignore_ascii_case(name).then(|| unquote(v))
                })
            };
            match keyword.as_str() {
                "arg" => {
                    for word in parse_words(args, directives.escape) {
                        let (name, default) = match word.split_once('=') {
                            Some((name, value)) => (name, Some(value.to_owned())),
                            None => (word.as_str(), None),
                        };
                        if !name.is_empty() {
                            out.args.push(ArgDecl { name: name.to_owned(), line: start_line, default });
                        }
                    }
                }
                "from" => {
                    let fields: Vec<&str> = args.split(is_docker_space).filter(|f| !f.is_empty()).collect();
                    let name = match fields[..] {
                        [_, as_, name] if as_.eq_ignore_ascii_case("as") => Some(name.to_owned()),
                        _ => None,
                    };
                    let base = fields.first().map_or_else(String::new, |b| (*b).to_owned());
                    let platform = flag("platform");
                    out.stages.push(StageDecl { name, line: start_line, end_line, base, platform });
                }
                "run" | "copy" | "add" => {
                    if let Some(stage) = out.stages.len().checked_sub(1) {
                        let mut push = |from: String, kind| {
                            out.sources.push(SourceDecl { stage, from, kind, line: start_line, end_line });
                        };
                        if keyword == "run" {
                            let mounts = flags.iter().filter_map(|f| {
                                let (k, v) = f.strip_prefix("--")?.split_once('=')?;
                                k.eq_ignore_ascii_case("mount").then_some(v)
                            });
                            for m in mounts {
                                if let Some(from) = mount_from(m) {
                                    push(from, SourceKind::Mount);
                                }
                                if let Some((id, required)) = secret_mount(m) {
                                    out.secrets.push(SecretMount { stage, id, required, line: start_line });
                                }
                            }
                        } else if let Some(from) = flag("from") {
                            push(from, SourceKind::Copy);
                        }
                    }
                    for terminator in heredoc_terminators(args) {
                        while next < lines.len() {
                            let body = lines[next];
                            next += 1;
                            let body = if terminator.strip_tabs { body.trim_start_matches('\t') } else { body };
                            if body == terminator.word {
                                break;
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        out.syntax = directives.syntax;
        out.escape = directives.escape;
        out
    }

    /// The first `ARG` declaration of `name` (ARG names are case-sensitive), in any stage.
    pub fn declares(&self, name: &str) -> Option<&ArgDecl> {
        self.args.iter().find(|a| a.name == name)
    }

    /// Whether a stage is named `name`, compared case-insensitively as Docker does.
    pub fn has_stage(&self, name: &str) -> bool {
        let name = name.to_lowercase();
        self.stages.iter().any(|s| s.name.as_ref().is_some_and(|n| n.to_lowercase() == name))
    }
}

/// Parser directives: only at the top, each at most once, and only `escape` matters here.
struct Directives {
    escape: char,
    done: bool,
    seen_escape: bool,
    syntax: Option<Syntax>,
}

impl Directives {
    /// Docker's `possibleParserDirective`: the first line that is not a known directive ends them.
    fn read(&mut self, line: &str, number: usize) {
        if self.done {
            return;
        }
        let Some((key, value)) = directive(line) else {
            self.done = true;
            return;
        };
        match key.to_ascii_lowercase().as_str() {
            "escape" => {
                if !self.seen_escape && (value == "\\" || value == "`") {
                    self.escape = if value == "`" { '`' } else { '\\' };
                }
                self.seen_escape = true;
            }
            "syntax" => {
                if self.syntax.is_none() {
                    self.syntax = Some(Syntax { image: value.to_owned(), line: number });
                }
            }
            "check" => {}
            _ => self.done = true,
        }
    }
}

/// `^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$` (Go's `\s` is ASCII).
fn directive(line: &str) -> Option<(&str, &str)> {
    let go_space = |c: char| matches!(c, ' ' | '\t' | '\n' | '\x0C' | '\r');
    let rest = line.strip_prefix('#')?.trim_start_matches(go_space);
    let key_len = rest.find(|c: char| !c.is_ascii_alphanumeric()).unwrap_or(rest.len());
    let key = &rest[..key_len];
    if !key.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return None;
    }
    let value = rest[key_len..].trim_start_matches(go_space).strip_prefix('=')?.trim_matches(go_space);
    (!value.is_empty()).then_some((key, value))
}

/// Removes a trailing continuation character (and the spaces and tabs after it): the text before it
/// and whether the instruction continues.
fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    let trimmed = line.trim_end_matches([' ', '\t']);
    match trimmed.strip_suffix(escape) {
        Some(head) => (head, true),
        None => (line, false),
    }
}

/// Docker's `reWhitespace`: `[\t\v\f\r ]`.
fn is_docker_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\x0B' | '\x0C' | '\r')
}

/// The lower-cased keyword, the leading `--flag` words and the arguments after them (Docker's
/// `splitCommand` and `extractBuilderFlags`).
fn split_command(instruction: &str) -> (String, Vec<&str>, &str) {
    let instruction = instruction.trim();
    let (keyword, rest) = match instruction.find(is_docker_space) {
        Some(i) => (&instruction[..i], instruction[i..].trim_start_matches(is_docker_space)),
        None => (instruction, ""),
    };
    let mut flags = Vec::new();
    let args = split_flags(rest, &mut flags).trim();
    (keyword.to_lowercase(), flags, args)
}

/// `"x"` or `'x'` without its quotes.
fn unquote(v: &str) -> String {
    let q = |c| v.len() >= 2 && v.starts_with(c) && v.ends_with(c);
    if q('"') || q('\'') { v[1..v.len() - 1].to_owned() } else { v.to_owned() }
}

/// The `from=` field of a `--mount` value (comma-separated `key=value` fields, as BuildKit reads them).
fn mount_from(value: &str) -> Option<String> {
    let value = unquote(value);
    value.split(',').find_map(|field| {
        let (k, v) = field.split_once('=')?;
        k.trim().eq_ignore_ascii_case("from").then(|| unquote(v.trim())).filter(|v| !v.is_empty())
    })
}

/// The id and `required` of a `--mount=type=secret,…` value (BuildKit's `instructions/commands_runmount.go`:
/// the id defaults to the file name of the target; `required` alone means true).
fn secret_mount(value: &str) -> Option<(String, Option<bool>)> {
    let value = unquote(value);
    let mut kind = None;
    let mut id = None;
    let mut target = None;
    let mut required = None;
    for field in value.split(',') {
        let (k, v) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), unquote(v.trim())),
            None => (field.trim().to_ascii_lowercase(), String::new()),
        };
        match k.as_str() {
            "type" => kind = Some(v.to_ascii_lowercase()),
            "id" => id = Some(v),
            "target" | "dst" | "destination" => target = Some(v),
            "required" => required = Some(v.is_empty() || v.eq_ignore_ascii_case("true") || v == "1"),
            _ => {}
        }
    }
    if kind.as_deref() != Some("secret") {
        return None;
    }
    let id = id.filter(|i| !i.is_empty()).or_else(|| {
        let t = target?;
        t.trim_end_matches('/').rsplit('/').next().map(str::to_string).filter(|n| !n.is_empty())
    })?;
    Some((id, required))
}

/// Skips leading words that start with `--` (a bare `--` ends the flags), honouring quotes and `\`;
/// the flag words go to `flags`.
fn split_flags<'a>(line: &'a str, flags: &mut Vec<&'a str>) -> &'a str {
    let b = line.as_bytes();
    let space = |c: u8| matches!(c, b' ' | b'\t' | b'\n' | b'\x0B' | b'\x0C' | b'\r');
    let mut pos = 0;
    loop {
        while pos < b.len() && space(b[pos]) {
            pos += 1;
        }
        if pos >= b.len() {
            return "";
        }
        if !(b[pos] == b'-' && b.get(pos + 1) == Some(&b'-')) {
            return line.get(pos..).unwrap_or("");
        }
        let start = pos;
        let mut quote = None;
        while pos < b.len() {
            let c = b[pos];
            match quote {
                None if space(c) => break,
                None if c == b'\'' || c == b'"' => quote = Some(c),
                Some(q) if c == q => quote = None,
                _ if c == b'\\' => pos += 1,
                _ => {}
            }
            pos += 1;
        }
        match line.get(start..pos) {
            Some("--") => return line.get(pos..).unwrap_or(""),
            Some(word) => flags.push(word),
            None => {}
        }
    }
}

/// Docker's `parseWords`: whitespace-separated words, where quotes and the escape character keep
/// whitespace inside a word; quotes and escapes stay in the words.
fn parse_words(rest: &str, escape: char) -> Vec<String> {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote,
    }
    let chars: Vec<char> = rest.chars().collect();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut pos = 0;
    loop {
        let at_end = pos == chars.len();
        let mut ch = chars.get(pos).copied().unwrap_or('\0');
        if phase == Phase::Spaces {
            if at_end {
                break;
            }
            if ch.is_whitespace() {
                pos += 1;
                continue;
            }
            phase = Phase::Word;
        }
        if at_end {
            if blank_ok || !word.is_empty() {
                words.push(word);
            }
            break;
        }
        if phase == Phase::Word {
            if ch.is_whitespace() {
                phase = Phase::Spaces;
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                blank_ok = false;
                pos += 1;
                continue;
            }
            if ch == '\'' || ch == '"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
            }
            if ch == escape {
                if pos + 1 == chars.len() {
                    pos += 1;
                    continue;
                }
                word.push(ch);
                pos += 1;
                ch = chars[pos];
            }
            word.push(ch);
            pos += 1;
            continue;
        }
        // Phase::Quote
        if ch == quote {
            phase = Phase::Word;
        }
        if ch == escape && quote != '\'' {
            if pos + 1 == chars.len() {
                phase = Phase::Word;
                pos += 1;
                continue;
            }
            word.push(ch);
            pos += 1;
            ch = chars[pos];
        }
        word.push(ch);
        pos += 1;
    }
    words
}

struct Heredoc {
    word: String,
    strip_tabs: bool,
}

/// The heredocs an instruction opens (`<<EOF`, `<<-EOF`, `<<"EOF"`, `2<<'EOF'`), in order.
fn heredoc_terminators(args: &str) -> Vec<Heredoc> {
    let mut out = Vec::new();
    let mut rest = args;
    while let Some(i) = rest.find("<<") {
        let before = &rest[..i];
        let at_word_start =
            before.trim_end_matches(|c: char| c.is_ascii_digit()).chars().next_back().is_none_or(char::is_whitespace);
        let mut after = &rest[i + 2..];
        rest = after;
        if !at_word_start || after.starts_with('<') {
            continue;
        }
        let strip_tabs = after.starts_with('-');
        if strip_tabs {
            after = &after[1..];
        }
        let end = after.find(|c: char| c.is_whitespace()).unwrap_or(after.len());
        let word: String = after[..end].chars().filter(|&c| c != '"' && c != '\'').collect();
        if !word.is_empty() && !word.contains('<') {
            out.push(Heredoc { word, strip_tabs });
        }
        rest = &after[end..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    type Args<'a> = &'a [(&'a str, usize, Option<&'a str>)];
    type Stages<'a> = &'a [(Option<&'a str>, usize)];

    #[test]
    fn args_and_stages() {
        let table: &[(&str, Args, Stages)] = &[
            ("FROM scratch\n", &[], &[(None, 1)]),
            ("ARG A\nFROM a AS build\nARG B=1\n", &[("A", 1, None), ("B", 3, Some("1"))], &[(Some("build"), 2)]),
            (
                "ARG A B=1 C=\"x y\" D='p q' E=\n",
                &[
                    ("A", 1, None),
                    ("B", 1, Some("1")),
                    ("C", 1, Some("\"x y\"")),
                    ("D", 1, Some("'p q'")),
                    ("E", 1, Some("")),
                ],
                &[],
            ),
            ("arg lower=a=b\n", &[("lower", 1, Some("a=b"))], &[]),
            ("from a as One\nFROM b As two\nFROM c\n", &[], &[(Some("One"), 1), (Some("two"), 2), (None, 3)]),
            ("FROM --platform=$BUILDPLATFORM golang:1 AS gen\n", &[], &[(Some("gen"), 1)]),
            ("FROM a b\nFROM a AS\n", &[], &[(None, 1), (None, 2)]),
            // Continuations, with comments and blank lines inside.
            (
                "# leading comment\n\nARG A \\\n  # inside\n\n  B=2 \\  \n  C\nFROM x \\\n  AS y\n",
                &[("A", 3, None), ("B", 3, Some("2")), ("C", 3, None)],
                &[(Some("y"), 8)],
            ),
            // The escape directive switches the continuation character.
            (
                "# escape=`\nARG A=C:\\dir\\\nFROM x `\n  AS w\nARG B=`\n1\n",
                &[("A", 2, Some("C:\\dir\\")), ("B", 5, Some("1"))],
                &[(Some("w"), 3)],
            ),
            // Directives only count at the very top.
            ("\n# escape=`\nARG A=`\nARG B\n", &[("A", 3, Some("`")), ("B", 4, None)], &[]),
            ("# syntax=docker/dockerfile:1\n# escape=`\nARG A=`\nB\n", &[("A", 3, Some("B"))], &[]),
            ("# foo=bar\n# escape=`\nARG A=`\nARG B\n", &[("A", 3, Some("`")), ("B", 4, None)], &[]),
            // Escaped spaces and quotes keep words together.
            ("ARG A=a\\ b C\n", &[("A", 1, Some("a\\ b")), ("C", 1, None)], &[]),
            ("ARG =x Y\n", &[("Y", 1, None)], &[]),
            ("   arg   INDENTED\n", &[("INDENTED", 1, None)], &[]),
            ("\u{feff}ARG BOM\r\nFROM a AS b\r\n", &[("BOM", 1, None)], &[(Some("b"), 2)]),
            // Heredoc bodies are opaque.
            (
                concat!(
                    "FROM a\nRUN <<EOF\nARG NOT_ME\nEOF\nARG AFTER\n",
                    "COPY <<-\"X\" <<Y /dst\n\tARG NO1\n\tX\nARG NO2\nY\nARG LAST\n",
                ),
                &[("AFTER", 5, None), ("LAST", 11, None)],
                &[(None, 1)],
            ),
            ("RUN echo $((1<<2)) && cat <<<x\nARG KEPT\n", &[("KEPT", 2, None)], &[]),
            ("ONBUILD ARG NOPE\nMAINTAINER x\nUNKNOWN y\n", &[], &[]),
            ("ARG A \\\n", &[("A", 1, None)], &[]),
            // Inside a continuation, leading whitespace is kept: `B=` and `1` are two words.
            ("ARG B=\\\n  1\n", &[("B", 1, Some("")), ("1", 1, None)], &[]),
        ];
        for (text, args, stages) in table {
            let df = Dockerfile::parse(text);
            let got_args: Vec<(&str, usize, Option<&str>)> =
                df.args.iter().map(|a| (a.name.as_str(), a.line, a.default.as_deref())).collect();
            assert_eq!(&got_args, args, "args of {text:?}");
            let got_stages: Vec<(Option<&str>, usize)> =
                df.stages.iter().map(|s| (s.name.as_deref(), s.line)).collect();
            assert_eq!(&got_stages, stages, "stages of {text:?}");
        }
    }

    proptest::proptest! {
        /// Never fails, never panics, on any text.
        #[test]
        fn never_panics(text in "([A-Za-z =\"'`#\\\\<-]|\n|\r|\t|\u{feff}|é){0,80}") {
            let df = Dockerfile::parse(&text);
            for arg in &df.args {
                proptest::prop_assert!(!arg.name.is_empty());
            }
        }
    }

    #[test]
    fn secret_mounts() {
        let df = Dockerfile::parse(concat!(
            "FROM a\n",
            "RUN --mount=type=secret,id=NPM_TOKEN npm ci\n",
            "RUN --mount=type=cache,target=/c --mount=type=secret,target=/run/secrets/aws,required=false x\n",
            "FROM b\n",
            "RUN --mount=\"type=secret,id=gh,required\" \\\n  y\n",
            "RUN --mount=type=bind,source=a,target=/b z\n",
        ));
        let got: Vec<(usize, &str, Option<bool>, usize)> =
            df.secrets.iter().map(|m| (m.stage, m.id.as_str(), m.required, m.line)).collect();
        assert_eq!(got, [(0, "NPM_TOKEN", None, 2), (0, "aws", Some(false), 3), (1, "gh", Some(true), 5)]);
    }

    #[test]
    fn lookups() {
        let df = Dockerfile::parse("ARG V=1\nFROM a AS Build\nARG V=2\nARG W\n");
        assert_eq!(df.declares("V").map(|a| (a.line, a.default.as_deref())), Some((1, Some("1"))));
        assert!(df.declares("v").is_none());
        assert_eq!(df.declares("W").map(|a| a.line), Some(4));
        assert!(df.has_stage("build") && df.has_stage("BUILD"));
        assert!(!df.has_stage("other"));
        assert_eq!(Dockerfile::parse(""), Dockerfile::default());
    }
}
