//! `.dockerignore` exactly as the Docker CLI applies it when it tars a build context: a port of
//! moby/patternmatcher (`ignorefile.ReadAll`, `New`, `Pattern.compile`, the matchers), of Go's
//! `filepath.Clean` and of the pruning rule of the CLI's context walk (`archive.TarWithOptions`).
//!
//! What is sent, in the CLI's own terms:
//! - the walk visits the context depth first and matches every path with
//!   `MatchesUsingParentResults`: a directory hands down, per pattern, whether that pattern matched it
//!   (or one of its own parents), and a pattern recorded for the parent applies to the child without
//!   being evaluated again ([`Dockerignore::match_dir`], [`Dockerignore::excludes_in`]);
//! - an excluded directory is skipped whole unless some `!` pattern, read as plain text, starts with
//!   `dir/` ([`Dockerignore::can_skip_dir`]); inside a directory that is not skipped, every entry is
//!   matched on its own;
//! - [`Dockerignore::excludes`] answers for one path by replaying that walk along the path's parents.
//!
//! `MatchesOrParentMatches`, which the CLI uses only to validate the context and to decide whether
//! the Dockerfile and `.dockerignore` need re-including, is [`Dockerignore::matches_or_parent_matches`].
//! The two differ in one corner: with `d`, `!d/f`, `d` the walk sends `d/f` (the second `d` is
//! skipped while the parent `d` is matched, so it is never recorded) while
//! `MatchesOrParentMatches("d/f")` says excluded. The agreement test in `tests/dockerignore_docker.rs`
//! pins the walk's answer against a real Docker.
//!
//! Glob patterns become Go regular expressions the way patternmatcher builds them, and those are
//! translated from Go's RE2 syntax into the `regex` crate's syntax (Go's `[[]` is a class holding `[`,
//! `\d` is ASCII, `\Q...\E` quotes, and so on), so that odd patterns such as `[*]` or `a\d` match what
//! Docker matches. Unicode classes (`\p{Greek}`) are checked against Go's names but matched with the
//! `regex` crate's tables.
//!
//! One deliberate difference: Docker compiles a pattern's regular expression only when it first
//! evaluates it, and a pattern that does not compile then aborts the walk (the build goes on with the
//! context cut short) or fails the context check. This port compiles every pattern up front and refuses
//! the file, naming the line.

use miette::{Diagnostic, SourceSpan};
use regex::Regex;

/// Lines this long stop Go's `bufio.Scanner` (its 64 KiB token limit), which fails the read.
const MAX_LINE_LEN: usize = 64 * 1024;

/// The patterns of one `.dockerignore`, ready to match paths relative to the build context.
#[derive(Debug, Clone, Default)]
pub struct Dockerignore {
    patterns: Vec<Pattern>,
    has_exclusions: bool,
}

/// Per pattern, whether it matched a directory or one of its parents: what the CLI's walk hands from
/// a directory to its entries (patternmatcher's `MatchInfo`). Only meaningful with the
/// [`Dockerignore`] that made it; [`MatchInfo::default`] stands for the context root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MatchInfo {
    matched: Vec<bool>,
}

/// A `.dockerignore` that Docker would refuse.
#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum DockerignoreError {
    /// Go's line scanner gives up on lines of 64 KiB or more.
    #[error("line {line} of .dockerignore is longer than Docker reads (65535 bytes)")]
    #[diagnostic(
        code(pipeline::dockerignore::line_too_long),
        help("Docker fails the whole build on such a line; shorten or remove it")
    )]
    LineTooLong {
        line: usize,
        #[source_code]
        src: String,
        #[label("this line")]
        span: SourceSpan,
    },
    /// A line that is only `!` (after trimming and cleaning, e.g. `! /`).
    #[error("line {line} of .dockerignore has `!` with no pattern after it")]
    #[diagnostic(
        code(pipeline::dockerignore::empty_exclusion),
        help("write the path to re-include after the `!` (e.g. `!keep.txt`) or delete the line")
    )]
    EmptyExclusion {
        line: usize,
        #[source_code]
        src: String,
        #[label("nothing to re-include")]
        span: SourceSpan,
    },
    /// A pattern that Go's `filepath.Match` or `regexp` rejects.
    #[error("line {line} of .dockerignore has a bad pattern `{pattern}`: {reason}")]
    #[diagnostic(
        code(pipeline::dockerignore::bad_pattern),
        help(
            "close every `[` with `]`, start no range with `-` or `]`, and write `\\[`, `\\]`, `\\\\` for literal ones"
        )
    )]
    BadPattern {
        line: usize,
        pattern: String,
        reason: String,
        #[source_code]
        src: String,
        #[label("{reason}")]
        span: SourceSpan,
    },
}

#[derive(Debug, Clone)]
struct Pattern {
    /// patternmatcher's `cleanedPattern`: without the `!`.
    text: String,
    exclusion: bool,
    matcher: Matcher,
}

#[derive(Debug, Clone)]
enum Matcher {
    Exact,
    /// `text` ends in `**`; everything before it is a literal prefix.
    Prefix,
    /// `text` starts with `**`; everything after it is a literal suffix.
    Suffix,
    Regex(Regex),
}

