// Type-directed random generator of Nix expressions for differential testing
// against `nix-instantiate --eval --strict --json` (Nix 2.8.0).  See README.md.
//
// std only, no inner attributes (so it can be pulled in with `include!`).
// NOTE: under edition 2024 `gen` is a reserved keyword, so include it as e.g.
// `mod oracle_gen { include!("oracle/gen.rs"); }`, not `mod gen;`.
//
// Every expression produced by `gen_expr` is self-delimiting (a literal, an
// identifier, `[...]`, `{...}`, a string, or wrapped in parentheses), so any
// number of them can be batched as `[ (e1) (e2) ... ]`.

// ---------------------------------------------------------------------------
// PRNG (splitmix64)
// ---------------------------------------------------------------------------

pub struct Rng(u64);

#[allow(dead_code)]
impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (returns 0 for n <= 1).
    pub fn below(&mut self, n: u64) -> u64 {
        if n <= 1 { 0 } else { ((self.next_u64() as u128 * n as u128) >> 64) as u64 }
    }

    /// Uniform in `lo..=hi` (returns lo if hi <= lo).
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo { lo } else { lo + self.below((hi - lo) as u64 + 1) as i64 }
    }

    /// True with probability num/den.
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }

    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }

    /// Index chosen with the given relative weights.
    pub fn weighted(&mut self, ws: &[u32]) -> usize {
        let total: u64 = ws.iter().map(|&w| w as u64).sum();
        let mut r = self.below(total.max(1));
        for (i, &w) in ws.iter().enumerate() {
            if r < w as u64 {
                return i;
            }
            r -= w as u64;
        }
        ws.len() - 1
    }

    pub fn shuffle<T>(&mut self, xs: &mut [T]) {
        for i in (1..xs.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            xs.swap(i, j);
        }
    }
}

// ---------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------

/// A well-typed expression that evaluates WITHOUT error in Nix 2.8 (under
/// `--strict`) and whose result is JSON-printable (no functions, no paths).
/// Every integer result stays within [-10^6, 10^6]; on the way some go to the 64-bit edges and back
/// without crossing them (`near_edges`: crossing is where Nix 2.8 and pipeline differ on purpose).
#[allow(dead_code)]
pub fn gen_expr(rng: &mut Rng, depth: u32) -> String {
    let mut g = G::new(rng);
    let t = g.top_ty(depth);
    g.expr_nonleaf(&t, depth)
}

/// An expression that must fail to evaluate under
/// `nix-instantiate --eval --strict --json` (the failure is always forced).
/// Most fail during evaluation; a few (about 5%) are rejected before
/// evaluation (undefined variable, duplicate attribute / formal).
/// Run these one per process: an error aborts a whole batch file.
#[allow(dead_code)]
pub fn gen_failing_expr(rng: &mut Rng, depth: u32) -> String {
    let mut g = G::new(rng);
    g.fail_top(depth.max(1))
}

// ---------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------

/// Upper bound used for "unbounded" list lengths / map sizes.
const INF: usize = 1_000_000;
/// Bound of top-level integers.
const BIG: i64 = 1_000_000;

#[derive(Clone, Debug, PartialEq)]
enum Ty {
    /// integer with |v| <= bound
    Int(i64),
    /// float with |v| <= bound
    Float(i64),
    Bool,
    Str,
    Null,
    /// element type, min length, max length
    List(Box<Ty>, usize, usize),
    /// exact field set, sorted by name
    Rec(Vec<(String, Ty)>),
    /// attrset with unknown keys, values of one type, at most N keys
    Map(Box<Ty>, usize),
    /// some JSON-printable value of unknown shape
    Any,
}

use Ty::*;

fn fits(have: &Ty, want: &Ty) -> bool {
    match (have, want) {
        (_, Any) => true,
        (Int(h), Int(w)) | (Float(h), Float(w)) => h <= w,
        (Bool, Bool) | (Str, Str) | (Null, Null) => true,
        (List(he, hmn, hmx), List(we, wmn, wmx)) => hmn >= wmn && hmx <= wmx && fits(he, we),
        (Rec(hf), Rec(wf)) => {
            hf.len() == wf.len() && hf.iter().zip(wf).all(|((hn, ht), (wn, wt))| hn == wn && fits(ht, wt))
        }
        (Rec(hf), Map(wt, wmx)) => hf.len() <= *wmx && hf.iter().all(|(_, t)| fits(t, wt)),
        (Map(ht, hmx), Map(wt, wmx)) => hmx <= wmx && fits(ht, wt),
        _ => false,
    }
}

fn has_float(t: &Ty) -> bool {
    match t {
        Float(_) | Any => true,
        List(e, _, _) | Map(e, _) => has_float(e),
        Rec(fs) => fs.iter().any(|(_, t)| has_float(t)),
        _ => false,
    }
}

fn rec_ty(mut fs: Vec<(String, Ty)>) -> Ty {
    fs.sort_by(|a, b| a.0.cmp(&b.0));
    Rec(fs)
}

fn list_ty(e: Ty, mn: usize, mx: usize) -> Ty {
    List(Box::new(e), mn, mx.max(mn))
}

fn sat_add(a: usize, b: usize) -> usize {
    a.saturating_add(b).min(INF)
}

// ---------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------

/// Variable names (lambda params, let bindings).  Overlaps with ATTR_NAMES on
/// purpose so that `with` / `rec` / `let` shadowing is exercised.  None of
/// these is a builtin name, so `with builtins;` never captures them.
const VAR_NAMES: &[&str] =
    &["a", "b", "c", "x", "y", "z", "n", "s", "foo", "bar", "x1", "y_2", "f'", "my-var", "acc", "v"];
/// Attribute names; the last four are not identifiers and are always quoted (Nix allows no
/// multi-byte character in an unquoted name).
const ATTR_NAMES: &[&str] =
    &["a", "b", "c", "x", "y", "foo", "bar", "baz", "z_1", "k-2", "q'", "a b", "1x", "é", "日本🙂"];

/// Every multi-byte character the generator writes (in strings and attribute names).
const WIDE: &[&str] = &["é", "ß", "ü", "ñ", "€", "日", "本", "🙂"];

const KEYWORDS: &[&str] = &["if", "then", "else", "assert", "with", "let", "in", "rec", "inherit", "or"];

fn is_ident(s: &str) -> bool {
    let mut cs = s.chars();
    match cs.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    cs.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '\'' || c == '-') && !KEYWORDS.contains(&s)
}

/// Nix source for a string literal with the given (plain ASCII, no `\`/`"`/`$`) content.
fn q(s: &str) -> String {
    format!("\"{}\"", s)
}

fn num(v: i64) -> String {
    if v < 0 { format!("(-{})", -v) } else { v.to_string() }
}

fn isqrt(n: i64) -> i64 {
    let mut r = (n as f64).sqrt() as i64;
    while r * r > n {
        r -= 1;
    }
    while (r + 1) * (r + 1) <= n {
        r += 1;
    }
    r
}

/// (regex, number of capture groups).  All of them are unambiguous: the
/// capture contents are uniquely determined by a full match, so POSIX
/// leftmost-longest and backtracking engines agree.
const MATCH_RES: &[(&str, usize)] = &[
    ("a(b*)c", 1),
    ("([a-z]+)-([0-9]+)", 2),
    ("([^ ]*) (.*)", 2),
    ("[a-z0-9 ]*", 0),
    ("([A-Z])[a-z]*", 1),
    ("[[:alpha:]]+([[:digit:]]*)", 1),
    ("(foo|bar)-?([0-9]*)", 2),
];
/// Regexes for builtins.split (none of them matches the empty string).
const SPLIT_RES: &[&str] = &["-", " ", "(,)", "([0-9]+)", "[aeiou]", "(a)|(b)", "x+", "(-)([a-z])"];
/// Inputs that hit the regexes above reasonably often.
const SHAPED: &[&str] = &[
    "abbbc",
    "ac",
    "abc",
    "abc-123",
    "foo-42",
    "bar7",
    "Hello world",
    "xyz",
    "a b c",
    "Abc12",
    "x-y-z",
    "1,2,,3",
    "banana",
    "xxaxxbxx",
    "foo",
    "Zebra",
    "a-b",
    "",
    " ",
];

// ---------------------------------------------------------------------------
// Generator state
// ---------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum Bind {
    Val(Ty),
    /// a function (only ever let-bound, never stored in data)
    Fun(Ty, Ty),
    /// in scope (shadows outer names) but must not be referenced
    Blocked,
}

enum Scope {
    Rec(Vec<(String, Ty)>),
    Builtins,
}

struct G<'r> {
    rng: &'r mut Rng,
    env: Vec<(String, Bind)>,
    withs: Vec<Scope>,
    fresh: u32,
}

#[allow(dead_code)]
impl<'r> G<'r> {
    fn new(rng: &'r mut Rng) -> Self {
        G { rng, env: Vec::new(), withs: Vec::new(), fresh: 0 }
    }

    fn ch(&mut self, num: u64, den: u64) -> bool {
        self.rng.chance(num, den)
    }

    fn below(&mut self, n: usize) -> usize {
        self.rng.below(n as u64) as usize
    }

    /// A name that never occurs in the pools (for internal helper bindings).
    fn fresh_name(&mut self) -> String {
        self.fresh += 1;
        format!("v{}_", self.fresh)
    }

    fn var_name(&mut self) -> String {
        self.rng.pick(VAR_NAMES).to_string()
    }

    /// `n` distinct variable names.
    fn var_names(&mut self, n: usize) -> Vec<String> {
        let mut all: Vec<&str> = VAR_NAMES.to_vec();
        self.rng.shuffle(&mut all);
        all.into_iter().take(n).map(|s| s.to_string()).collect()
    }

    /// `n` distinct attribute names not in `avoid`.
    fn attr_names(&mut self, n: usize, avoid: &[String], ident_only: bool) -> Vec<String> {
        let mut all: Vec<&str> = ATTR_NAMES
            .iter()
            .copied()
            .filter(|a| !avoid.iter().any(|b| b == a) && (!ident_only || is_ident(a)))
            .collect();
        self.rng.shuffle(&mut all);
        all.into_iter().take(n).map(|s| s.to_string()).collect()
    }

    // ----- scope handling -------------------------------------------------

    fn resolve(&self, name: &str) -> Option<Bind> {
        for (n, b) in self.env.iter().rev() {
            if n == name {
                return Some(b.clone());
            }
        }
        for s in self.withs.iter().rev() {
            if let Scope::Rec(fs) = s
                && let Some((_, t)) = fs.iter().find(|(n, _)| n == name)
            {
                return Some(Bind::Val(t.clone()));
            }
        }
        None
    }