impl Pattern {
    fn matches(&self, path: &str) -> bool {
        let text = self.text.as_bytes();
        let path_b = path.as_bytes();
        match &self.matcher {
            Matcher::Exact => path == self.text,
            Matcher::Prefix => path_b.starts_with(text.get(..text.len().saturating_sub(2)).unwrap_or_default()),
            Matcher::Suffix => {
                let suffix = text.get(2..).unwrap_or_default();
                // `**/foo` also matches `foo` itself.
                path_b.ends_with(suffix) || (suffix.first() == Some(&b'/') && path_b == &suffix[1..])
            }
            Matcher::Regex(re) => re.is_match(path),
        }
    }

    /// Whether the pattern matches one of the parent directories of `path` (patternmatcher's loop over
    /// `filepath.Dir(path)` split at `/`).
    fn matches_a_parent(&self, path: &str) -> bool {
        path.match_indices('/').any(|(i, _)| i > 0 && self.matches(&path[..i]))
    }
}

impl Dockerignore {
    /// Reads a `.dockerignore` the way the Docker CLI does and compiles its patterns.
    pub fn parse(text: &str) -> Result<Self, DockerignoreError> {
        let mut patterns = Vec::new();
        let mut start = 0;
        let mut line_no = 0;
        while start < text.len() {
            let end = text[start..].find('\n').map_or(text.len(), |i| start + i);
            let raw = &text[start..end];
            line_no += 1;
            let span = SourceSpan::from(start..end);
            if raw.len() >= MAX_LINE_LEN {
                return Err(DockerignoreError::LineTooLong { line: line_no, src: text.to_owned(), span });
            }
            start = end + 1;
            if let Some(p) = read_line(raw, line_no == 1)
                && let Some(p) = new_pattern(&p, line_no, text, span)?
            {
                patterns.push(p);
            }
        }
        let has_exclusions = patterns.iter().any(|p| p.exclusion);
        Ok(Dockerignore { patterns, has_exclusions })
    }

    /// True when the file has no patterns (only comments and blank lines, or nothing).
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether the CLI leaves `path` (relative to the context, `/`-separated) out of the build context:
    /// the path itself is excluded, or one of its parent directories is excluded and may be skipped whole.
    /// Every parent is assumed to be a directory; the context root itself (`.`, ``) is never excluded.
    pub fn excludes(&self, path: &str) -> bool {
        let path = clean(path);
        let path = path.strip_prefix('/').unwrap_or(&path);
        if path == "." || path.is_empty() || self.patterns.is_empty() {
            return false;
        }
        let mut info = MatchInfo::default();
        for (i, _) in path.match_indices('/') {
            let dir = &path[..i];
            let (excluded, dir_info) = self.match_dir(dir, &info);
            if excluded && self.can_skip_dir(dir) {
                return true;
            }
            info = dir_info;
        }
        self.excludes_in(path, &info)
    }

    /// For an excluded directory: true when the walk may skip it whole. The CLI's rule is textual: a
    /// directory is descended only if some `!` pattern, plus `/`, starts with `dir/`.
    pub fn can_skip_dir(&self, dir: &str) -> bool {
        if !self.has_exclusions {
            return true;
        }
        !self.patterns.iter().any(|p| {
            p.exclusion
                && p.text.starts_with(dir)
                && (p.text.len() == dir.len() || p.text.as_bytes()[dir.len()] == b'/')
        })
    }

    /// Whether the entry `path`, directly inside the directory whose [`MatchInfo`] is `parent`, is
    /// excluded (patternmatcher's `MatchesUsingParentResults`). For entries of the context root pass
    /// `&MatchInfo::default()`.
    pub fn excludes_in(&self, path: &str, parent: &MatchInfo) -> bool {
        self.eval(path, parent, None)
    }

    /// Like [`Dockerignore::excludes_in`] for a directory, also giving the [`MatchInfo`] to match its
    /// entries with.
    pub fn match_dir(&self, path: &str, parent: &MatchInfo) -> (bool, MatchInfo) {
        let mut matched = Vec::with_capacity(self.patterns.len());
        let excluded = self.eval(path, parent, Some(&mut matched));
        (excluded, MatchInfo { matched })
    }

    /// patternmatcher's `MatchesOrParentMatches`: the last pattern that matches `path` or one of its
    /// parent directories decides. This is what the CLI uses to validate the context, not what it sends
    /// (see the module documentation).
    pub fn matches_or_parent_matches(&self, path: &str) -> bool {
        let path = clean(path);
        if path == "." {
            return false;
        }
        self.eval(&path, &MatchInfo::default(), None)
    }

    fn eval(&self, path: &str, parent: &MatchInfo, mut record: Option<&mut Vec<bool>>) -> bool {
        // A MatchInfo from another matcher is ignored, as Go refuses it.
        let parent = if parent.matched.len() == self.patterns.len() { &parent.matched[..] } else { &[] };
        let mut matched = false;
        for (i, p) in self.patterns.iter().enumerate() {
            let mut hit = parent.get(i).copied().unwrap_or(false);
            // Skipping is exactly Go's: an inclusion once matched, an exclusion while unmatched.
            if !hit && p.exclusion == matched {
                hit = p.matches(path) || (parent.is_empty() && p.matches_a_parent(path));
            }
            if let Some(rec) = record.as_deref_mut() {
                rec.push(hit);
            }
            if hit {
                matched = !p.exclusion;
            }
        }
        matched
    }
}

/// `ignorefile.ReadAll` for one line: the pattern text (with its `!`) or nothing for comments and
/// blank lines.
fn read_line(raw: &str, first: bool) -> Option<String> {
    let mut line = raw.strip_suffix('\r').unwrap_or(raw);
    if first {
        line = line.strip_prefix('\u{feff}').unwrap_or(line);
    }
    // Comments are recognised before trimming: ` # x` is a pattern.
    if line.starts_with('#') {
        return None;
    }
    let line = line.trim();
    if line.is_empty() {
        return None;
    }
    let (invert, body) = match line.strip_prefix('!') {
        Some(rest) => (true, rest.trim()),
        None => (false, line),
    };
    let mut pattern = String::with_capacity(body.len() + 1);
    if invert {
        pattern.push('!');
    }
    if !body.is_empty() {
        let cleaned = clean(body);
        let cleaned = if cleaned.len() > 1 { cleaned.strip_prefix('/').unwrap_or(&cleaned) } else { &cleaned };
        pattern.push_str(cleaned);
    }
    Some(pattern)
}

/// patternmatcher's `New` for one pattern, plus its compilation.
fn new_pattern(p: &str, line: usize, src: &str, span: SourceSpan) -> Result<Option<Pattern>, DockerignoreError> {
    let p = p.trim();
    if p.is_empty() {
        return Ok(None);
    }
    let p = clean(p);
    let (exclusion, text) = match p.strip_prefix('!') {
        Some("") => return Err(DockerignoreError::EmptyExclusion { line, src: src.to_owned(), span }),
        Some(rest) => (true, rest.to_owned()),
        None => (false, p),
    };
    let bad = |reason: String| DockerignoreError::BadPattern {
        line,
        pattern: text.clone(),
        reason,
        src: src.to_owned(),
        span,
    };
    check_match_syntax(&text).map_err(|r| bad(r.to_owned()))?;
    let matcher = compile(&text).map_err(bad)?;
    Ok(Some(Pattern { text, exclusion, matcher }))
}

/// Go's `filepath.Clean` on `/`-separated paths: one `/` between elements, no `.` elements, `..`
/// resolved lexically (kept at the start of relative paths, dropped at the root), `.` for nothing.
pub fn clean(path: &str) -> String {
    if path.is_empty() {
        return ".".to_owned();
    }
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    // How many leading `..` elements `parts` holds: those cannot be backtracked over.
    let mut dotdots = 0;
    for elem in path.split('/') {
        match elem {
            "" | "." => {}
            ".." => {
                if parts.len() > dotdots {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                    dotdots += 1;
                }
            }
            _ => parts.push(elem),
        }
    }
    let mut out = String::with_capacity(path.len());
    if rooted {
        out.push('/');
    }
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            out.push('/');
        }
        out.push_str(part);
    }
    if out.is_empty() {
        out.push('.');
    }
    out
}

/// The syntax check `filepath.Match(pattern, ".")` makes (Go checks every chunk, matched or not).
fn check_match_syntax(p: &str) -> Result<(), &'static str> {
    let mut chars = p.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next().ok_or("`\\` at the end of the pattern escapes nothing")?;
            }
            '[' => {
                let mut rest = chars.as_str();
                rest = rest.strip_prefix('^').unwrap_or(rest);
                let mut ranges = 0;
                loop {
                    if ranges > 0
                        && let Some(after) = rest.strip_prefix(']')
                    {
                        rest = after;
                        break;
                    }
                    rest = class_escape(rest)?;
                    if let Some(after) = rest.strip_prefix('-') {
                        rest = class_escape(after)?;
                    }
                    ranges += 1;
                }
                chars = rest.chars();
            }
            _ => {}
        }
    }
    Ok(())
}

/// Go's `getEsc`: one (possibly escaped) character of a `[...]` class, which must be followed by more.
fn class_escape(s: &str) -> Result<&str, &'static str> {
    let unclosed = "`[` is not closed by `]`";
    let mut s = match s.chars().next() {
        None => return Err(unclosed),
        Some('-') => return Err("a range in `[...]` starts with `-`"),
        Some(']') => return Err("`[...]` is empty or a range in it ends early"),
        Some('\\') => &s[1..],
        Some(_) => s,
    };
    let c = s.chars().next().ok_or(unclosed)?;
    s = &s[c.len_utf8()..];
    if s.is_empty() {
        return Err(unclosed);
    }
    Ok(s)
}