    fn visible_names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for (n, _) in &self.env {
            if !names.contains(n) {
                names.push(n.clone());
            }
        }
        for s in &self.withs {
            if let Scope::Rec(fs) = s {
                for (n, _) in fs {
                    if is_ident(n) && !names.contains(n) {
                        names.push(n.clone());
                    }
                }
            }
        }
        names
    }

    fn var_candidates(&self, want: &Ty) -> Vec<String> {
        self.visible_names()
            .into_iter()
            .filter(|n| matches!(self.resolve(n), Some(Bind::Val(t)) if fits(&t, want)))
            .collect()
    }

    fn fun_candidates(&self, arg: Option<&Ty>, ret: &Ty) -> Vec<(String, Ty)> {
        let mut out = Vec::new();
        for n in self.visible_names() {
            if let Some(Bind::Fun(a, r)) = self.resolve(&n)
                && fits(&r, ret)
                && arg.is_none_or(|x| fits(x, &a))
            {
                out.push((n, a));
            }
        }
        out
    }

    fn builtins_in_scope(&self) -> bool {
        self.withs.iter().any(|s| matches!(s, Scope::Builtins))
    }

    /// `s` with every multi-byte character replaced by ASCII, for the builtins that cut strings at
    /// byte offsets: Nix keeps half a character as a lone byte, pipeline cannot (README).
    fn ascii(&mut self, s: &str) -> String {
        let from: Vec<String> = WIDE.iter().map(|w| q(w)).collect();
        let to: Vec<String> = WIDE.iter().map(|_| q("u")).collect();
        format!("({} [ {} ] [ {} ] {})", self.bi("replaceStrings"), from.join(" "), to.join(" "), s)
    }

    /// Reference to builtin `name` (sometimes unqualified when legal).
    /// `x + y` or `x - y`, written with `builtins.add`/`builtins.sub` one time in `odds`.
    fn add_or_sub(&mut self, x: &str, y: &str, odds: u64) -> String {
        let (op, f) = if self.ch(1, 2) { ("+", "add") } else { ("-", "sub") };
        if self.ch(1, odds) { format!("({} {} {})", self.bi(f), x, y) } else { format!("({} {} {})", x, op, y) }
    }

    fn bi(&mut self, name: &str) -> String {
        if self.builtins_in_scope() && self.ch(1, 2) {
            return name.to_string();
        }
        if ["map", "toString", "removeAttrs", "isNull"].contains(&name) && self.ch(1, 3) {
            return name.to_string();
        }
        format!("builtins.{}", name)
    }

    // ----- random types ---------------------------------------------------

    fn top_ty(&mut self, d: u32) -> Ty {
        match self.rng.weighted(&[14, 6, 9, 14, 2, 22, 22, 5, 6]) {
            0 => Int(BIG),
            1 => Float(BIG),
            2 => Bool,
            3 => Str,
            4 => Null,
            5 => {
                let e = self.rand_ty(d.saturating_sub(1));
                list_ty(e, 0, INF)
            }
            6 => self.rand_rec_ty(d),
            7 => {
                let e = self.rand_ty(d.saturating_sub(2));
                Map(Box::new(e), INF)
            }
            _ => Any,
        }
    }

    fn rand_ty(&mut self, d: u32) -> Ty {
        let w: &[u32] = if d <= 1 { &[6, 3, 4, 6, 1, 2, 2, 0, 1] } else { &[6, 3, 4, 6, 1, 5, 5, 1, 1] };
        match self.rng.weighted(w) {
            0 => Int(*self.rng.pick(&[10, 100, 1000, 100_000])),
            1 => Float(*self.rng.pick(&[10, 1000, 100_000])),
            2 => Bool,
            3 => Str,
            4 => Null,
            5 => {
                let e = self.rand_ty(d.saturating_sub(2));
                let mn = self.below(3);
                let mx = if self.ch(1, 2) { INF } else { mn + self.below(4) };
                list_ty(e, mn, mx)
            }
            6 => self.rand_rec_ty(d),
            7 => {
                let mut e = self.rand_ty(d.saturating_sub(2));
                if self.ch(1, 3) {
                    e = list_ty(e, self.below(2), INF);
                }
                let mx = if self.ch(1, 2) { INF } else { 1 + self.below(5) };
                Map(Box::new(e), mx)
            }
            _ => Any,
        }
    }

    fn rand_rec_ty(&mut self, d: u32) -> Ty {
        let sub = d.saturating_sub(2);
        match self.below(12) {
            0 => {
                let e = self.rand_ty(sub);
                rec_ty(vec![("right".into(), list_ty(e.clone(), 0, INF)), ("wrong".into(), list_ty(e, 0, INF))])
            }
            1 => {
                let v = self.rand_ty(sub);
                rec_ty(vec![("success".into(), Bool), ("value".into(), v)])
            }
            2 => {
                let k = self.below(4);
                let names = self.attr_names(k, &[], true);
                rec_ty(names.into_iter().map(|n| (n, Bool)).collect())
            }
            3 => {
                let k = 1 + self.below(4);
                let e = self.rand_ty(sub);
                let names = self.attr_names(k, &[], false);
                rec_ty(names.into_iter().map(|n| (n, e.clone())).collect())
            }
            _ => {
                let k = self.below(5);
                let names = self.attr_names(k, &[], false);
                let mut fs = Vec::new();
                for n in names {
                    let t = self.rand_ty(sub);
                    fs.push((n, t));
                }
                rec_ty(fs)
            }
        }
    }

    /// Random extra fields whose names avoid `avoid`.
    fn extra_fields(&mut self, k: usize, avoid: &[String], d: u32) -> Vec<(String, Ty)> {
        let names = self.attr_names(k, avoid, false);
        let mut out = Vec::new();
        for n in names {
            let t = self.rand_ty(d.saturating_sub(2));
            out.push((n, t));
        }
        out
    }

    /// Types that `toString` accepts (no floats, no attrsets).
    fn tostring_ty(&mut self, nest: bool) -> Ty {
        match self.below(if nest { 6 } else { 5 }) {
            0 => Int(BIG),
            1 => Bool,
            2 => Null,
            3 | 4 => Str,
            _ => {
                let e = self.tostring_ty(false);
                list_ty(e, 0, INF)
            }
        }
    }

    // ----- literals ---------------------------------------------------------

    fn int_lit(&mut self, b: i64) -> String {
        let cap = *self.rng.pick(&[2, 9, 9, 100, 1000, 1_000_000]);
        let c = b.min(cap).max(0);
        let v = self.rng.range(-c, c);
        num(v)
    }

    fn float_lit(&mut self, b: i64) -> String {
        let cap = b.min(*self.rng.pick(&[2, 10, 100, 1000]));
        if cap <= 0 {
            return "0.0".into();
        }
        let ip = self.rng.below(cap as u64);
        let frac = *self.rng.pick(&["0", "5", "25", "125", "75", "1", "3", "9", "01", "333", "2"]);
        let body = match self.below(12) {
            0 if ip == 0 => format!(".{}", frac),
            1 if ip >= 1 => format!("{}.", ip),
            2 => format!("{}.{}e-{}", ip, frac, 1 + self.below(2)),
            3 => format!("{}.{}E0", ip, frac),
            _ => format!("{}.{}", ip, frac),
        };
        if self.ch(1, 4) { format!("(-{})", body) } else { body }
    }

    /// Piece of a "..." string literal (source text), never ends in a bare `$`
    /// and never contains `${`.
    fn str_chunk(&mut self, maxlen: usize) -> String {
        if self.ch(1, 5) {
            return self.rng.pick(SHAPED).to_string();
        }
        let len = self.below(maxlen + 1);
        let mut s = String::new();
        for _ in 0..len {
            match self.rng.weighted(&[30, 6, 6, 5, 8, 2, 3]) {
                6 => s.push_str(self.rng.pick::<&str>(WIDE)),
                0 => s.push((b'a' + self.below(26) as u8) as char),
                1 => s.push((b'A' + self.below(26) as u8) as char),
                2 => s.push((b'0' + self.below(10) as u8) as char),
                3 => s.push(' '),
                4 => s.push(*self.rng.pick(&[
                    '-', '_', '.', ',', ':', ';', '!', '?', '/', '(', ')', '[', ']', '<', '>', '=', '+', '*', '#', '@',
                    '%', '&', '|', '~', '^', '\'', '{', '}',
                ])),
                _ => {
                    let e = *self.rng.pick(&["\\n", "\\t", "\\\"", "\\\\", "\\$", "\\r", "$a", "\\q"]);
                    s.push_str(e);
                }
            }
        }
        s
    }

    fn str_lit(&mut self) -> String {
        let c = self.str_chunk(8);
        format!("\"{}\"", c)
    }

    /// "...${e}..." with string-typed interpolations.
    fn interp_str(&mut self, d: u32) -> String {
        let k = 1 + self.below(3);
        let mut s = String::from("\"");
        s.push_str(&self.str_chunk(5));
        for _ in 0..k {
            let e = self.expr(&Str, d.saturating_sub(1));
            if self.ch(1, 3) {
                // an escape or a multi-byte character right before `${` (never `$`: `$${` is literal)
                s.push_str(self.rng.pick::<&str>(&[r"\\", r"\n", r#"\""#, r"\$", r"\t", "é", "🙂"]));
            }
            s.push_str("${");
            s.push_str(&e);
            s.push('}');
            if self.ch(1, 3) {
                s.push_str(self.rng.pick::<&str>(&[r"\$", r"\\", r"\n", "ü", r"\${"]));
            }
            s.push_str(&self.str_chunk(5));
        }
        s.push('"');
        s
    }

    /// Piece of an indented-string line (no `'`, no `${`, no bare trailing `$`).
    fn ind_chunk(&mut self) -> String {
        let len = self.below(10);
        let mut s = String::new();
        for _ in 0..len {
            match self.rng.weighted(&[30, 5, 5, 6, 6, 3, 3]) {
                6 => s.push_str(self.rng.pick::<&str>(WIDE)),
                0 => s.push((b'a' + self.below(26) as u8) as char),
                1 => s.push((b'A' + self.below(26) as u8) as char),
                2 => s.push((b'0' + self.below(10) as u8) as char),
                3 => s.push(' '),
                4 => s.push(*self.rng.pick(&['-', '.', ',', ':', '"', '\\', '/', '(', ')', '#', '{', '}', '='])),
                _ => {
                    let e = *self.rng.pick(&["''$", "'''x", "''\\n", "''\\t", "''${", "$b", "\\n"]);
                    s.push_str(e);
                }
            }
        }
        s
    }

    fn indented_str(&mut self, d: u32) -> String {
        let base = self.below(5);
        let nlines = 1 + self.below(4);
        let mut s = String::from("''");
        if self.ch(1, 4) {
            // content right after the opening quotes
            s.push_str(&" ".repeat(self.below(3)));
            s.push_str(&self.ind_chunk());
        }
        for _ in 0..nlines {
            s.push('\n');
            match self.below(8) {
                0 => {}
                1 => s.push_str(&" ".repeat(self.below(base + 3))),
                _ => {
                    s.push_str(&" ".repeat(base + self.below(4)));
                    s.push_str(&self.ind_chunk());
                    if d > 0 && self.ch(1, 3) {
                        let e = self.expr(&Str, d.saturating_sub(1));
                        if self.ch(1, 3) {
                            s.push_str(self.rng.pick::<&str>(&[r"''\n", "'''", r"''\t", "日"]));
                        }
                        s.push_str("${");
                        s.push_str(&e);
                        s.push('}');
                        if self.ch(1, 3) {
                            s.push_str(self.rng.pick::<&str>(&["''$", "'''", "''${", "ß"]));
                        }
                        s.push_str(&self.ind_chunk());
                    }
                }
            }
        }
        if self.ch(2, 3) {
            s.push('\n');
            s.push_str(&" ".repeat(self.below(base + 1)));
        }
        s.push_str("''");
        s
    }

    /// A JSON document as a Nix string literal (for builtins.fromJSON).
    fn json_text(&mut self, depth: u32) -> String {
        fn val(g: &mut G, depth: u32, out: &mut String) {
            let k = if depth == 0 { g.below(6) } else { g.below(8) };
            match k {
                0 => out.push_str(&g.rng.range(-1000, 1000).to_string()),
                1 => out.push_str(g.rng.pick::<&str>(&["1.5", "-2.25", "0.125", "1e3", "2.5E-1", "100.0"])),
                2 => out.push_str(g.rng.pick::<&str>(&["true", "false"])),
                3 => out.push_str("null"),
                4 | 5 => out.push_str(g.rng.pick::<&str>(&[
                    "\"abc\"",
                    "\"\"",
                    "\"a\\nb\"",
                    "\"q\\\"uote\"",
                    "\"back\\\\slash\"",
                    "\"\\u0041\\u0062\"",
                    "\"tab\\tx\"",
                    "\"$x\"",
                ])),
                6 => {
                    out.push('[');
                    let n = g.below(4);
                    for i in 0..n {
                        if i > 0 {
                            out.push_str(", ");
                        }
                        val(g, depth - 1, out);
                    }
                    out.push(']');
                }
                _ => {
                    out.push_str("{ ");
                    let n = g.below(4);
                    let names = g.attr_names(n, &[], false);
                    for (i, name) in names.iter().enumerate() {
                        if i > 0 {
                            out.push_str(",\n ");
                        }
                        out.push('"');
                        out.push_str(name);
                        out.push_str("\": ");
                        val(g, depth - 1, out);
                    }
                    out.push('}');
                }
            }
        }
        let mut j = String::new();
        val(self, depth.min(3), &mut j);
        let mut s = String::from("\"");
        for c in j.chars() {
            match c {
                '"' => s.push_str("\\\""),
                '\\' => s.push_str("\\\\"),
                '$' => s.push_str("\\$"),
                '\n' => s.push_str("\\n"),
                c => s.push(c),
            }
        }
        s.push('"');
        s
    }

    // ----- leaves -----------------------------------------------------------

    fn leaf(&mut self, t: &Ty) -> String {
        if self.ch(2, 5) {
            let c = self.var_candidates(t);
            if !c.is_empty() {
                return self.rng.pick(&c).clone();
            }
        }
        match t {
            Int(b) => self.int_lit(*b),
            Float(b) => self.float_lit(*b),
            Bool => self.rng.pick(&["true", "false"]).to_string(),
            Str => {
                if self.ch(1, 8) {
                    self.indented_str(0)
                } else {
                    self.str_lit()
                }
            }
            Null => "null".into(),
            List(e, mn, mx) => {
                let n = (*mn + self.below(3)).min(*mx);
                let mut items = Vec::new();
                for _ in 0..n {
                    items.push(self.leaf(e));
                }
                if items.is_empty() { "[ ]".into() } else { format!("[ {} ]", items.join(" ")) }
            }
            Rec(fs) => {
                let mut parts = Vec::new();
                for (n, ft) in fs {
                    let v = self.leaf(ft);
                    let k = self.key(n);
                    parts.push(format!("{} = {};", k, v));
                }
                self.rng.shuffle(&mut parts);
                if parts.is_empty() { "{ }".into() } else { format!("{{ {} }}", parts.join(" ")) }
            }
            Map(e, mx) => {
                let k = self.below(3).min(*mx);
                let names = self.attr_names(k, &[], false);
                let fs: Vec<(String, Ty)> = names.into_iter().map(|n| (n, (**e).clone())).collect();
                self.leaf(&rec_ty(fs))
            }
            Any => {
                let t = match self.below(5) {
                    0 => Int(100),
                    1 => Float(100),
                    2 => Bool,
                    3 => Str,
                    _ => Null,
                };
                self.leaf(&t)
            }
        }
    }

    /// Attribute key in a binding (static).
    fn key(&mut self, n: &str) -> String {
        if is_ident(n) && self.ch(6, 7) { n.to_string() } else { q(n) }
    }

    /// Attribute key in a select / `?` (may be dynamic).
    fn sel_key(&mut self, n: &str) -> String {
        match self.below(8) {
            0 => format!("${{{}}}", q(n)),
            1 => q(n),
            _ => {
                if is_ident(n) {
                    n.to_string()
                } else {
                    q(n)
                }
            }
        }
    }

    // ----- main dispatcher ----------------------------------------------------

    fn expr(&mut self, t: &Ty, d: u32) -> String {
        if d == 0 || self.ch(1, 14) {
            return self.leaf(t);
        }
        self.expr_nonleaf(t, d)
    }

    /// Like `expr` but (for d > 0) never a bare literal or variable.
    fn expr_nonleaf(&mut self, t: &Ty, d: u32) -> String {
        if d == 0 {
            return self.leaf(t);
        }
        for _ in 0..12 {
            let r = if self.ch(3, 10) {
                self.common(t, d)
            } else {
                match t {
                    Int(b) => self.int_prod(*b, d),
                    Float(b) => self.float_prod(*b, d),
                    Bool => self.bool_prod(d),
                    Str => self.str_prod(d),
                    Null => self.null_prod(d),
                    List(e, mn, mx) => self.list_prod(e, *mn, *mx, d),
                    Rec(fs) => self.rec_prod(fs, d),
                    Map(e, mx) => self.map_prod(e, *mx, d),
                    Any => self.any_prod(d),
                }
            };
            if let Some(s) = r {
                return s;
            }
        }
        self.leaf(t)
    }

    // ----- productions valid for every type -----------------------------------

    fn common(&mut self, t: &Ty, d: u32) -> Option<String> {
        let d1 = d - 1;
        let k = self.rng.weighted(&[8, 10, 6, 2, 4, 8, 5, 9, 4, 2, 5, 2, 2, 2, 3, 2, 3, 2, 3]);
        match k {
            0 => {
                let c = self.expr(&Bool, d1);
                let x = self.expr(t, d1);
                let y = self.expr(t, d1);
                Some(format!("(if {} then {} else {})", c, x, y))
            }
            1 => Some(self.let_expr(t, d)),
            2 => {
                let u = self.rand_ty(d1);
                let p = self.var_name();
                self.env.push((p.clone(), Bind::Val(u.clone())));
                let body = self.expr(t, d1);
                self.env.pop();
                let arg = self.expr(&u, d1);
                Some(format!("(({}: {}) {})", p, body, arg))
            }
            3 => {
                let u1 = self.rand_ty(d1);
                let u2 = self.rand_ty(d1);
                let p1 = self.var_name();
                let p2 = self.var_name();
                self.env.push((p1.clone(), Bind::Val(u1.clone())));
                self.env.push((p2.clone(), Bind::Val(u2.clone())));
                let body = self.expr(t, d1);
                self.env.pop();
                self.env.pop();
                let a1 = self.expr(&u1, d1);
                let a2 = self.expr(&u2, d1);
                Some(format!("(({}: {}: {}) {} {})", p1, p2, body, a1, a2))
            }
            4 => {
                let k = 1 + self.below(4);
                let names = self.attr_names(k, &[], true);
                let mut fs = Vec::new();
                for n in names {
                    let ft = self.rand_ty(d1.saturating_sub(1));
                    fs.push((n, ft));
                }
                let fs = match rec_ty(fs) {
                    Rec(fs) => fs,
                    _ => unreachable!(),
                };
                let lam = self.formals_lambda(&fs, t, d);
                let arg = self.expr(&Rec(fs), d1);
                Some(format!("({} {})", lam, arg))
            }
            5 => {
                let c = self.var_candidates(t);
                if c.is_empty() { None } else { Some(self.rng.pick(&c).clone()) }
            }
            6 => {
                let c = self.fun_candidates(None, t);
                if c.is_empty() {
                    return None;
                }
                let (f, a) = self.rng.pick(&c).clone();
                let arg = self.expr(&a, d1);
                Some(format!("({} {})", f, arg))
            }
            7 => self.select(t, d),
            8 => match self.below(3) {
                0 => {
                    let l = self.expr(&list_ty(t.clone(), 1, INF), d1);
                    Some(format!("({} {})", self.bi("head"), l))
                }
                1 => {
                    let i = self.below(3);
                    let l = self.expr(&list_ty(t.clone(), i + 1, INF), d1);
                    Some(format!("({} {} {})", self.bi("elemAt"), l, i))
                }
                _ => {
                    let v = self.fresh_name();
                    let l = self.expr(&list_ty(t.clone(), 1, INF), d1);
                    let ea = self.bi("elemAt");
                    let len = self.bi("length");
                    Some(format!("(let {v} = {l}; in {ea} {v} ({len} {v} - 1))"))
                }
            },
            9 => {
                let u = self.rand_ty(d1);
                let x = self.expr(&u, d1);
                let e = self.expr(t, d1);
                let f = if self.ch(1, 2) { self.bi("seq") } else { self.bi("deepSeq") };
                Some(format!("({} {} {})", f, x, e))
            }
            10 => {
                if self.ch(1, 5) {
                    self.withs.push(Scope::Builtins);
                    let body = self.expr(t, d1);
                    self.withs.pop();
                    Some(format!("(with builtins; {})", body))
                } else {
                    let mut rt = self.rand_rec_ty(d1 + 1);
                    // make the with-set contain a name that is lexically bound:
                    // the lexical binding must win
                    let lex: Vec<String> =
                        self.env.iter().map(|e| e.0.clone()).filter(|n| is_ident(n) && !n.ends_with('_')).collect();
                    if !lex.is_empty() && self.ch(1, 2) {
                        let n = self.rng.pick(&lex).clone();
                        let ft = self.rand_ty(d1.saturating_sub(1));
                        if let Rec(fs) = &rt {
                            let mut fs: Vec<(String, Ty)> = fs.iter().filter(|f| f.0 != n).cloned().collect();
                            fs.push((n, ft));
                            rt = rec_ty(fs);
                        }
                    }
                    let r = self.expr(&rt, d1);
                    let fs = match rt {
                        Rec(fs) => fs,
                        _ => unreachable!(),
                    };
                    self.withs.push(Scope::Rec(fs));
                    let body = self.expr(t, d1);
                    self.withs.pop();
                    Some(format!("(with {}; {})", r, body))
                }
            }
            11 => {
                let c = self.true_cond(d1);
                let e = self.expr(t, d1);
                Some(format!("(assert {}; {})", c, e))
            }
            12 => {
                if has_float(t) {
                    return None;
                }
                let x = self.expr(t, d1);
                Some(format!("({} ({} {}))", self.bi("fromJSON"), self.bi("toJSON"), x))
            }
            13 => {
                let x = self.expr(t, d1);
                Some(format!("(({} {}).value)", self.bi("tryEval"), x))
            }
            14 => {
                let names = self.var_names(2);
                let u = self.rand_ty(d1.saturating_sub(1));
                let mx = if self.ch(1, 2) { INF } else { self.below(5) };
                let init = self.expr(t, d1);
                let l = self.expr(&list_ty(u.clone(), 0, mx), d1);
                self.env.push((names[0].clone(), Bind::Val(t.clone())));
                self.env.push((names[1].clone(), Bind::Val(u)));
                let body = self.expr(t, d1);
                self.env.pop();
                self.env.pop();
                Some(format!("({} ({}: {}: {}) {} {})", self.bi("foldl'"), names[0], names[1], body, init, l))
            }
            15 => {
                let k = self.below(3);
                let mut fs = self.extra_fields(k, &[], d);
                let avoid: Vec<String> = fs.iter().map(|f| f.0.clone()).collect();
                let n = self.attr_names(1, &avoid, false).pop()?;
                fs.push((n.clone(), t.clone()));
                let r = self.expr(&rec_ty(fs), d1);
                Some(format!("({} {} {})", self.bi("getAttr"), q(&n), r))
            }
            16 => {
                let m = self.expr(&Map(Box::new(t.clone()), INF), d1);
                let n = self.rng.pick(ATTR_NAMES).to_string();
                let k = self.sel_key(&n);
                let dflt = self.expr(t, d1);
                Some(format!("({}.{} or {})", m, k, dflt))
            }
            17 => {
                self.withs.push(Scope::Builtins);
                let body = self.expr(t, d1);
                self.withs.pop();
                Some(format!("(with builtins; {})", body))
            }
            _ => {
                // `inherit x;` of a variable in scope, then selected
                let c: Vec<String> = self.var_candidates(t).into_iter().filter(|n| is_ident(n)).collect();
                if c.is_empty() {
                    return None;
                }
                let n = self.rng.pick(&c).clone();
                let k = self.below(3);
                let extra = self.extra_fields(k, std::slice::from_ref(&n), d);
                let mut parts = vec![format!("inherit {};", n)];
                for (en, et) in &extra {
                    let v = self.expr(et, d1);
                    parts.push(format!("{} = {};", self.key(en), v));
                }
                self.rng.shuffle(&mut parts);
                let kw = if self.ch(1, 3) { "rec " } else { "" };
                Some(format!("({}{{ {} }}.{})", kw, parts.join(" "), self.sel_key(&n)))
            }
        }
    }

    /// A Bool expression that is certainly true.
    fn true_cond(&mut self, d: u32) -> String {
        let d = d.min(2);
        match self.below(5) {
            0 => {
                let u = self.rand_ty(d);
                let x = self.expr(&u, d);
                format!("({} == {})", x, x)
            }
            1 => format!("({} {})", self.bi("isInt"), self.expr(&Int(BIG), d)),
            2 => format!("({} {} == \"string\")", self.bi("typeOf"), self.expr(&Str, d)),
            3 => {
                let u = self.rand_ty(d);
                let l = self.expr(&list_ty(u, 0, INF), d);
                format!("({} {} >= 0)", self.bi("length"), l)
            }
            _ => {
                let x = self.expr(&Int(1000), d);
                format!("({} < {} + 1)", x, x)
            }
        }
    }

    /// `(let ... in BODY)` with plain, function, inherit and nested-path bindings.
    fn let_expr(&mut self, t: &Ty, d: u32) -> String {
        let d1 = d - 1;
        let nb = 1 + self.below(3);
        let mut names = self.var_names(nb);
        let mut fields = Vec::new();
        let mut funs = Vec::new();
        // sometimes rebind a visible variable of the same type (enables `inherit x;`)
        if self.ch(1, 3) {
            let vis: Vec<(String, Ty)> = self
                .visible_names()
                .into_iter()
                .filter(|n| is_ident(n) && !n.ends_with('_'))
                .filter_map(|n| match self.resolve(&n) {
                    Some(Bind::Val(t)) => Some((n, t)),
                    _ => None,
                })
                .collect();
            if !vis.is_empty() {
                let (n, t) = self.rng.pick(&vis).clone();
                names.retain(|m| *m != n);
                fields.push((n, t));
            }
        }
        for n in names {
            if self.ch(1, 5) {
                let a = self.rand_ty(d1);
                let r = self.rand_ty(d1);
                funs.push((n, a, r));
            } else {
                let ft = self.rand_ty(d1);
                fields.push((n, ft));
            }
        }
        let save = self.env.len();
        let lines = self.bindings(&fields, &funs, d, true, false);
        let body = self.expr(t, d1);
        self.env.truncate(save);
        format!("(let {} in {})", lines.join(" "), body)
    }

    /// Bindings of a `let` / `rec {}` (recursive) or plain `{}`.  For
    /// recursive bindings the names are pushed onto `env` (the caller
    /// truncates); a random acyclic dependency order is used.
    fn bindings(
        &mut self,
        fields: &[(String, Ty)],
        funs: &[(String, Ty, Ty)],
        d: u32,
        recursive: bool,
        allow_dynamic: bool,
    ) -> Vec<String> {
        let d1 = d - 1;
        enum U {
            Plain(String, Ty),
            Fun(String, Ty, Ty),
            InheritOuter(String),
            InheritFrom(Vec<(String, Ty)>),
        }
        let mut units: Vec<U> = Vec::new();
        let mut pending: Vec<(String, Ty)> = Vec::new();
        for (n, t) in fields {
            if is_ident(n)
                && self.ch(1, 3)
                && let Some(Bind::Val(vt)) = self.resolve(n)
                && fits(&vt, t)
            {
                units.push(U::InheritOuter(n.clone()));
                continue;
            }
            if is_ident(n) && self.ch(1, 6) {
                pending.push((n.clone(), t.clone()));
                if pending.len() >= 3 || self.ch(1, 2) {
                    units.push(U::InheritFrom(std::mem::take(&mut pending)));
                }
                continue;
            }
            units.push(U::Plain(n.clone(), t.clone()));
        }
        if !pending.is_empty() {
            units.push(U::InheritFrom(pending));
        }
        for (n, a, r) in funs {
            units.push(U::Fun(n.clone(), a.clone(), r.clone()));
        }
        let mut slot: Vec<(String, usize)> = Vec::new();
        if recursive {
            for u in &units {
                let ns: Vec<String> = match u {
                    U::Plain(n, _) | U::Fun(n, _, _) | U::InheritOuter(n) => vec![n.clone()],
                    U::InheritFrom(fs) => fs.iter().map(|f| f.0.clone()).collect(),
                };
                for n in ns {
                    if is_ident(&n) {
                        slot.push((n.clone(), self.env.len()));
                        self.env.push((n, Bind::Blocked));
                    }
                }
            }
        }
        let mut order: Vec<usize> = (0..units.len()).collect();
        self.rng.shuffle(&mut order);
        let mut lines: Vec<String> = Vec::new();
        for &i in &order {
            let mut defined: Vec<(String, Bind)> = Vec::new();
            match &units[i] {
                U::Plain(n, t) => {
                    let nested = matches!(t, Rec(sub) if !sub.is_empty()) && self.ch(1, 4);
                    if nested {
                        let sub = match t {
                            Rec(s) => s.clone(),
                            _ => unreachable!(),
                        };
                        let k = self.key(n);
                        // occasionally define part of it as a plain attrset literal
                        let split = if sub.len() >= 2 && self.ch(1, 4) { 1 } else { 0 };
                        if split == 1 {
                            // must be a syntactic attrset literal to merge with `k.x = ..`
                            let v = self.expr(&sub[0].1, d1);
                            let sk = self.key(&sub[0].0);
                            lines.push(format!("{} = {{ {} = {}; }};", k, sk, v));
                        }
                        for (sn, st) in &sub[split..] {
                            let v = self.expr(st, d1);
                            let sk =
                                if allow_dynamic && self.ch(1, 6) { format!("${{{}}}", q(sn)) } else { self.key(sn) };
                            lines.push(format!("{}.{} = {};", k, sk, v));
                        }
                    } else {
                        let v = self.expr(t, d1);
                        let k = if allow_dynamic && self.ch(1, 8) { format!("${{{}}}", q(n)) } else { self.key(n) };
                        lines.push(format!("{} = {};", k, v));
                    }
                    defined.push((n.clone(), Bind::Val(t.clone())));
                }
                U::Fun(n, a, r) => {
                    let p = self.var_name();
                    self.env.push((p.clone(), Bind::Val(a.clone())));
                    let body = self.expr(r, d1);
                    self.env.pop();
                    lines.push(format!("{} = {}: {};", n, p, body));
                    defined.push((n.clone(), Bind::Fun(a.clone(), r.clone())));
                }
                U::InheritOuter(n) => {
                    // resolved before the recursive names were pushed
                    let t = fields.iter().find(|f| &f.0 == n).unwrap().1.clone();
                    lines.push(format!("inherit {};", n));
                    defined.push((n.clone(), Bind::Val(t)));
                }
                U::InheritFrom(fs) => {
                    let avoid: Vec<String> = fs.iter().map(|f| f.0.clone()).collect();
                    let k = self.below(3);
                    let mut src = self.extra_fields(k, &avoid, d);
                    src.extend(fs.iter().cloned());
                    let s = self.expr(&rec_ty(src), d1);
                    let mut ns: Vec<String> = fs.iter().map(|f| f.0.clone()).collect();
                    self.rng.shuffle(&mut ns);
                    lines.push(format!("inherit ({}) {};", s, ns.join(" ")));
                    for (n, t) in fs {
                        defined.push((n.clone(), Bind::Val(t.clone())));
                    }
                }
            }
            if recursive {
                for (n, b) in defined {
                    if let Some((_, idx)) = slot.iter().find(|(sn, _)| *sn == n) {
                        self.env[*idx].1 = b;
                    }
                }
            }
        }
        self.rng.shuffle(&mut lines);
        lines
    }

    /// `({ a, b ? D, ... }: BODY)` / `args@{...}: BODY` for an argument of
    /// exactly the record type `fields`.
    fn formals_lambda(&mut self, fields: &[(String, Ty)], ret: &Ty, d: u32) -> String {
        let d1 = d - 1;
        let mut chosen: Vec<(String, Ty)> = Vec::new();
        for (n, t) in fields {
            if is_ident(n) && self.ch(3, 4) {
                chosen.push((n.clone(), t.clone()));
            }
        }
        let ellipsis = chosen.len() < fields.len() || self.ch(1, 4);
        let avoid: Vec<String> = fields.iter().map(|f| f.0.clone()).collect();
        let nextra = if self.ch(1, 3) { 1 + self.below(2) } else { 0 };
        let extra_names = self.attr_names(nextra, &avoid, true);
        let mut all_formals: Vec<String> = chosen.iter().map(|c| c.0.clone()).collect();
        all_formals.extend(extra_names.iter().cloned());
        let at = if self.ch(1, 3) {
            let cands: Vec<&str> = VAR_NAMES.iter().copied().filter(|v| !all_formals.iter().any(|f| f == v)).collect();
            Some(self.rng.pick(&cands).to_string())
        } else {
            None
        };
        let save = self.env.len();
        for (n, t) in &chosen {
            self.env.push((n.clone(), Bind::Val(t.clone())));
        }
        let mut extra_slots = Vec::new();
        for n in &extra_names {
            extra_slots.push(self.env.len());
            self.env.push((n.clone(), Bind::Blocked));
        }
        if let Some(a) = &at {
            self.env.push((a.clone(), Bind::Blocked));
        }
        let mut parts: Vec<String> = Vec::new();
        for (n, _) in &chosen {
            if self.ch(1, 6) {
                let u = self.rand_ty(1);
                let dv = self.expr(&u, d1.min(2));
                parts.push(format!("{} ? {}", n, dv));
            } else {
                parts.push(n.clone());
            }
        }
        let mut extra_tys = Vec::new();
        for n in &extra_names {
            let u = self.rand_ty(d1);
            let dv = self.expr(&u, d1);
            parts.push(format!("{} ? {}", n, dv));
            extra_tys.push(u);
        }
        for (slot, u) in extra_slots.iter().zip(extra_tys) {
            self.env[*slot].1 = Bind::Val(u);
        }
        if let Some(a) = &at {
            let last = self.env.len() - 1;
            self.env[last] = (a.clone(), Bind::Val(Rec(fields.to_vec())));
        }
        self.rng.shuffle(&mut parts);
        if ellipsis {
            parts.push("...".into());
        }
        let body = self.expr(ret, d1);
        self.env.truncate(save);
        let pat = if parts.is_empty() { "{ }".to_string() } else { format!("{{ {} }}", parts.join(", ")) };
        match at {
            Some(a) if self.ch(1, 2) => format!("({}@{}: {})", a, pat, body),
            Some(a) => format!("({} @ {}: {})", pat, a, body),
            None => format!("({}: {})", pat, body),
        }
    }

    /// A function value of type arg -> ret (always an atom).
    fn func(&mut self, arg: &Ty, ret: &Ty, d: u32) -> String {
        let d = d.max(1);
        match self.rng.weighted(&[12, 3, 3, 2, 4]) {
            1 => {
                if let Rec(fs) = arg {
                    let fs = fs.clone();
                    return self.formals_lambda(&fs, ret, d);
                }
            }
            2 => {
                let c = self.fun_candidates(Some(arg), ret);
                if !c.is_empty() {
                    return self.rng.pick(&c).0.clone();
                }
            }
            3 if fits(arg, ret) => {
                let p = self.var_name();
                return format!("({}: {})", p, p);
            }
            4 => {
                if let Some(s) = self.builtin_func(arg, ret) {
                    return s;
                }
            }
            _ => {}
        }
        let p = self.var_name();
        self.env.push((p.clone(), Bind::Val(arg.clone())));
        let body = self.expr(ret, d - 1);
        self.env.pop();
        format!("({}: {})", p, body)
    }

    fn builtin_func(&mut self, arg: &Ty, ret: &Ty) -> Option<String> {
        let mut c: Vec<String> = Vec::new();
        let scalar_str = matches!(arg, Int(_) | Bool | Null | Str);
        if fits(&Str, ret) {
            if scalar_str {
                c.push(self.bi("toString"));
            }
            c.push(self.bi("typeOf"));
            if *arg == Str {
                let v = self.fresh_name();
                let cut = self.ascii(&v);
                c.push(format!("({v}: {} 0 3 {cut})", self.bi("substring")));
                c.push(format!("({} [ \"a\" ] [ \"A-\" ])", self.bi("replaceStrings")));
            }
            if let List(e, _, _) = arg
                && **e == Str
            {
                c.push(format!("({} \"-\")", self.bi("concatStringsSep")));
            }
        }
        if *ret == Bool {
            for n in ["isInt", "isFloat", "isString", "isBool", "isList", "isAttrs", "isNull", "isFunction"] {
                c.push(self.bi(n));
            }
        }
        if let (Int(a), Int(b)) = (arg, ret) {
            let (a, b) = (*a, *b);
            if a < b {
                let k = self.rng.range(-(b - a), b - a);
                c.push(format!("({} {})", self.bi("add"), num(k)));
                c.push(format!("({} {})", self.bi("sub"), num(k)));
            }
            if a > 0 && b / a >= 1 {
                let k = self.rng.range(-(b / a).min(50), (b / a).min(50));
                c.push(format!("({} {})", self.bi("mul"), num(k)));
            }
            if a <= b {
                let k = self.rng.range(1, 9);
                c.push(format!("(x: {} x {})", self.bi("div"), k));
            }
        }
        if let List(e, mn, mx) = arg {
            if *mn >= 1 && fits(e, ret) {
                c.push(self.bi("head"));
            }
            if let Int(b) = ret
                && *mx as i64 <= *b
            {
                c.push(self.bi("length"));
            }
            if *mn >= 1 && fits(&list_ty((**e).clone(), mn - 1, mx.saturating_sub(1)), ret) {
                c.push(self.bi("tail"));
            }
        }
        if let Rec(fs) = arg
            && fits(&list_ty(Str, fs.len(), fs.len()), ret)
        {
            c.push(self.bi("attrNames"));
        }
        if c.is_empty() { None } else { Some(self.rng.pick(&c).clone()) }
    }

    /// Attribute selection producing `t`.
    fn select(&mut self, t: &Ty, d: u32) -> Option<String> {
        let d1 = d - 1;
        let k = self.below(3);
        let mut fs = self.extra_fields(k, &[], d);
        let avoid: Vec<String> = fs.iter().map(|f| f.0.clone()).collect();
        let n = self.attr_names(1, &avoid, false).pop()?;
        match self.below(8) {
            0..=2 => {
                fs.push((n.clone(), t.clone()));
                let r = self.expr(&rec_ty(fs), d1);
                let key = self.sel_key(&n);
                if self.ch(1, 4) {
                    let dflt = self.expr(t, d1.min(2));
                    Some(format!("({}.{} or {})", r, key, dflt))
                } else {
                    Some(format!("({}.{})", r, key))
                }
            }
            3 => {
                // missing attribute with default
                let r = self.expr(&rec_ty(fs), d1);
                let key = self.sel_key(&n);
                let dflt = self.expr(t, d1);
                Some(format!("({}.{} or {})", r, key, dflt))
            }
            4 | 5 => {
                // nested path r.n.m
                let ik = self.below(2);
                let mut inner = self.extra_fields(ik, &[], d);
                let iavoid: Vec<String> = inner.iter().map(|f| f.0.clone()).collect();
                let m = self.attr_names(1, &iavoid, false).pop()?;
                inner.push((m.clone(), t.clone()));
                fs.push((n.clone(), rec_ty(inner)));
                let r = self.expr(&rec_ty(fs), d1);
                let k1 = self.sel_key(&n);
                let k2 = self.sel_key(&m);
                Some(format!("({}.{}.{})", r, k1, k2))
            }
            6 => {
                // nested path whose second component is missing (or hits a non-set)
                let mut it = self.rand_ty(d1);
                if matches!(it, Map(..) | Any) {
                    it = Int(10);
                }
                fs.push((n.clone(), it.clone()));
                let r = self.expr(&rec_ty(fs), d1);
                let m = match &it {
                    Rec(inner) => {
                        let iavoid: Vec<String> = inner.iter().map(|f| f.0.clone()).collect();
                        self.attr_names(1, &iavoid, false).pop()?
                    }
                    _ => self.rng.pick(ATTR_NAMES).to_string(),
                };
                let k1 = self.sel_key(&n);
                let k2 = self.sel_key(&m);
                let dflt = self.expr(t, d1);
                Some(format!("({}.{}.{} or {})", r, k1, k2, dflt))
            }
            _ => {
                fs.push((n.clone(), t.clone()));
                let r = self.expr(&rec_ty(fs), d1);
                Some(format!("({} {} {})", self.bi("getAttr"), q(&n), r))
            }
        }
    }

    // ----- Int ----------------------------------------------------------------

    fn int_prod(&mut self, b: i64, d: u32) -> Option<String> {
        let d1 = d - 1;
        match self.rng.weighted(&[7, 6, 5, 5, 2, 3, 2, 2, 2, 1, 1, 1, 3]) {
            0 | 1 => {
                let h = b / 2;
                let x = self.expr(&Int(h), d1);
                let y = self.expr(&Int(b - h), d1);
                Some(self.add_or_sub(&x, &y, 5))
            }
            2 => {
                if b < 4 {
                    return None;
                }
                let k = self.rng.range(2, isqrt(b).min(1000));
                let mut x = self.expr(&Int(k), d1);
                let mut y = self.expr(&Int(b / k), d1);
                if self.ch(1, 2) {
                    std::mem::swap(&mut x, &mut y);
                }
                if self.ch(1, 5) {
                    Some(format!("({} {} {})", self.bi("mul"), x, y))
                } else {
                    Some(format!("({} * {})", x, y))
                }
            }
            3 => {
                let x = self.expr(&Int(b), d1);
                match self.below(4) {
                    0 => {
                        let u = self.rand_ty(d1.saturating_sub(1));
                        let l = self.expr(&list_ty(u, 1, INF), d1);
                        Some(format!("({} / ({} {}))", x, self.bi("length"), l))
                    }
                    1 => {
                        let c = self.rng.range(1, 12) * if self.ch(1, 3) { -1 } else { 1 };
                        Some(format!("({} {} {})", self.bi("div"), x, num(c)))
                    }
                    _ => {
                        let c = self.rng.range(1, 12) * if self.ch(1, 3) { -1 } else { 1 };
                        Some(format!("({} / {})", x, num(c)))
                    }
                }
            }
            4 => {
                let x = self.expr(&Int(b), d1);
                Some(format!("(- {})", x))
            }
            5 => {
                let u = self.rand_ty(d1.saturating_sub(1));
                let l = self.expr(&list_ty(u, 0, (b.max(0) as usize).min(INF)), d1);
                Some(format!("({} {})", self.bi("length"), l))
            }
            6 => {
                let s = self.expr(&Str, d1);
                if b >= BIG {
                    Some(format!("({} {})", self.bi("stringLength"), s))
                } else {
                    let k = b.clamp(0, 20);
                    let st = self.below(4);
                    let s = self.ascii(&s);
                    Some(format!("({} ({} {} {} {}))", self.bi("stringLength"), self.bi("substring"), st, k, s))
                }
            }
            7 => self.int_recursion(b, d),
            8 => {
                let m = 1 + self.below(5) as i64;
                let init = self.expr(&Int(b / 2), d1);
                let l = self.expr(&list_ty(Int(b / (2 * m)), 0, m as usize), d1);
                let names = self.var_names(2);
                Some(format!(
                    "({} ({}: {}: {} + {}) {} {})",
                    self.bi("foldl'"),
                    names[0],
                    names[1],
                    names[0],
                    names[1],
                    init,
                    l
                ))
            }
            9 => {
                let x = self.expr(&Int(b), d1);
                Some(format!("({} ({} {}))", self.bi("fromJSON"), self.bi("toString"), x))
            }
            10 => {
                if b < 8 {
                    return None;
                }
                let x = self.expr(&Int(BIG), d1);
                Some(format!("({} ({} {}))", self.bi("stringLength"), self.bi("toString"), x))
            }
            12 => Some(self.near_edges(b, d1)),
            _ => {
                if b < 4 {
                    return None;
                }
                let rt = self.rand_rec_ty(d1);
                let r = self.expr(&rt, d1);
                Some(format!("({} ({} {}))", self.bi("length"), self.bi("attrNames"), r))
            }
        }
    }

    /// An integer within `b` computed at the 64-bit edges without crossing them. Crossing is an error in
    /// pipeline and in current Nix, but Nix 2.8, the oracle here, wraps around: overflow is tested by
    /// the corpus (`eval-fail/op-int-overflow*.nix`), not against this oracle.
    fn near_edges(&mut self, b: i64, d: u32) -> String {
        const MAX: &str = "9223372036854775807";
        const MIN: &str = "(-9223372036854775807 - 1)";
        let x = self.expr(&Int(b), d);
        match self.below(6) {
            0 => format!("((({MAX} - 1000000) + {x}) - ({MAX} - 1000000))"),
            1 => format!("((({MIN} + 1000000) + {x}) - ({MIN} + 1000000))"),
            2 => format!("(({x} * 4294967296) / 4294967296)"),
            3 => format!("({} ({MAX} - 1000000) (({MAX} - 1000000) - {x}))", self.bi("sub")),
            4 => format!("({} ({} {MIN} 1000000) {x} - ({MIN} + 1000000))", self.bi("add"), self.bi("add")),
            _ => format!("(- (- {x}))"),
        }
    }

    /// Terminating recursive / mutually recursive let-bound functions.
    fn int_recursion(&mut self, b: i64, d: u32) -> Option<String> {
        let d1 = d - 1;
        let f = self.fresh_name();
        let g = self.fresh_name();
        match self.below(4) {
            0 => {
                let mut k = 0i64;
                let mut fact = 1i64;
                while k < 9 && fact * (k + 1) <= b {
                    k += 1;
                    fact *= k;
                }
                let arg = self.expr(&Int(k), d1);
                Some(format!("(let {f} = n: if n <= 0 then 1 else n * {f} (n - 1); in {f} {arg})"))
            }
            1 => {
                let mut k = 0i64;
                while k < 60 && (k + 1) * (k + 2) / 2 <= b {
                    k += 1;
                }
                let arg = self.expr(&Int(k), d1);
                Some(format!("(let {f} = n: acc: if n <= 0 then acc else {f} (n - 1) (acc + n); in {f} {arg} 0)"))
            }
            2 => {
                let k = (b / 2).min(50);
                let arg = self.expr(&Int(k), d1);
                Some(format!(
                    "(let {f} = n: if n <= 0 then 0 else 1 + {g} (n - 1); {g} = n: if n <= 0 then 0 else 2 + {f} (n - 1); in {f} {arg})"
                ))
            }
            _ => {
                let fib = |n: i64| {
                    let (mut a, mut bb) = (0i64, 1i64);
                    for _ in 0..n {
                        let t = a + bb;
                        a = bb;
                        bb = t;
                    }
                    a
                };
                let mut k = 0i64;
                while k < 15 && fib(k + 1).max(k + 1) <= b {
                    k += 1;
                }
                let arg = self.expr(&Int(k), d1);
                Some(format!("(let {f} = n: if n < 2 then n else {f} (n - 1) + {f} (n - 2); in {f} {arg})"))
            }
        }
    }

    // ----- Float --------------------------------------------------------------

    /// A float-or-int operand with |v| <= b; `need_float` forces a float.
    fn num_operand(&mut self, b: i64, need_float: bool, d: u32) -> (String, bool) {
        if need_float || self.ch(2, 3) { (self.expr(&Float(b), d), true) } else { (self.expr(&Int(b), d), false) }
    }

    fn float_prod(&mut self, b: i64, d: u32) -> Option<String> {
        let d1 = d - 1;
        match self.rng.weighted(&[6, 5, 5, 5, 2, 1, 2]) {
            0 | 1 => {
                let h = b / 2;
                let (x, xf) = self.num_operand(h, false, d1);
                let (y, _) = self.num_operand(b - h, !xf, d1);
                let (x, y) = if self.ch(1, 2) { (x, y) } else { (y, x) };
                Some(self.add_or_sub(&x, &y, 6))
            }
            2 => {
                if b < 4 {
                    return None;
                }
                let k = self.rng.range(2, isqrt(b).min(1000));
                let (x, xf) = self.num_operand(k, false, d1);
                let (y, _) = self.num_operand(b / k, !xf, d1);
                let (x, y) = if self.ch(1, 2) { (x, y) } else { (y, x) };
                if self.ch(1, 6) {
                    Some(format!("({} {} {})", self.bi("mul"), x, y))
                } else {
                    Some(format!("({} * {})", x, y))
                }
            }
            3 => {
                // divisor: non-zero literal; |x / c| <= b
                let (c, cval, cf) = *self.rng.pick(&[
                    ("2.0", 2.0, true),
                    ("4.0", 4.0, true),
                    ("0.5", 0.5, true),
                    ("0.25", 0.25, true),
                    ("1.5", 1.5, true),
                    ("3.0", 3.0, true),
                    ("10.0", 10.0, true),
                    ("(-2.0)", 2.0, true),
                    ("2", 2.0, false),
                    ("3", 3.0, false),
                    ("(-7)", 7.0, false),
                ]);
                let xb = if cval < 1.0 { ((b as f64) * cval).floor() as i64 } else { b };
                let (x, _) = self.num_operand(xb, !cf, d1);
                if self.ch(1, 6) {
                    Some(format!("({} {} {})", self.bi("div"), x, c))
                } else {
                    Some(format!("({} / {})", x, c))
                }
            }
            4 => {
                let x = self.expr(&Float(b), d1);
                Some(format!("(- {})", x))
            }
            5 => {
                let s = *self.rng.pick(&["2.5", "-0.125", "1.0e2", "3.75", "0.1"]);
                let v: f64 = s.parse().unwrap();
                if v.abs() > b as f64 {
                    return None;
                }
                Some(format!("({} \"{}\")", self.bi("fromJSON"), s))
            }
            _ => {
                let m = 1 + self.below(5) as i64;
                let l = self.expr(&list_ty(Float(b / (2 * m)), 0, m as usize), d1);
                let init = self.float_lit(b / 2);
                let names = self.var_names(2);
                Some(format!(
                    "({} ({}: {}: {} + {}) {} {})",
                    self.bi("foldl'"),
                    names[0],
                    names[1],
                    names[0],
                    names[1],
                    init,
                    l
                ))
            }
        }
    }

    // ----- Bool ---------------------------------------------------------------

    fn bool_prod(&mut self, d: u32) -> Option<String> {
        let d1 = d - 1;
        match self.rng.weighted(&[3, 4, 4, 2, 8, 3, 4, 4, 4, 2, 3, 2, 1, 1, 1]) {
            0 => Some(format!("(! {})", self.expr(&Bool, d1))),
            1 => Some(format!("({} && {})", self.expr(&Bool, d1), self.expr(&Bool, d1))),
            2 => Some(format!("({} || {})", self.expr(&Bool, d1), self.expr(&Bool, d1))),
            3 => Some(format!("({} -> {})", self.expr(&Bool, d1), self.expr(&Bool, d1))),
            4 => {
                let op = *self.rng.pick(&["<", "<=", ">", ">=", "==", "!="]);
                let b = *self.rng.pick(&[10, 1000, BIG]);
                let (x, xf) = self.num_operand(b, false, d1);
                let (y, _) = if xf { self.num_operand(b, false, d1) } else { (self.expr(&Int(b), d1), false) };
                if self.ch(1, 8) {
                    Some(format!("({} {} {})", self.bi("lessThan"), x, y))
                } else {
                    Some(format!("({} {} {})", x, op, y))
                }
            }
            5 => {
                let op = *self.rng.pick(&["<", "<=", ">", ">=", "==", "!="]);
                Some(format!("({} {} {})", self.expr(&Str, d1), op, self.expr(&Str, d1)))
            }
            6 => {
                let op = if self.ch(1, 2) { "==" } else { "!=" };
                let t1 = self.rand_ty(d1);
                let t2 = if self.ch(3, 4) { t1.clone() } else { self.rand_ty(d1) };
                Some(format!("({} {} {})", self.expr(&t1, d1), op, self.expr(&t2, d1)))
            }
            7 => {
                if self.ch(1, 8) {
                    let c = self.fun_candidates(None, &Any);
                    let f = if c.is_empty() || self.ch(1, 2) {
                        let p = self.var_name();
                        format!("({}: {})", p, p)
                    } else {
                        self.rng.pick(&c).0.clone()
                    };
                    return Some(format!("({} {})", self.bi("isFunction"), f));
                }
                let n = *self.rng.pick(&["isInt", "isFloat", "isBool", "isString", "isList", "isAttrs", "isNull"]);
                let t = self.rand_ty(d1);
                let x = self.expr(&t, d1);
                if self.ch(1, 6) { Some(format!("({} == null)", x)) } else { Some(format!("({} {})", self.bi(n), x)) }
            }
            8 => {
                // `?` / hasAttr on records (present or absent) and maps
                let rt = self.rand_rec_ty(d1 + 1);
                let r = self.expr(&rt, d1);
                let fs = match &rt {
                    Rec(fs) => fs.clone(),
                    _ => unreachable!(),
                };
                let n = if !fs.is_empty() && self.ch(1, 2) {
                    self.rng.pick(&fs).0.clone()
                } else {
                    self.rng.pick(ATTR_NAMES).to_string()
                };
                match self.below(4) {
                    0 => Some(format!("({} {} {})", self.bi("hasAttr"), q(&n), r)),
                    1 => {
                        let m = self.rng.pick(ATTR_NAMES).to_string();
                        Some(format!("({} ? {}.{})", r, self.sel_key(&n), self.sel_key(&m)))
                    }
                    _ => Some(format!("({} ? {})", r, self.sel_key(&n))),
                }
            }
            9 => {
                let vt = self.rand_ty(d1.saturating_sub(1));
                let m = self.expr(&Map(Box::new(vt), INF), d1);
                let n = self.rng.pick(ATTR_NAMES).to_string();
                Some(format!("({} ? {})", m, self.sel_key(&n)))
            }
            10 => {
                let t = self.rand_ty(d1.saturating_sub(1));
                let x = self.expr(&t, d1);
                let l = self.expr(&list_ty(t, 0, INF), d1);
                Some(format!("({} {} {})", self.bi("elem"), x, l))
            }
            11 => {
                let t = self.rand_ty(d1.saturating_sub(1));
                let p = self.func(&t, &Bool, d1);
                let l = self.expr(&list_ty(t, 0, INF), d1);
                let f = if self.ch(1, 2) { "any" } else { "all" };
                Some(format!("({} {} {})", self.bi(f), p, l))
            }
            12 => {
                let x = match self.below(3) {
                    0 => format!("(throw {})", self.expr(&Str, d1.min(2))),
                    1 => format!(
                        "(assert {}; {})",
                        self.rng.pick(&["false", "(1 == 2)", "(\"a\" > \"b\")"]),
                        self.expr(&Int(10), d1.min(2))
                    ),
                    _ => {
                        let t = self.rand_ty(d1);
                        self.expr(&t, d1)
                    }
                };
                Some(format!("(({} {}).success)", self.bi("tryEval"), x))
            }
            13 => {
                let f = self.fresh_name();
                let g = self.fresh_name();
                let arg = self.expr(&Int(40), d1);
                Some(format!(
                    "(let {f} = n: if n <= 0 then true else {g} (n - 1); {g} = n: if n <= 0 then false else {f} (n - 1); in {f} {arg})"
                ))
            }
            _ => {
                if self.ch(1, 2) {
                    let (re, _) = *self.rng.pick(MATCH_RES);
                    let s = self.match_input(d1);
                    Some(format!("({} \"{}\" {} == null)", self.bi("match"), re, s))
                } else {
                    // lexicographic list comparison
                    let l1 = self.expr(&list_ty(Int(100), 0, 4), d1);
                    let l2 = self.expr(&list_ty(Int(100), 0, 4), d1);
                    Some(format!("({} < {})", l1, l2))
                }
            }
        }
    }

    // ----- Str ----------------------------------------------------------------

    fn match_input(&mut self, d: u32) -> String {
        match self.below(4) {
            0 | 1 => q(self.rng.pick::<&str>(SHAPED)),
            2 => {
                let w = *self.rng.pick(&["abc", "foo", "x", "Zed", "bar"]);
                let n = self.expr(&Int(1000), d.min(2));
                format!("(\"{}-\" + {} {})", w, self.bi("toString"), n)
            }
            _ => self.expr(&Str, d),
        }
    }

    fn str_prod(&mut self, d: u32) -> Option<String> {
        let d1 = d - 1;
        match self.rng.weighted(&[6, 4, 5, 4, 3, 3, 3, 3, 2, 3, 2]) {
            0 => Some(self.interp_str(d)),
            1 => Some(self.indented_str(d)),
            2 => Some(format!("({} + {})", self.expr(&Str, d1), self.expr(&Str, d1))),
            3 => {
                let t = self.tostring_ty(true);
                let x = self.expr(&t, d1);
                Some(format!("({} {})", self.bi("toString"), x))
            }
            4 => {
                let t = self.rand_ty(d1);
                let x = self.expr(&t, d1);
                Some(format!("({} {})", self.bi("toJSON"), x))
            }
            5 => {
                let sep = if self.ch(1, 2) {
                    q(self.rng.pick::<&str>(&["", ",", ", ", "-", "\\n"]))
                } else {
                    self.expr(&Str, d1.min(1))
                };
                let l = self.expr(&list_ty(Str, 0, INF), d1);
                Some(format!("({} {} {})", self.bi("concatStringsSep"), sep, l))
            }
            6 => {
                let k = 1 + self.below(3);
                let mut from = Vec::new();
                let mut to = Vec::new();
                for _ in 0..k {
                    from.push(q(self.rng.pick::<&str>(&["a", "b", "o", "-", " ", "ab", "x", "1", "foo", "\\n", ""])));
                    let t = if self.ch(1, 2) {
                        q(self.rng.pick::<&str>(&["", "_", "AB", "-", "xyz"]))
                    } else {
                        self.expr(&Str, d1.min(2))
                    };
                    to.push(t);
                }
                let mut s = self.expr(&Str, d1);
                if from.iter().any(|f| f == "\"\"") {
                    // an empty pattern inserts between bytes, so inside a multi-byte character too
                    s = self.ascii(&s);
                }
                Some(format!("({} [ {} ] [ {} ] {})", self.bi("replaceStrings"), from.join(" "), to.join(" "), s))
            }
            7 => {
                let start = match self.below(4) {
                    0 => {
                        let u = self.rand_ty(0);
                        let l = self.expr(&list_ty(u, 0, 10), d1.min(2));
                        format!("({} {})", self.bi("length"), l)
                    }
                    _ => self.below(7).to_string(),
                };
                let len = if self.ch(1, 3) { self.expr(&Int(20), d1.min(2)) } else { self.below(12).to_string() };
                let s = self.expr(&Str, d1);
                let s = self.ascii(&s);
                Some(format!("({} {} {} {})", self.bi("substring"), start, len, s))
            }
            8 => {
                let t = self.rand_ty(d1);
                let x = self.expr(&t, d1);
                Some(format!("({} {})", self.bi("typeOf"), x))
            }
            9 => {
                let groups: Vec<(&str, usize)> = MATCH_RES.iter().copied().filter(|r| r.1 > 0).collect();
                let (re, ng) = *self.rng.pick(&groups);
                let i = self.below(ng);
                let m = self.fresh_name();
                let s = self.match_input(d1);
                let dflt = self.expr(&Str, d1);
                Some(format!(
                    "(let {m} = {} \"{re}\" {s}; in if {m} == null then {dflt} else {} {m} {i})",
                    self.bi("match"),
                    self.bi("elemAt")
                ))
            }
            _ => {
                let re = *self.rng.pick(SPLIT_RES);
                let s = self.match_input(d1);
                let sep = q(self.rng.pick::<&str>(&["", "|", "+"]));
                Some(format!(
                    "({} {} ({} {} ({} \"{}\" {})))",
                    self.bi("concatStringsSep"),
                    sep,
                    self.bi("filter"),
                    self.bi("isString"),
                    self.bi("split"),
                    re,
                    s
                ))
            }
        }
    }

    fn null_prod(&mut self, d: u32) -> Option<String> {
        let d1 = d - 1;
        match self.below(3) {
            0 => Some(format!(
                "({} \"[0-9]+\" {})",
                self.bi("match"),
                q(self.rng.pick::<&str>(&["abc", "", "x1", "12a"]))
            )),
            1 => {
                let t = self.rand_ty(d1);
                let x = self.expr(&t, d1);
                Some(format!("({} {} null)", self.bi("seq"), x))
            }
            _ => Some(format!("({} ({} \"(x)?\" \"\"))", self.bi("head"), self.bi("match"))),
        }
    }

    // ----- List ---------------------------------------------------------------

    /// Split the length range [mn, mx] into two ranges whose sums stay within it.
    fn split_range(&mut self, mn: usize, mx: usize) -> Option<((usize, usize), (usize, usize))> {
        let (m1, m2) = if mx >= INF {
            (INF, INF)
        } else {
            let a = self.below(mx + 1);
            (a, mx - a)
        };
        let lo = mn.saturating_sub(m2);
        let hi = mn.min(m1);
        if lo > hi {
            return None;
        }
        let x = lo + self.below(hi - lo + 1);
        let y = mn.saturating_sub(x);
        if y > m2 {
            return None;
        }
        Some(((x, m1), (y, m2)))
    }

    fn list_prod(&mut self, e: &Ty, mn: usize, mx: usize, d: u32) -> Option<String> {
        let d1 = d - 1;
        let k = self.rng.weighted(&[10, 5, 6, 4, 4, 3, 3, 2, 3, 2, 2, 2, 2, 1, 1, 2]);
        match k {
            0 => {
                let hi = mx.min(mn + 3);
                let n = mn + self.below(hi - mn + 1);
                let mut items = Vec::new();
                for i in 0..n {
                    let dd = if i == 0 { d1 } else { d1.saturating_sub(self.below(2) as u32) };
                    items.push(self.expr(e, dd));
                }
                if items.is_empty() { Some("[ ]".into()) } else { Some(format!("[ {} ]", items.join(" "))) }
            }
            1 => {
                let ((a1, b1), (a2, b2)) = self.split_range(mn, mx)?;
                let x = self.expr(&list_ty(e.clone(), a1, b1), d1);
                let y = self.expr(&list_ty(e.clone(), a2, b2), d1);
                Some(format!("({} ++ {})", x, y))
            }
            2 => {
                let u = self.rand_ty(d1.saturating_sub(1));
                let f = self.func(&u, e, d1);
                let l = self.expr(&list_ty(u, mn, mx), d1);
                Some(format!("({} {} {})", self.bi("map"), f, l))
            }
            3 => {
                if mn > 0 {
                    return None;
                }
                let p = self.func(e, &Bool, d1);
                let l = self.expr(&list_ty(e.clone(), 0, mx), d1);
                Some(format!("({} {} {})", self.bi("filter"), p, l))
            }
            4 => {
                let hi = mx.min(mn + 4).min(mn.max(6));
                if hi < mn {
                    return None;
                }
                let n = mn + self.below(hi - mn + 1);
                let f = self.func(&Int(n as i64), e, d1);
                Some(format!("({} {} {})", self.bi("genList"), f, n))
            }
            5 => {
                let k = 1 + self.below(3);
                let mut parts = Vec::new();
                let (mut rmn, mut rmx) = (mn, mx);
                for i in 0..k {
                    let (this, rest) = if i + 1 == k { ((rmn, rmx), (0, 0)) } else { self.split_range(rmn, rmx)? };
                    parts.push(
                        self.expr(&list_ty(e.clone(), this.0, this.1), d1.saturating_sub(if i > 0 { 1 } else { 0 })),
                    );
                    rmn = rest.0;
                    rmx = rest.1;
                }
                Some(format!("({} [ {} ])", self.bi("concatLists"), parts.join(" ")))
            }
            6 => {
                let u = self.rand_ty(d1.saturating_sub(1));
                let (amn, amx, cmn, cmx) = if mn == 0 {
                    let amx = if mx >= INF { INF } else { 1 + self.below(mx.min(4)) };
                    let cmx = if mx >= INF { INF } else { mx / amx.max(1) };
                    (0, amx, 0, cmx)
                } else {
                    if mx < mn {
                        return None;
                    }
                    let amx = mn + self.below(mx.min(mn + 2) - mn + 1);
                    let cmx = if mx >= INF { INF } else { mx / amx };
                    (mn, amx, 1, cmx)
                };
                let f = self.func(&u, &list_ty(e.clone(), cmn, cmx), d1);
                let l = self.expr(&list_ty(u, amn, amx), d1);
                Some(format!("({} {} {})", self.bi("concatMap"), f, l))
            }
            7 => {
                let l = self.expr(&list_ty(e.clone(), mn + 1, sat_add(mx, 1)), d1);
                Some(format!("({} {})", self.bi("tail"), l))
            }
            8 => {
                let cmp = match e {
                    Int(_) | Float(_) | Str => {
                        let (a, b) = {
                            let ns = self.var_names(2);
                            (ns[0].clone(), ns[1].clone())
                        };
                        match self.below(4) {
                            0 => self.bi("lessThan"),
                            1 => format!("({a}: {b}: {a} > {b})"),
                            _ => format!("({a}: {b}: {a} < {b})"),
                        }
                    }
                    Rec(fs) => {
                        let keys: Vec<&(String, Ty)> =
                            fs.iter().filter(|(_, t)| matches!(t, Int(_) | Float(_) | Str)).collect();
                        if keys.is_empty() {
                            return None;
                        }
                        let k = self.rng.pick(&keys).0.clone();
                        let ks = self.sel_key(&k);
                        let op = if self.ch(1, 2) { "<" } else { ">" };
                        format!("(p: q: p.{ks} {op} q.{ks})")
                    }
                    _ => return None,
                };
                let l = self.expr(&list_ty(e.clone(), mn, mx), d1);
                Some(format!("({} {} {})", self.bi("sort"), cmp, l))
            }
            9 => {
                if !fits(&Str, e) {
                    return None;
                }
                let hi = mx.min(mn + 3).min(ATTR_NAMES.len());
                if hi < mn {
                    return None;
                }
                let n = mn + self.below(hi - mn + 1);
                if mn == 0 && self.ch(1, 3) {
                    let vt = self.rand_ty(d1.saturating_sub(1));
                    let m = self.expr(&Map(Box::new(vt), mx), d1);
                    return Some(format!("({} {})", self.bi("attrNames"), m));
                }
                let fs = self.extra_fields(n, &[], d);
                let r = self.expr(&rec_ty(fs), d1);
                Some(format!("({} {})", self.bi("attrNames"), r))
            }
            10 => {
                if mn == 0 && self.ch(1, 3) {
                    let m = self.expr(&Map(Box::new(e.clone()), mx), d1);
                    return Some(format!("({} {})", self.bi("attrValues"), m));
                }
                let hi = mx.min(mn + 3).min(ATTR_NAMES.len());
                if hi < mn {
                    return None;
                }
                let n = mn + self.below(hi - mn + 1);
                let names = self.attr_names(n, &[], false);
                let r = self.expr(&rec_ty(names.into_iter().map(|n| (n, e.clone())).collect()), d1);
                Some(format!("({} {})", self.bi("attrValues"), r))
            }
            11 => {
                let name = self.rng.pick(ATTR_NAMES).to_string();
                let hi = mx.min(mn + 3);
                let with_n = mn + self.below(hi - mn + 1);
                let without = self.below(3);
                let mut items = Vec::new();
                for i in 0..(with_n + without) {
                    let k = self.below(3);
                    let mut fs = self.extra_fields(k, std::slice::from_ref(&name), d);
                    if i < with_n {
                        fs.push((name.clone(), e.clone()));
                    }
                    items.push(self.expr(&rec_ty(fs), d1.saturating_sub(1)));
                }
                self.rng.shuffle(&mut items);
                Some(format!("({} {} [ {} ])", self.bi("catAttrs"), q(&name), items.join(" ")))
            }
            12 => {
                if mn > 0 {
                    return None;
                }
                let p = self.func(e, &Bool, d1);
                let l = self.expr(&list_ty(e.clone(), 0, mx), d1);
                let side = if self.ch(1, 2) { "right" } else { "wrong" };
                Some(format!("(({} {} {}).{})", self.bi("partition"), p, l, side))
            }
            13 => {
                let groups: Vec<(&str, usize)> = MATCH_RES.iter().copied().filter(|r| r.1 <= mx).collect();
                if mn > 0 || !fits(&Str, e) || groups.is_empty() {
                    return None;
                }
                let (re, _) = *self.rng.pick(&groups);
                let m = self.fresh_name();
                let s = self.match_input(d1);
                Some(format!("(let {m} = {} \"{re}\" {s}; in if {m} == null then [ ] else {m})", self.bi("match")))
            }
            14 => {
                if mn > 1 || mx < INF || !fits(&Str, e) {
                    return None;
                }
                let re = *self.rng.pick(SPLIT_RES);
                let s = self.match_input(d1);
                Some(format!("({} {} ({} \"{}\" {}))", self.bi("filter"), self.bi("isString"), self.bi("split"), re, s))
            }
            _ => {
                // map over a list of records with a formals lambda / selection
                let k = 1 + self.below(3);
                let names = self.attr_names(k, &[], true);
                let mut fs = Vec::new();
                for n in names {
                    let t = self.rand_ty(d1.saturating_sub(2));
                    fs.push((n, t));
                }
                let rt = rec_ty(fs);
                let f = self.func(&rt, e, d1);
                let l = self.expr(&list_ty(rt, mn, mx), d1);
                Some(format!("({} {} {})", self.bi("map"), f, l))
            }
        }
    }

    // ----- Rec ----------------------------------------------------------------

    fn rec_prod(&mut self, fs: &[(String, Ty)], d: u32) -> Option<String> {
        let d1 = d - 1;
        let names: Vec<String> = fs.iter().map(|f| f.0.clone()).collect();
        match self.rng.weighted(&[12, 5, 5, 3, 2, 3, 3, 4, 4, 3, 2]) {
            0 => {
                let lines = self.bindings(fs, &[], d, false, true);
                if lines.is_empty() {
                    return Some("{ }".into());
                }
                Some(format!("{{ {} }}", lines.join(" ")))
            }
            1 => {
                let save = self.env.len();
                let lines = self.bindings(fs, &[], d, true, false);
                self.env.truncate(save);
                Some(format!("rec {{ {} }}", lines.join(" ")))
            }
            2 => {
                let mut left = Vec::new();
                let mut right = Vec::new();
                for (n, t) in fs {
                    if self.ch(1, 2) {
                        right.push((n.clone(), t.clone()));
                        if self.ch(1, 3) {
                            let ot = self.rand_ty(d1.saturating_sub(1));
                            left.push((n.clone(), ot));
                        }
                    } else {
                        left.push((n.clone(), t.clone()));
                    }
                }
                let l = self.expr(&rec_ty(left), d1);
                let r = self.expr(&rec_ty(right), d1);
                Some(format!("({} // {})", l, r))
            }
            3 => {
                let k = 1 + self.below(2);
                let extra = self.extra_fields(k, &names, d);
                let mut removed: Vec<String> = extra.iter().map(|e| q(&e.0)).collect();
                if self.ch(1, 3) {
                    let absent = self.attr_names(1, &names, false);
                    removed.extend(absent.iter().filter(|a| !extra.iter().any(|e| &e.0 == *a)).map(|a| q(a)));
                }
                self.rng.shuffle(&mut removed);
                let mut all = fs.to_vec();
                all.extend(extra);
                let x = self.expr(&rec_ty(all), d1);
                Some(format!("({} {} [ {} ])", self.bi("removeAttrs"), x, removed.join(" ")))
            }
            4 => {
                let ka = self.below(2);
                let extra_a = self.extra_fields(ka, &names, d);
                let mut avoid = names.clone();
                avoid.extend(extra_a.iter().map(|e| e.0.clone()));
                let kx = self.below(3);
                let extra_x = self.extra_fields(kx, &avoid, d);
                let mut a_fs = Vec::new();
                for n in &names {
                    let t = self.rand_ty(d1.saturating_sub(2));
                    a_fs.push((n.clone(), t));
                }
                a_fs.extend(extra_a);
                let mut x_fs = fs.to_vec();
                x_fs.extend(extra_x);
                let a = self.expr(&rec_ty(a_fs), d1.saturating_sub(1));
                let x = self.expr(&rec_ty(x_fs), d1);
                Some(format!("({} {} {})", self.bi("intersectAttrs"), a, x))
            }
            5 => {
                let mut entries: Vec<(String, String)> = Vec::new();
                for (n, t) in fs {
                    let v = self.expr(t, d1);
                    let ne = match self.below(4) {
                        0 => format!("\"${{{}}}\"", q(n)),
                        _ => q(n),
                    };
                    entries.push((n.clone(), format!("{{ name = {}; value = {}; }}", ne, v)));
                }
                self.rng.shuffle(&mut entries);
                // duplicates come after the first occurrence and are ignored
                if !fs.is_empty() && self.ch(1, 2) {
                    let i = self.below(entries.len());
                    let dn = entries[i].0.clone();
                    let t = self.rand_ty(d1.saturating_sub(1));
                    let v = self.expr(&t, d1.saturating_sub(1));
                    let pos = i + 1 + self.below(entries.len() - i);
                    entries.insert(pos, (dn.clone(), format!("{{ value = {}; name = {}; }}", v, q(&dn))));
                }
                let items: Vec<String> = entries.into_iter().map(|e| e.1).collect();
                Some(format!("({} [ {} ])", self.bi("listToAttrs"), items.join(" ")))
            }
            6 => {
                // mapAttrs on a record with uniform field types
                if fs.is_empty() || !fs.iter().all(|f| f.1 == fs[0].1) {
                    return None;
                }
                let t = fs[0].1.clone();
                let u = self.rand_ty(d1.saturating_sub(1));
                let x = self.expr(&rec_ty(names.iter().map(|n| (n.clone(), u.clone())).collect()), d1);
                let ps = self.var_names(2);
                self.env.push((ps[0].clone(), Bind::Val(Str)));
                self.env.push((ps[1].clone(), Bind::Val(u)));
                let body = self.expr(&t, d1);
                self.env.pop();
                self.env.pop();
                Some(format!("({} ({}: {}: {}) {})", self.bi("mapAttrs"), ps[0], ps[1], body, x))
            }
            7 => {
                // shapes produced by builtins: partition / tryEval
                if names == ["right", "wrong"]
                    && let (List(e1, 0, m1), List(e2, 0, m2)) = (&fs[0].1, &fs[1].1)
                    && e1 == e2
                {
                    let p = self.func(e1, &Bool, d1);
                    let l = self.expr(&list_ty((**e1).clone(), 0, *m1.min(m2)), d1);
                    return Some(format!("({} {} {})", self.bi("partition"), p, l));
                }
                if names == ["success", "value"] && fs[0].1 == Bool {
                    if fits(&Bool, &fs[1].1) && self.ch(1, 2) {
                        let m = self.expr(&Str, d1.min(2));
                        return Some(format!("({} (throw {}))", self.bi("tryEval"), m));
                    }
                    let x = self.expr(&fs[1].1, d1);
                    return Some(format!("({} {})", self.bi("tryEval"), x));
                }
                None
            }
            8 => {
                // functionArgs: all-Bool records with identifier names
                if !fs.iter().all(|f| f.1 == Bool && is_ident(&f.0)) {
                    return None;
                }
                if fs.is_empty() {
                    let p = self.var_name();
                    return Some(format!("({} ({}: {}))", self.bi("functionArgs"), p, p));
                }
                let save = self.env.len();
                for n in &names {
                    self.env.push((n.clone(), Bind::Blocked));
                }
                let mut parts = Vec::new();
                for n in &names {
                    if self.ch(1, 2) {
                        let t = self.rand_ty(1);
                        let dv = self.expr(&t, 1);
                        parts.push(format!("{} ? {}", n, dv));
                    } else {
                        parts.push(n.clone());
                    }
                }
                self.rng.shuffle(&mut parts);
                if self.ch(1, 3) {
                    parts.push("...".into());
                }
                let t = self.rand_ty(0);
                let body = self.expr(&t, 1);
                self.env.truncate(save);
                Some(format!("({} ({{ {} }}: {}))", self.bi("functionArgs"), parts.join(", "), body))
            }
            9 => {
                // listToAttrs over a mapped list of names (uniform field types)
                if fs.is_empty() || !fs.iter().all(|f| f.1 == fs[0].1) {
                    return None;
                }
                let t = fs[0].1.clone();
                let mut ns: Vec<String> = names.iter().map(|n| q(n)).collect();
                self.rng.shuffle(&mut ns);
                let p = self.var_name();
                self.env.push((p.clone(), Bind::Val(Str)));
                let body = self.expr(&t, d1);
                self.env.pop();
                Some(format!(
                    "({} ({} ({}: {{ name = {}; value = {}; }}) [ {} ]))",
                    self.bi("listToAttrs"),
                    self.bi("map"),
                    p,
                    p,
                    body,
                    ns.join(" ")
                ))
            }
            _ => {
                // let-bound record then used via inherit / `//`
                let v = self.fresh_name();
                let x = self.expr(&Rec(fs.to_vec()), d1);
                Some(format!("(let {v} = {x}; in {v} // {{ }})"))
            }
        }
    }

    // ----- Map (unknown keys) ------------------------------------------------------

    fn map_prod(&mut self, e: &Ty, mx: usize, d: u32) -> Option<String> {
        let d1 = d - 1;
        match self.rng.weighted(&[6, 6, 4, 2, 2, 2, 1]) {
            0 => {
                let k = self.below(mx.min(4) + 1);
                let names = self.attr_names(k, &[], false);
                let rt = rec_ty(names.into_iter().map(|n| (n, e.clone())).collect());
                Some(self.expr_nonleaf(&rt, d))
            }
            1 => {
                if let List(u, gmn, gmx) = e
                    && *gmn <= 1
                {
                    let u = (**u).clone();
                    let f = if self.ch(1, 2) {
                        self.func(&u, &Str, d1)
                    } else {
                        let p = self.var_name();
                        self.env.push((p.clone(), Bind::Val(u.clone())));
                        let c = self.expr(&Bool, d1);
                        self.env.pop();
                        let (k1, k2) = (self.rng.pick(ATTR_NAMES).to_string(), self.rng.pick(ATTR_NAMES).to_string());
                        format!("({}: if {} then {} else {})", p, c, q(&k1), q(&k2))
                    };
                    let l = self.expr(&list_ty(u, 0, (*gmx).min(mx)), d1);
                    return Some(format!("({} {} {})", self.bi("groupBy"), f, l));
                }
                None
            }
            2 => {
                let u = self.rand_ty(d1.saturating_sub(1));
                let l = self.expr(&list_ty(u.clone(), 0, mx), d1);
                let p = self.var_name();
                self.env.push((p.clone(), Bind::Val(u)));
                let key = self.expr(&Str, d1.min(2));
                let v = self.expr(e, d1);
                self.env.pop();
                Some(format!(
                    "({} ({} ({}: {{ name = {}; value = {}; }}) {}))",
                    self.bi("listToAttrs"),
                    self.bi("map"),
                    p,
                    key,
                    v,
                    l
                ))
            }
            3 => {
                let u = self.rand_ty(d1.saturating_sub(1));
                let m = self.expr(&Map(Box::new(u.clone()), mx), d1);
                let ps = self.var_names(2);
                self.env.push((ps[0].clone(), Bind::Val(Str)));
                self.env.push((ps[1].clone(), Bind::Val(u)));
                let body = self.expr(e, d1);
                self.env.pop();
                self.env.pop();
                Some(format!("({} ({}: {}: {}) {})", self.bi("mapAttrs"), ps[0], ps[1], body, m))
            }
            4 => {
                let (a, b) = if mx >= INF {
                    (INF, INF)
                } else {
                    let a = self.below(mx + 1);
                    (a, mx - a)
                };
                let x = self.expr(&Map(Box::new(e.clone()), a), d1);
                let y = self.expr(&Map(Box::new(e.clone()), b), d1);
                Some(format!("({} // {})", x, y))
            }
            5 => {
                let m = self.expr(&Map(Box::new(e.clone()), mx), d1);
                let k = self.below(3);
                let ns: Vec<String> = self.attr_names(k, &[], false).iter().map(|n| q(n)).collect();
                Some(format!("({} {} [ {} ])", self.bi("removeAttrs"), m, ns.join(" ")))
            }
            _ => {
                let u = self.rand_ty(0);
                let a = self.expr(&Map(Box::new(u), INF), d1);
                let b = self.expr(&Map(Box::new(e.clone()), mx), d1);
                Some(format!("({} {} {})", self.bi("intersectAttrs"), a, b))
            }
        }
    }

    // ----- Any ----------------------------------------------------------------

    fn any_prod(&mut self, d: u32) -> Option<String> {
        let d1 = d - 1;
        match self.rng.weighted(&[8, 2, 2, 2, 2]) {
            0 => {
                let t = self.rand_ty(d);
                if t == Any {
                    return None;
                }
                Some(self.expr_nonleaf(&t, d))
            }
            1 => {
                let re = *self.rng.pick(SPLIT_RES);
                let s = self.match_input(d1);
                Some(format!("({} \"{}\" {})", self.bi("split"), re, s))
            }
            2 => {
                let (re, _) = *self.rng.pick(MATCH_RES);
                let s = self.match_input(d1);
                Some(format!("({} \"{}\" {})", self.bi("match"), re, s))
            }
            3 => {
                let j = self.json_text(d);
                Some(format!("({} {})", self.bi("fromJSON"), j))
            }
            _ => {
                let u = self.rand_ty(d1);
                let e = list_ty(u, 1, INF);
                Some(self.expr_nonleaf(&Map(Box::new(e), INF), d))
            }
        }
    }

    // =======================================================================
    // Failing expressions
    // =======================================================================

    fn fail_top(&mut self, d: u32) -> String {
        let t = self.rand_ty(d);
        let inner_d = d.saturating_sub(1);
        match self.below(8) {
            0 => {
                // inside a let whose bindings are visible to the failing part
                let nb = 1 + self.below(2);
                let names = self.var_names(nb);
                let mut fields = Vec::new();
                for n in names {
                    let ft = self.rand_ty(inner_d);
                    fields.push((n, ft));
                }
                let save = self.env.len();
                let lines = self.bindings(&fields, &[], d, true, false);
                let body = self.fail_deep(&t, inner_d);
                self.env.truncate(save);
                format!("(let {} in {})", lines.join(" "), body)
            }
            1 => {
                let rt = self.rand_rec_ty(d);
                let r = self.expr(&rt, inner_d.min(3));
                let fs = match rt {
                    Rec(fs) => fs,
                    _ => unreachable!(),
                };
                self.withs.push(Scope::Rec(fs));
                let body = self.fail_deep(&t, inner_d);
                self.withs.pop();
                format!("(with {}; {})", r, body)
            }
            2 => {
                let u = self.rand_ty(inner_d);
                let p = self.var_name();
                self.env.push((p.clone(), Bind::Val(u.clone())));
                let body = self.fail_deep(&t, inner_d);
                self.env.pop();
                let arg = self.expr(&u, inner_d.min(3));
                format!("(({}: {}) {})", p, body, arg)
            }
            3 => {
                let c = self.expr(&Bool, inner_d.min(3));
                let x = self.fail_deep(&t, inner_d);
                let y = self.fail_deep(&t, inner_d);
                format!("(if {} then {} else {})", c, x, y)
            }
            _ => self.fail_deep(&t, d),
        }
    }

    /// Fails when deeply forced (e.g. as the --strict output).
    fn fail_deep(&mut self, t: &Ty, d: u32) -> String {
        if d == 0 || self.ch(2, 5) {
            return self.fail_whnf(t, d);
        }
        let d1 = d - 1;
        let g = d1.min(3);
        match t {
            List(e, _, _) => match self.below(4) {
                0 => {
                    let a = self.expr(e, g);
                    let f = self.fail_deep(e, d1);
                    let b = self.expr(e, g);
                    format!("[ {} {} {} ]", a, f, b)
                }
                1 => {
                    let p = self.var_name();
                    self.env.push((p.clone(), Bind::Blocked));
                    let f = self.fail_whnf(e, d1);
                    self.env.pop();
                    let u = self.rand_ty(1);
                    let l = self.expr(&list_ty(u, 1, INF), g);
                    format!("({} ({}: {}) {})", self.bi("map"), p, f, l)
                }
                2 => {
                    let f = self.fail_whnf(e, d1);
                    format!("({} (i: {}) {})", self.bi("genList"), f, 1 + self.below(3))
                }
                _ => {
                    let l = self.expr(&list_ty((**e).clone(), 0, INF), g);
                    let f = self.fail_deep(e, d1);
                    format!("({} ++ [ {} ])", l, f)
                }
            },
            Rec(fs) if !fs.is_empty() => {
                let i = self.below(fs.len());
                let (n, ft) = fs[i].clone();
                match self.below(3) {
                    0 => {
                        let rest: Vec<(String, Ty)> = fs.iter().filter(|f| f.0 != n).cloned().collect();
                        let r = self.expr(&rec_ty(rest), g);
                        let f = self.fail_deep(&ft, d1);
                        format!("({{ {} = {}; }} // {})", q(&n), f, r)
                    }
                    1 => {
                        let p = self.var_names(2);
                        self.env.push((p[0].clone(), Bind::Blocked));
                        self.env.push((p[1].clone(), Bind::Blocked));
                        let f = self.fail_whnf(&ft, d1);
                        self.env.pop();
                        self.env.pop();
                        format!("({} ({}: {}: {}) {{ {} = 1; }})", self.bi("mapAttrs"), p[0], p[1], f, q(&n))
                    }
                    _ => {
                        let mut parts = Vec::new();
                        for (m, mt) in fs {
                            if *m == n {
                                let f = self.fail_deep(mt, d1);
                                parts.push(format!("{} = {};", q(m), f));
                            } else {
                                let v = self.expr(mt, g);
                                parts.push(format!("{} = {};", self.key(m), v));
                            }
                        }
                        self.rng.shuffle(&mut parts);
                        format!("{{ {} }}", parts.join(" "))
                    }
                }
            }
            Any | Map(..) => {
                let t2 = if self.ch(1, 2) { list_ty(Int(10), 0, INF) } else { self.rand_rec_ty(2) };
                self.fail_deep(&t2, d)
            }
            _ => self.fail_whnf(t, d),
        }
    }

    /// Fails as soon as it is evaluated to weak head normal form.
    fn fail_whnf(&mut self, t: &Ty, d: u32) -> String {
        if d == 0 || self.ch(1, 3) {
            return self.fail_base(d);
        }
        let d1 = d - 1;
        let g = d1.min(3);
        if self.ch(1, 2) {
            // generic forcing contexts
            return match self.below(11) {
                0 => {
                    let c = self.fail_whnf(&Bool, d1);
                    format!("(if {} then {} else {})", c, self.expr(t, g), self.expr(t, g))
                }
                1 => {
                    let c = self.expr(&Bool, g);
                    format!("(if {} then {} else {})", c, self.fail_whnf(t, d1), self.fail_whnf(t, d1))
                }
                2 => {
                    let v = self.fresh_name();
                    let u = self.rand_ty(1);
                    let f = self.fail_whnf(&u, d1);
                    if fits(&u, t) {
                        format!("(let {v} = {f}; in {v})")
                    } else {
                        format!("(let {v} = {f}; in {} {v} {})", self.bi("seq"), self.expr(t, g))
                    }
                }
                3 => {
                    let u = self.rand_ty(1);
                    let f = self.fail_whnf(&u, d1);
                    let p = self.fresh_name();
                    format!("(({p}: {} {p} {}) {f})", self.bi("seq"), self.expr(t, g))
                }
                4 => {
                    let f = self.fail_whnf(t, d1);
                    let n = self.rng.pick(ATTR_NAMES).to_string();
                    format!("({{ {} = {}; }}.{})", q(&n), f, self.sel_key(&n))
                }
                5 => {
                    let f = self.fail_whnf(t, d1);
                    if self.ch(1, 2) {
                        format!("({} [ {} {} ])", self.bi("head"), f, self.expr(t, g))
                    } else {
                        format!("({} [ {} {} {} ] 1)", self.bi("elemAt"), self.expr(t, g), f, self.expr(t, g))
                    }
                }
                6 => {
                    let u = self.rand_ty(1);
                    let f = self.fail_whnf(&u, d1);
                    format!("({} {} {})", self.bi("seq"), f, self.expr(t, g))
                }
                7 => {
                    let u = self.rand_ty(2);
                    let f = self.fail_deep(&u, d1);
                    format!("({} {} {})", self.bi("deepSeq"), f, self.expr(t, g))
                }
                8 => {
                    let rt = self.rand_rec_ty(2);
                    let r = self.expr(&rt, g);
                    let fs = match rt {
                        Rec(fs) => fs,
                        _ => unreachable!(),
                    };
                    self.withs.push(Scope::Rec(fs));
                    let f = self.fail_whnf(t, d1);
                    self.withs.pop();
                    format!("(with {}; {})", r, f)
                }
                9 => {
                    let c = self.fail_whnf(&Bool, d1);
                    format!("(assert {}; {})", c, self.expr(t, g))
                }
                _ => {
                    let u = self.rand_ty(1);
                    let f = self.fail_whnf(&list_ty(u.clone(), 0, INF), d1);
                    let ps = self.var_names(2);
                    format!("({} ({}: {}: {}) {} {})", self.bi("foldl'"), ps[0], ps[1], ps[0], self.expr(t, g), f)
                }
            };
        }
        match t {
            Int(_) | Float(_) => {
                let nt = if matches!(t, Int(_)) { Int(1000) } else { Float(1000) };
                match self.below(6) {
                    0 => format!("({} + {})", self.fail_whnf(&nt, d1), self.expr(&nt, g)),
                    1 => format!("({} * {})", self.expr(&nt, g), self.fail_whnf(&nt, d1)),
                    2 => format!("({} / 3)", self.fail_whnf(&nt, d1)),
                    3 => format!("(- {})", self.fail_whnf(&nt, d1)),
                    4 => {
                        let u = self.rand_ty(1);
                        format!("({} {})", self.bi("length"), self.fail_whnf(&list_ty(u, 0, INF), d1))
                    }
                    _ => format!("({} {})", self.bi("stringLength"), self.fail_whnf(&Str, d1)),
                }
            }
            Bool => match self.below(6) {
                0 => format!("({} && {})", self.fail_whnf(&Bool, d1), self.expr(&Bool, g)),
                1 => format!("({} || {})", self.fail_whnf(&Bool, d1), self.expr(&Bool, g)),
                2 => format!("(! {})", self.fail_whnf(&Bool, d1)),
                3 => {
                    if self.ch(1, 2) {
                        format!("({} < {})", self.fail_whnf(&Int(100), d1), self.expr(&Int(100), g))
                    } else {
                        format!("({} == {})", self.expr(&Int(100), g), self.fail_whnf(&Int(100), d1))
                    }
                }
                4 => {
                    let u = self.rand_ty(1);
                    format!("({} {})", self.bi("isInt"), self.fail_whnf(&u, d1))
                }
                _ => {
                    let rt = self.rand_rec_ty(2);
                    format!("({} ? a)", self.fail_whnf(&rt, d1))
                }
            },
            Str => match self.below(6) {
                0 => format!("({} + {})", self.fail_whnf(&Str, d1), self.expr(&Str, g)),
                1 => format!("({} + {})", self.expr(&Str, g), self.fail_whnf(&Str, d1)),
                2 => format!("\"a${{{}}}b\"", self.fail_whnf(&Str, d1)),
                3 => {
                    let u = self.rand_ty(2);
                    format!("({} {})", self.bi("toJSON"), self.fail_deep(&u, d1))
                }
                4 => {
                    let u = self.rand_ty(1);
                    format!("({} {})", self.bi("typeOf"), self.fail_whnf(&u, d1))
                }
                _ => {
                    format!("({} {} [ {} ])", self.bi("concatStringsSep"), self.expr(&Str, g), self.fail_whnf(&Str, d1))
                }
            },
            List(e, _, _) => {
                let lt = list_ty((**e).clone(), 0, INF);
                match self.below(5) {
                    0 => format!("({} ++ {})", self.fail_whnf(&lt, d1), self.expr(&lt, g)),
                    1 => format!("({} ++ {})", self.expr(&lt, g), self.fail_whnf(&lt, d1)),
                    2 => {
                        let p = self.var_name();
                        format!("({} ({}: {}) {})", self.bi("map"), p, p, self.fail_whnf(&lt, d1))
                    }
                    3 => format!("({} {})", self.bi("tail"), self.fail_whnf(&lt, d1)),
                    _ => {
                        let rt = self.rand_rec_ty(2);
                        format!("({} {})", self.bi("attrNames"), self.fail_whnf(&rt, d1))
                    }
                }
            }
            Rec(_) => match self.below(3) {
                0 => format!("({} // {})", self.fail_whnf(t, d1), self.expr(t, g)),
                1 => format!("({} // {})", self.expr(&rec_ty(vec![]), g), self.fail_whnf(t, d1)),
                _ => format!("({} {} [ ])", self.bi("removeAttrs"), self.fail_whnf(t, d1)),
            },
            _ => self.fail_base(d),
        }
    }

    /// Expressions that fail at WHNF regardless of context ("bottom" of any type).
    fn fail_base(&mut self, d: u32) -> String {
        let g = d.saturating_sub(1).min(2);
        match self.rng.weighted(&[4, 4, 1, 3, 4, 3, 3, 3, 4, 4, 3, 3, 4, 6, 6, 3]) {
            0 => match self.below(5) {
                0 => format!("({} + {})", self.expr(&Int(100), g), self.expr(&Str, g)),
                1 => format!("({} + {})", self.expr(&Str, g), self.expr(&Int(100), g)),
                2 => format!("({} + 1)", self.expr(&Bool, g)),
                3 => format!("({} + 1)", self.expr(&list_ty(Int(10), 0, 3), g)),
                _ => "(null + 1)".into(),
            },
            1 => format!("(throw {})", self.expr(&Str, g)),
            2 => format!("(abort {})", self.expr(&Str, g)),
            3 => {
                let c = match self.below(3) {
                    0 => "false".to_string(),
                    1 => {
                        let x = self.expr(&Int(1000), g);
                        format!("({} < {})", x, x)
                    }
                    _ => format!("({} {})", self.bi("isString"), self.expr(&Int(10), g)),
                };
                let t = self.rand_ty(1);
                format!("(assert {}; {})", c, self.expr(&t, g))
            }
            4 => {
                // missing attribute
                match self.below(4) {
                    0 => {
                        let rt = self.rand_rec_ty(2);
                        let names: Vec<String> = match &rt {
                            Rec(fs) => fs.iter().map(|f| f.0.clone()).collect(),
                            _ => vec![],
                        };
                        let n = self.attr_names(1, &names, false).pop().unwrap_or_else(|| "zz".into());
                        let r = self.expr(&rt, g);
                        format!("({}.{})", r, self.sel_key(&n))
                    }
                    1 => format!("(null.{})", self.rng.pick(&["a", "x"])),
                    2 => format!("({}.a)", self.expr(&list_ty(Int(10), 0, 3), g)),
                    _ => format!("({} \"zz\" {})", self.bi("getAttr"), self.expr(&rec_ty(vec![]), g)),
                }
            }
            5 => {
                // calling a non-function
                let t = self.rng.pick(&[Int(100), Str, Bool, Null]).clone();
                let f = self.expr(&t, g);
                let u = self.rand_ty(1);
                format!("({} {})", f, self.expr(&u, g))
            }
            6 => match self.below(4) {
                0 => format!("({} [ ])", self.bi("head")),
                1 => format!("({} [ ])", self.bi("tail")),
                _ => {
                    let u = self.rand_ty(1);
                    let l = self.expr(&list_ty(u, 0, INF), g);
                    format!("({} ({} (x: false) {}))", self.bi("head"), self.bi("filter"), l)
                }
            },
            7 => {
                let m = self.below(3);
                let u = self.rand_ty(1);
                let l = self.expr(&list_ty(u, 0, m), g);
                if self.ch(1, 4) {
                    format!("({} {} (-1))", self.bi("elemAt"), l)
                } else {
                    format!("({} {} {})", self.bi("elemAt"), l, m + self.below(3))
                }
            }
            8 => match self.below(4) {
                0 => {
                    let v = self.fresh_name();
                    let x = self.expr(&Int(1000), g);
                    let y = self.expr(&Int(1000), g);
                    format!("(let {v} = {x}; in {y} / ({v} - {v}))")
                }
                1 if self.ch(1, 3) => format!("((-9223372036854775807 - 1 + {}) / (-1))", self.expr(&Int(0), g)),
                1 => format!("({} {} 0)", self.bi("div"), self.expr(&Int(1000), g)),
                2 => format!("({} / 0)", self.expr(&Float(1000), g)),
                _ => format!("({} / 0.0)", self.expr(&Int(1000), g)),
            },
            9 => {
                let t = match self.below(6) {
                    0 => Int(100),
                    1 => Float(100),
                    2 => Bool,
                    3 => Null,
                    4 => list_ty(Str, 0, 3),
                    _ => rec_ty(vec![("a".into(), Int(3))]),
                };
                let x = self.expr(&t, g);
                format!("\"a${{{}}}b\"", x)
            }
            10 => {
                // missing formal argument
                let v = self.expr(&Int(10), g);
                if self.ch(1, 2) {
                    format!("(({{ a, b }}: a) {{ a = {}; }})", v)
                } else {
                    format!("(({{ x, y ? 1, z }}: x + y) {{ x = {}; y = 2; }})", v)
                }
            }
            11 => {
                // unexpected argument
                let v = self.expr(&Int(10), g);
                let w = self.expr(&Str, g);
                if self.ch(1, 2) {
                    format!("(({{ a }}: a) {{ a = {}; b = {}; }})", v, w)
                } else {
                    format!("(({{ a ? 1 }}: a) {{ c = {}; }})", w)
                }
            }
            12 => {
                let a = self.fresh_name();
                let b = self.fresh_name();
                match self.below(5) {
                    0 => format!("(let {a} = {a}; in {a})"),
                    1 => format!("(rec {{ {a} = {b}; {b} = {a}; }}).{a}"),
                    2 => format!("(let {a} = {b} + 1; {b} = {a} * 2; in {a})"),
                    3 => format!("(let {a} = [ ({} {a}) ]; in {} {a})", self.bi("head"), self.bi("head")),
                    _ => format!("(let {a} = {{ x = {a}.x; }}; in {a}.x)"),
                }
            }
            13 => {
                // type errors
                match self.below(12) {
                    0 => format!("(if {} then 1 else 2)", self.expr(&Int(10), g)),
                    1 => format!("(! {})", self.expr(&Int(10), g)),
                    2 => format!("(true && {})", self.expr(&Int(10), g)),
                    3 => format!("(false || {})", self.expr(&Str, g)),
                    4 => format!("({} < {})", self.expr(&Int(10), g), self.expr(&Str, g)),
                    5 => "({ } < { })".into(),
                    6 => format!("(- {})", self.expr(&Str, g)),
                    7 => format!("({} * 2)", self.expr(&Str, g)),
                    8 => format!("({} ++ [ ])", self.expr(&rec_ty(vec![]), g)),
                    9 => format!("({} // {{ }})", self.expr(&list_ty(Int(5), 0, 2), g)),
                    10 => {
                        let v = self.fresh_name();
                        format!("(with {}; {})", self.expr(&Int(10), g), v)
                    }
                    _ => format!("({} -> true)", self.expr(&Null, g)),
                }
            }
            14 => {
                // misused builtins
                match self.below(20) {
                    0 => format!("({} {})", self.bi("length"), self.expr(&Int(10), g)),
                    1 => format!("({} [ ])", self.bi("attrNames")),
                    2 => format!("({} {{ }})", self.bi("toString")),
                    3 => format!("({} (x: x))", self.bi("toJSON")),
                    4 => format!("({} (-1) 1 {})", self.bi("substring"), self.expr(&Str, g)),
                    5 => format!(
                        "({} {})",
                        self.bi("fromJSON"),
                        q(self.rng.pick::<&str>(&["{", "[1,]", "tru", "", "\\\"a"]))
                    ),
                    6 => format!("({} (a: b: a < b) [ 1 \"a\" ])", self.bi("sort")),
                    7 => format!("({} (i: i) (-1))", self.bi("genList")),
                    8 => format!("({} [ {{ name = 1; value = 2; }} ])", self.bi("listToAttrs")),
                    9 => format!("({} \"(\" \"a\")", self.bi("match")),
                    10 => format!("({} (1 + \"a\")).success", self.bi("tryEval")),
                    11 => format!("({} (abort \"x\")).success", self.bi("tryEval")),
                    12 => format!("({} (let x = x; in x)).value", self.bi("tryEval")),
                    13 => format!("{{ ${{\"a\"}} = 1; a = {}; }}", self.expr(&Int(10), g)),
                    14 => format!("({} \",\" [ {} ])", self.bi("concatStringsSep"), self.expr(&Int(10), g)),
                    15 => format!("({} [ \"a\" ] [ ] {})", self.bi("replaceStrings"), self.expr(&Str, g)),
                    16 => format!("({} (x: 1) [ 1 ])", self.bi("filter")),
                    17 => format!("({} {})", self.bi("stringLength"), self.expr(&Int(10), g)),
                    18 => format!("({} \"a\" 1)", self.bi("add")),
                    _ => format!("({} (a: b: a + b) 0 [ \"x\" ])", self.bi("foldl'")),
                }
            }
            _ => {
                // rejected before evaluation
                match self.below(8) {
                    0 => "undefined_var_zz".into(),
                    1 => format!("{{ a = 1; a = {}; }}", self.expr(&Int(10), g)),
                    2 => "(let a = 1; a = 2; in a)".into(),
                    3 => "(({ a, a }: a) { a = 1; })".into(),
                    // literals out of range (Nix: "invalid integer", "invalid float")
                    4 => format!("({} + 9223372036854775808)", self.expr(&Int(10), g)),
                    5 => self.rng.pick::<&str>(&["[ 1.0e400 ]", "(1.0e-320 * 2)", "99999999999999999999"]).to_string(),
                    // a multi-byte character in an unquoted name
                    6 => format!("{{ é = {}; }}", self.expr(&Int(10), g)),
                    _ => format!("({}.日本)", self.expr(&rec_ty(vec![]), g)),
                }
            }
        }
    }
}