/// patternmatcher's `Pattern.compile`: the match kind and, for regexp patterns, the regular
/// expression (built as the Go text, then translated).
fn compile(p: &str) -> Result<Matcher, String> {
    #[derive(PartialEq)]
    enum Kind {
        Exact,
        Prefix,
        Suffix,
        Regexp,
    }
    let mut re = String::from("^");
    let mut kind = Kind::Exact;
    let mut chars = p.chars().peekable();
    // Go's text/scanner drops a byte-order mark at the very start.
    if chars.peek() == Some(&'\u{feff}') {
        chars.next();
    }
    let mut i = 0;
    while let Some(ch) = chars.next() {
        match ch {
            '*' if chars.peek() == Some(&'*') => {
                chars.next();
                if chars.peek() == Some(&'/') {
                    chars.next();
                }
                if chars.peek().is_none() {
                    if kind == Kind::Exact {
                        kind = Kind::Prefix;
                    } else {
                        re.push_str(".*");
                        kind = Kind::Regexp;
                    }
                } else {
                    re.push_str("(.*/)?");
                    kind = Kind::Regexp;
                }
                if i == 0 {
                    kind = Kind::Suffix;
                }
            }
            '*' => {
                re.push_str("[^/]*");
                kind = Kind::Regexp;
            }
            '?' => {
                re.push_str("[^/]");
                kind = Kind::Regexp;
            }
            '.' | '+' | '(' | ')' | '|' | '{' | '}' | '$' => {
                re.push('\\');
                re.push(ch);
            }
            '\\' => match chars.next() {
                Some(next) => {
                    re.push('\\');
                    re.push(next);
                    kind = Kind::Regexp;
                }
                None => re.push('\\'),
            },
            '[' | ']' => {
                re.push(ch);
                kind = Kind::Regexp;
            }
            _ => re.push(ch),
        }
        i += 1;
    }
    Ok(match kind {
        Kind::Exact => Matcher::Exact,
        Kind::Prefix => Matcher::Prefix,
        Kind::Suffix => Matcher::Suffix,
        Kind::Regexp => {
            re.push('$');
            let rust = go_regex::translate(&re)?;
            Matcher::Regex(Regex::new(&rust).map_err(|e| format!("the regular expression does not compile: {e}"))?)
        }
    })
}

/// Go's RE2 syntax (as `regexp.Compile` reads it, flags `Perl`) translated into the `regex` crate's,
/// for the expressions [`compile`] can produce.
mod go_regex {
    use std::fmt::Write as _;

    const POSIX_CLASSES: &[&str] = &[
        "alnum", "alpha", "ascii", "blank", "cntrl", "digit", "graph", "lower", "print", "punct", "space", "upper",
        "word", "xdigit",
    ];

    const CATEGORIES: &[&str] = &[
        "C", "Cc", "Cf", "Co", "Cs", "L", "Ll", "Lm", "Lo", "Lt", "Lu", "M", "Mc", "Me", "Mn", "N", "Nd", "Nl", "No",
        "P", "Pc", "Pd", "Pe", "Pf", "Pi", "Po", "Ps", "S", "Sc", "Sk", "Sm", "So", "Z", "Zl", "Zp", "Zs",
    ];

    /// Go 1.24's `unicode.Scripts` (Unicode 15.0), space-separated.
    const SCRIPTS: &str = "Adlam Ahom Anatolian_Hieroglyphs Arabic Armenian Avestan Balinese Bamum Bassa_Vah Batak \
         Bengali Bhaiksuki Bopomofo Brahmi Braille Buginese Buhid Canadian_Aboriginal Carian \
         Caucasian_Albanian Chakma Cham Cherokee Chorasmian Common Coptic Cuneiform Cypriot \
         Cypro_Minoan Cyrillic Deseret Devanagari Dives_Akuru Dogra Duployan \
         Egyptian_Hieroglyphs Elbasan Elymaic Ethiopic Georgian Glagolitic Gothic Grantha Greek \
         Gujarati Gunjala_Gondi Gurmukhi Han Hangul Hanifi_Rohingya Hanunoo Hatran Hebrew \
         Hiragana Imperial_Aramaic Inherited Inscriptional_Pahlavi Inscriptional_Parthian \
         Javanese Kaithi Kannada Katakana Kawi Kayah_Li Kharoshthi Khitan_Small_Script Khmer \
         Khojki Khudawadi Lao Latin Lepcha Limbu Linear_A Linear_B Lisu Lycian Lydian Mahajani \
         Makasar Malayalam Mandaic Manichaean Marchen Masaram_Gondi Medefaidrin Meetei_Mayek \
         Mende_Kikakui Meroitic_Cursive Meroitic_Hieroglyphs Miao Modi Mongolian Mro Multani \
         Myanmar Nabataean Nag_Mundari Nandinagari New_Tai_Lue Newa Nko Nushu \
         Nyiakeng_Puachue_Hmong Ogham Ol_Chiki Old_Hungarian Old_Italic Old_North_Arabian \
         Old_Permic Old_Persian Old_Sogdian Old_South_Arabian Old_Turkic Old_Uyghur Oriya Osage \
         Osmanya Pahawh_Hmong Palmyrene Pau_Cin_Hau Phags_Pa Phoenician Psalter_Pahlavi Rejang \
         Runic Samaritan Saurashtra Sharada Shavian Siddham SignWriting Sinhala Sogdian \
         Sora_Sompeng Soyombo Sundanese Syloti_Nagri Syriac Tagalog Tagbanwa Tai_Le Tai_Tham \
         Tai_Viet Takri Tamil Tangsa Tangut Telugu Thaana Thai Tibetan Tifinagh Tirhuta Toto \
         Ugaritic Vai Vithkuqi Wancho Warang_Citi Yezidi Yi Zanabazar_Square";

    /// Matches no character (Go can name surrogates, which never occur in a string).
    const NOTHING: &str = r"[^\x{0}-\x{10FFFF}]";

    struct Translator<'a> {
        s: &'a str,
        pos: usize,
        out: String,
    }

    pub(super) fn translate(go: &str) -> Result<String, String> {
        let mut t = Translator { s: go, pos: 0, out: String::with_capacity(go.len() * 2) };
        while let Some(c) = t.rest().chars().next() {
            match c {
                '\\' => t.top_escape()?,
                '[' => t.class()?,
                '(' => {
                    if t.rest()[1..].starts_with('?') {
                        return Err("`(?` groups are not supported".to_owned());
                    }
                    t.pos += 1;
                    t.out.push_str("(?:");
                }
                // `compile` escapes `{` and every other operator it does not emit itself.
                ')' | '|' | '.' | '^' | '$' | '*' | '+' | '?' => {
                    t.pos += 1;
                    t.out.push(c);
                }
                _ => {
                    t.pos += c.len_utf8();
                    push_literal(&mut t.out, c);
                }
            }
        }
        Ok(t.out)
    }

    impl<'a> Translator<'a> {
        fn rest(&self) -> &'a str {
            &self.s[self.pos..]
        }

        /// A `\` outside a class (Go's `parse`, case '\\').
        fn top_escape(&mut self) -> Result<(), String> {
            let rest = &self.s[self.pos + 1..];
            let Some(c) = rest.chars().next() else {
                return Err("trailing backslash at end of expression".to_owned());
            };
            let simple = match c {
                'A' => Some(r"\A"),
                'z' => Some(r"\z"),
                // Go's word boundaries are ASCII.
                'b' => Some(r"(?-u:\b)"),
                'B' => Some(r"(?-u:\B)"),
                'C' => return Err(r"invalid escape sequence: `\C`".to_owned()),
                _ => None,
            };
            if let Some(s) = simple {
                self.out.push_str(s);
                self.pos += 2;
                return Ok(());
            }
            if c == 'Q' {
                let after = &rest[1..];
                let (lit, used) = match after.find(r"\E") {
                    Some(i) => (&after[..i], i + 2),
                    None => (after, after.len()),
                };
                for ch in lit.chars() {
                    push_literal(&mut self.out, ch);
                }
                self.pos += 2 + used;
                return Ok(());
            }
            if c == 'p' || c == 'P' {
                let class = self.unicode_class()?;
                self.out.push_str(&class);
                return Ok(());
            }
            if let Some(class) = perl_class(c) {
                self.out.push_str(class);
                self.pos += 2;
                return Ok(());
            }
            let (r, used) = parse_escape(self.rest())?;
            self.pos += used;
            match char::from_u32(r) {
                Some(ch) => push_literal(&mut self.out, ch),
                None => self.out.push_str(NOTHING),
            }
            Ok(())
        }

        /// `\pN`, `\p{Name}`, `\PN`, `\p{^Name}` at `pos` (Go's `parseUnicodeClass`).
        fn unicode_class(&mut self) -> Result<String, String> {
            let s = self.rest();
            let mut negated = s.as_bytes()[1] == b'P';
            let t = &s[2..];
            let (seq_len, mut name) = match t.chars().next() {
                Some('{') => {
                    let end = s.find('}').ok_or_else(|| format!("invalid character class range: `{s}`"))?;
                    (end + 1, &s[3..end])
                }
                Some(c) => (2 + c.len_utf8(), &t[..c.len_utf8()]),
                None => (2, ""),
            };
            if let Some(n) = name.strip_prefix('^') {
                negated = !negated;
                name = n;
            }
            if name != "Any" && !CATEGORIES.contains(&name) && !SCRIPTS.split(' ').any(|s| s == name) {
                return Err(format!("invalid character class range: `{}`", &s[..seq_len]));
            }
            self.pos += seq_len;
            Ok(format!(r"\{}{{{name}}}", if negated { 'P' } else { 'p' }))
        }

        /// A `[...]` class at `pos` (Go's `parseClass`, flags `Perl`).
        fn class(&mut self) -> Result<(), String> {
            let whole = self.rest().to_owned();
            self.pos += 1;
            let mut out = String::from("[");
            let negated = self.rest().starts_with('^');
            if negated {
                self.pos += 1;
                out.push('^');
            }
            let mut items = 0;
            let mut first = true;
            loop {
                let rest = self.rest();
                if rest.is_empty() {
                    return Err(format!("missing closing ]: `{whole}`"));
                }
                if rest.starts_with(']') && !first {
                    self.pos += 1;
                    break;
                }
                first = false;
                if let Some(after) = rest.strip_prefix("[:") {
                    // Go looks for the `:]` anywhere further on, even past the class.
                    if let Some(i) = after.find(":]") {
                        let name = &after[..i];
                        let bare = name.strip_prefix('^').unwrap_or(name);
                        if !POSIX_CLASSES.contains(&bare) {
                            return Err(format!("invalid character class range: `[:{name}:]`"));
                        }
                        out.push_str(&rest[..i + 4]);
                        items += 1;
                        self.pos += i + 4;
                        continue;
                    }
                }
                if rest.starts_with(r"\p") || rest.starts_with(r"\P") {
                    let class = self.unicode_class()?;
                    out.push_str(&class);
                    items += 1;
                    continue;
                }
                if let Some(class) = rest.strip_prefix('\\').and_then(|r| r.chars().next()).and_then(perl_class) {
                    out.push_str(class);
                    items += 1;
                    self.pos += 2;
                    continue;
                }
                let lo = self.class_char()?;
                let mut hi = lo;
                let rest = self.rest().as_bytes();
                if rest.len() >= 2 && rest[0] == b'-' && rest[1] != b']' {
                    self.pos += 1;
                    hi = self.class_char()?;
                    if hi < lo {
                        return Err("invalid character class range".to_owned());
                    }
                }
                if push_range(&mut out, lo, hi) {
                    items += 1;
                }
            }
            if items == 0 {
                // Only surrogates were named: the class is empty (or, negated, everything).
                out = if negated { r"[\x{0}-\x{10FFFF}]".to_owned() } else { NOTHING.to_owned() };
            } else {
                out.push(']');
            }
            self.out.push_str(&out);
            Ok(())
        }

        /// Go's `parseClassChar`.
        fn class_char(&mut self) -> Result<u32, String> {
            let rest = self.rest();
            if rest.starts_with('\\') {
                let (r, used) = parse_escape(rest)?;
                self.pos += used;
                return Ok(r);
            }
            let c = rest.chars().next().ok_or("missing closing ]")?;
            self.pos += c.len_utf8();
            Ok(c as u32)
        }
    }

    /// Go's Perl classes, which are ASCII-only.
    fn perl_class(c: char) -> Option<&'static str> {
        Some(match c {
            'd' => "[0-9]",
            'D' => "[^0-9]",
            's' => r"[\t\n\x0C\r ]",
            'S' => r"[^\t\n\x0C\r ]",
            'w' => "[0-9A-Za-z_]",
            'W' => "[^0-9A-Za-z_]",
            _ => return None,
        })
    }

    /// Go's `parseEscape` on `s` (which starts with `\`): the code point and the bytes used.
    fn parse_escape(s: &str) -> Result<(u32, usize), String> {
        let invalid = |len: usize| format!("invalid escape sequence: `{}`", s.get(..len).unwrap_or(s));
        let t = &s[1..];
        let Some(c) = t.chars().next() else {
            return Err("trailing backslash at end of expression".to_owned());
        };
        let after = 1 + c.len_utf8();
        let octal = |b: Option<&u8>| b.is_some_and(|b| (b'0'..=b'7').contains(b));
        match c {
            _ if c.is_ascii() && !c.is_ascii_alphanumeric() => Ok((c as u32, after)),
            '1'..='7' if !octal(s.as_bytes().get(after)) => Err(invalid(after)),
            '0'..='7' => {
                let mut r = c as u32 - '0' as u32;
                let mut used = after;
                for _ in 1..3 {
                    match s.as_bytes().get(used) {
                        Some(b) if octal(Some(b)) => {
                            r = r * 8 + u32::from(b - b'0');
                            used += 1;
                        }
                        _ => break,
                    }
                }
                Ok((r, used))
            }
            'x' => {
                let rest = &s[after..];
                if let Some(body) = rest.strip_prefix('{') {
                    let end = body.find('}').ok_or_else(|| invalid(s.len()))?;
                    let digits = &body[..end];
                    let used = after + 1 + end + 1;
                    if digits.is_empty() || !digits.chars().all(|d| d.is_ascii_hexdigit()) {
                        return Err(invalid(used.min(s.len())));
                    }
                    match u32::from_str_radix(digits, 16) {
                        Ok(r) if r <= 0x10FFFF => Ok((r, used)),
                        _ => Err(invalid(used)),
                    }
                } else {
                    let two = rest.get(..2).filter(|d| d.chars().all(|c| c.is_ascii_hexdigit()));
                    match two.and_then(|d| u32::from_str_radix(d, 16).ok()) {
                        Some(r) => Ok((r, after + 2)),
                        None => Err(invalid((after + 2).min(s.len()))),
                    }
                }
            }
            'a' => Ok((0x07, after)),
            'f' => Ok((0x0C, after)),
            'n' => Ok((0x0A, after)),
            'r' => Ok((0x0D, after)),
            't' => Ok((0x09, after)),
            'v' => Ok((0x0B, after)),
            _ => Err(invalid(after)),
        }
    }

    /// Appends `lo-hi` to a class; false when nothing was appended (a surrogate-only range).
    fn push_range(out: &mut String, lo: u32, hi: u32) -> bool {
        let lo = if (0xD800..=0xDFFF).contains(&lo) { 0xE000 } else { lo };
        let hi = if (0xD800..=0xDFFF).contains(&hi) { 0xD7FF } else { hi };
        let (Some(l), Some(h)) = (char::from_u32(lo), char::from_u32(hi)) else { return false };
        if l > h {
            return false;
        }
        push_literal(out, l);
        if h != l {
            out.push('-');
            push_literal(out, h);
        }
        true
    }

    /// One literal character, valid inside and outside a class.
    fn push_literal(out: &mut String, c: char) {
        const META: &str = r"\.+*?()|[]{}^$#&-~";
        if c.is_ascii_alphanumeric() || (!c.is_ascii() && !c.is_whitespace() && !c.is_control()) {
            out.push(c);
        } else if META.contains(c) {
            out.push('\\');
            out.push(c);
        } else if c.is_ascii_punctuation() {
            out.push(c);
        } else {
            let _ = write!(out, r"\x{{{:X}}}", c as u32);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn di(text: &str) -> Dockerignore {
        match Dockerignore::parse(text) {
            Ok(d) => d,
            Err(e) => panic!("{text:?} should parse: {e}"),
        }
    }

    #[test]
    fn clean_is_go_filepath_clean() {
        let table = [
            ("", "."),
            (".", "."),
            ("/", "/"),
            ("//", "/"),
            ("abc", "abc"),
            ("abc/", "abc"),
            ("a//b", "a/b"),
            ("./a", "a"),
            ("a/./b", "a/b"),
            ("a/../b", "b"),
            ("a/..", "."),
            ("../a", "../a"),
            ("../../a/../b", "../../b"),
            ("a/../../b", "../b"),
            ("/../a", "/a"),
            ("/a/../..", "/"),
            ("a/b/../../..", ".."),
            ("./ x", " x"),
            ("x/.. /y", "x/.. /y"),
        ];
        for (input, want) in table {
            assert_eq!(clean(input), want, "Clean({input:?})");
        }
    }

    #[test]
    fn reading_lines() {
        // (file, the patterns as `!`-prefixed cleaned text)
        let table: &[(&str, &[&str])] = &[
            ("\u{feff}a\n", &["a"]),
            ("a\n\u{feff}b\n", &["a", "\u{feff}b"]),
            ("# c\n #x\n", &["#x"]),
            ("  a  \n\n\t\n", &["a"]),
            ("! a\n", &["!a"]),
            ("!./a/../b\n", &["!b"]),
            ("/a\n/\n", &["a", "/"]),
            ("a\r\nb\r\n", &["a", "b"]),
            ("./ x\n", &["x"]),
            ("! ./ x\n", &["! x"]),
            ("x/../y\n", &["y"]),
            ("no-newline", &["no-newline"]),
        ];
        for (text, want) in table {
            let d = di(text);
            let got: Vec<String> =
                d.patterns.iter().map(|p| format!("{}{}", if p.exclusion { "!" } else { "" }, p.text)).collect();
            assert_eq!(&got, want, "{text:?}");
        }
    }

    #[test]
    fn single_patterns_like_patternmatcher() {
        // (pattern, path, matches the path itself, matches it or a parent)
        let table = [
            ("**", "file", true, true),
            ("**", "dir/file", true, true),
            ("**/", "file", true, true),
            ("**/**", "dir/file", true, true),
            ("dir/**", "dir/file", true, true),
            ("dir/**", "dir/dir2/file", true, true),
            ("**/dir", "dir", true, true),
            ("**/dir", "dir/file", false, true),
            ("**/dir2/*", "dir/dir2/file", true, true),
            ("**file", "file", true, true),
            ("**file", "dir/dir/file", true, true),
            ("**/file*", "dir/dir/file.txt", true, true),
            ("**/**/*.txt2", "dir/dir/file.txt", false, false),
            ("**/*.txt", "file.txt", true, true),
            ("a**/*.txt", "a/dir/dir/file.txt", true, true),
            ("a/*.txt", "a/dir/file.txt", false, false),
            ("a/*.txt**", "a/file.txt", true, true),
            ("a[b-d]e", "ace", true, true),
            ("a[b-d]e", "aae", false, false),
            ("a[^b-d]e", "aze", true, true),
            (".*", ".foo", true, true),
            (".*", "foo", false, false),
            ("abc.def", "abcdef", false, false),
            ("abc?def", "abcZdef", true, true),
            ("**/foo/bar", "foo/bar", true, true),
            ("abc/**", "abc", false, false),
            ("**/.foo", "bar.foo", false, false),
            ("a(b)c/def", "a(b)c/def", true, true),
            ("a.|)$(}+{bc", "a.|)$(}+{bc", true, true),
            ("dist/*.whl", "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", true, true),
            ("a\\\\", "a\\", true, true),
            ("a\\*b", "a*b", true, true),
            ("a\\*b", "ab", false, false),
            ("a?b", "a☺b", true, true),
            ("a???b", "a☺b", false, false),
            ("[a-ζ]*", "α", true, true),
            ("a?b", "a/b", false, false),
            ("[\\]a]", "]", true, true),
            ("[x\\-]", "-", true, true),
            ("[\\-x]", "a", false, false),
            ("a*", "ab/c", false, true),
            // Go regexp, not glob: `[*]` is the class `[[^/]` repeated, then `]`.
            ("[*]", "*", false, false),
            ("[*]", "[]", true, true),
            ("[*]", "^/]", true, true),
            // `\d` is Go's ASCII digit class, `\Q` quotes the rest of the expression.
            ("a\\d", "a7", true, true),
            ("a\\d", "ad", false, false),
            ("a\\d", "a٣", false, false),
            ("\\Qa*", "a[^/]*$", true, true),
            ("[[:alpha:]]x", "bx", true, true),
            ("[[]x", "[x", true, true),
            ("[a&&b]", "&", true, true),
            // Without other regexp syntax the pattern is compared as a string, `^` and all.
            ("x^y", "x^y", true, true),
            ("x^y*", "x^yz", false, false),
            ("a\\x41", "aA", true, true),
        ];
        for (pattern, path, itself, or_parent) in table {
            let d = di(pattern);
            let p = &d.patterns[0];
            assert_eq!(p.matches(path), itself, "pattern {pattern:?} on {path:?}");
            assert_eq!(d.matches_or_parent_matches(path), or_parent, "pattern {pattern:?} or parent on {path:?}");
        }
    }

    #[test]
    fn several_patterns() {
        // (file, path, excluded by the walk, MatchesOrParentMatches)
        let table = [
            ("**\n!util/docker/web\n", "util/docker/web/foo", false, false),
            ("**\n!util/docker/web\nutil/docker/web/foo\n", "util/docker/web/foo", true, true),
            ("docs\n!docs/README.md\n", "docs/README.md", false, false),
            ("docs/\n!docs/README.md\n", "docs/x.md", true, true),
            ("*.go\n!fileutils.go\n", "fileutils.go", false, false),
            ("!fileutils.go\n*.go\n", "fileutils.go", true, true),
            // The walk skips `d` whole: nothing starts with `d/` among the `!` patterns.
            ("d\n!*/keep\n", "d/keep", true, false),
            // Recorded on the way down, the second `d` is never tried again.
            ("d\n!d/f\nd\n", "d/f", false, true),
            ("d\n!d/f\nd\n", "d/g", true, true),
        ];
        for (text, path, walk, mopm) in table {
            let d = di(text);
            assert_eq!(d.excludes(path), walk, "{text:?} excludes {path:?}");
            assert_eq!(d.matches_or_parent_matches(path), mopm, "{text:?} MatchesOrParentMatches {path:?}");
        }
    }

    #[test]
    fn skipping_directories() {
        // (file, dir, can skip)
        let table = [
            ("d\n", "d", true),
            ("d\n!d/keep\n", "d", false),
            ("d\n!d\n", "d", false),
            ("d\n!dd/keep\n", "d", true),
            ("d\n!d*/keep\n", "d", true),
            ("a/b\n!a/b/c/d\n", "a/b", false),
        ];
        for (text, dir, want) in table {
            assert_eq!(di(text).can_skip_dir(dir), want, "{text:?} dir {dir:?}");
        }
    }

    #[test]
    fn bad_files() {
        let table = [
            ("ok\n[\n", 2, "bad_pattern"),
            ("a[\n", 1, "bad_pattern"),
            ("[]a]\n", 1, "bad_pattern"),
            ("[-x]\n", 1, "bad_pattern"),
            ("[x-]\n", 1, "bad_pattern"),
            ("[a-b-c]\n", 1, "bad_pattern"),
            ("a\\\n", 1, "bad_pattern"),
            ("# x\n!\n", 2, "empty_exclusion"),
            ("! /\n", 1, "empty_exclusion"),
            ("a\\k\n", 1, "bad_pattern"),
            ("[[:nope:]]\n", 1, "bad_pattern"),
            ("\\pX\n", 1, "bad_pattern"),
            ("[b-a]\n", 1, "bad_pattern"),
        ];
        for (text, line, code) in table {
            match Dockerignore::parse(text) {
                Ok(_) => panic!("{text:?} should be refused"),
                Err(e) => {
                    let got_line = match &e {
                        DockerignoreError::LineTooLong { line, .. }
                        | DockerignoreError::EmptyExclusion { line, .. }
                        | DockerignoreError::BadPattern { line, .. } => *line,
                    };
                    assert_eq!(got_line, line, "{text:?}: {e}");
                    let got_code = e.code().map(|c| c.to_string()).unwrap_or_default();
                    assert!(got_code.ends_with(code), "{text:?}: {got_code}");
                    assert!(e.help().is_some());
                }
            }
        }
        let long = format!("ok\n{}\n", "a".repeat(MAX_LINE_LEN));
        assert!(matches!(Dockerignore::parse(&long), Err(DockerignoreError::LineTooLong { line: 2, .. })));
        let fits = format!("{}\n", "a".repeat(MAX_LINE_LEN - 1));
        assert!(Dockerignore::parse(&fits).is_ok());
    }

    proptest::proptest! {
        /// Any file and any path: an answer or an error, never a panic.
        #[test]
        fn never_panics(
            text in "([a-zé/*?!^.{}()|$#:=\\[\\]\\\\ \t\r\n-]|\\\\[a-zA-Z0-9pPQE{}]|\u{feff}){0,40}",
            path in "[a-zé/.*\\[\\\\]{0,16}",
        ) {
            if let Ok(d) = Dockerignore::parse(&text) {
                let _ = d.excludes(&path);
                let _ = d.matches_or_parent_matches(&path);
                let _ = d.can_skip_dir(&path);
                let (_, info) = d.match_dir(&path, &MatchInfo::default());
                let _ = d.excludes_in(&path, &info);
            }
        }
    }

    #[test]
    fn empty_and_default() {
        assert!(Dockerignore::default().is_empty());
        assert!(di("# only a comment\n\n").is_empty());
        assert!(!Dockerignore::default().excludes("a/b"));
        assert!(!di("*\n").excludes("."));
    }
}
