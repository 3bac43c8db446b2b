//! The segment-definition language (SPEC §5): a file of `name = expression`
//! lines over the subscriber features, parsed once at start (a bad line is
//! refused with its file, line and column) and evaluated per subscriber and
//! snapshot without any string lookup.
//!
//! ```text
//! line       := [ name "=" or ] [ "#" comment ]     blank and comment lines ignored
//! name       := [A-Za-z0-9_:+.-]+                   unique within the file
//! or         := and { "or" and }
//! and        := not { "and" not }
//! not        := "not" not | comparison
//! comparison := operand op operand | "(" or ")"
//! operand    := feature | number | "(" operand ")"
//! op         := "<" | "<=" | ">" | ">=" | "==" | "!="
//! number     := [ "-" ] digits [ "." digits ]       digits: 0-9, "_" only between digits
//! ```
//!
//! Semantics. Numbers are exact rationals taken from the decimal text (`0.4` is
//! 4/10, never a float), features are supplied as exact rationals, and
//! comparison is exact (cross multiplication in 256 bits). A feature may be
//! absent (`age` of an unknown birth year): **every comparison that involves an
//! absent feature is false**, and `not` negates that false, so with age unknown
//! `age >= 18` and `age < 18` are both false while `not age >= 18` is true.
//! `and` and `or` short-circuit. Nesting is limited to [`MAX_DEPTH`] levels.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

/// The feature names of SPEC §5, in the column order of `features.csv`.
pub const FEATURES: [&str; 11] = [
    "events",
    "voice_seconds",
    "sms_count",
    "data_bytes",
    "spend_cents",
    "contacts",
    "night_share",
    "weekend_share",
    "roaming_share",
    "active_days",
    "age",
];

/// The shipped definitions (SPEC §5 numeric segments); `--segments FILE` replaces them.
pub const DEFAULT: &str = include_str!("default.segments");

/// How deep `(` and `not` may nest on one line.
pub const MAX_DEPTH: usize = 64;

/// A feature, resolved from its name at parse time. `feature as usize` indexes [`FEATURES`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Feature {
    Events,
    VoiceSeconds,
    SmsCount,
    DataBytes,
    SpendCents,
    Contacts,
    NightShare,
    WeekendShare,
    RoamingShare,
    ActiveDays,
    Age,
}

impl Feature {
    /// Every feature, in the order of [`FEATURES`].
    pub const ALL: [Feature; 11] = [
        Feature::Events,
        Feature::VoiceSeconds,
        Feature::SmsCount,
        Feature::DataBytes,
        Feature::SpendCents,
        Feature::Contacts,
        Feature::NightShare,
        Feature::WeekendShare,
        Feature::RoamingShare,
        Feature::ActiveDays,
        Feature::Age,
    ];

    pub fn name(self) -> &'static str {
        FEATURES[self as usize]
    }

    pub fn from_name(name: &str) -> Option<Feature> {
        Feature::ALL.into_iter().find(|f| f.name() == name)
    }
}

/// An exact rational `num / den`. Unchecked assumption: `den > 0` (the
/// constructors assert it). Equality and order are by value: 2/5 == 4/10.
#[derive(Clone, Copy, Debug)]
pub struct Value {
    pub num: i128,
    pub den: i128,
}

impl Value {
    pub const fn int(n: i128) -> Value {
        Value { num: n, den: 1 }
    }

    /// `num / den`; panics unless `den > 0`.
    pub const fn ratio(num: i128, den: i128) -> Value {
        assert!(den > 0, "Value denominator must be positive");
        Value { num, den }
    }
}

impl Ord for Value {
    fn cmp(&self, other: &Value) -> Ordering {
        debug_assert!(self.den > 0 && other.den > 0);
        cmp_products(self.num, other.den, other.num, self.den)
    }
}

impl PartialOrd for Value {
    fn partial_cmp(&self, other: &Value) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Value {}

/// Compares `a * b` with `c * d` exactly, whatever the magnitudes.
fn cmp_products(a: i128, b: i128, c: i128, d: i128) -> Ordering {
    let sign = |x: i128, y: i128| x.signum() * y.signum();
    let (left, right) = (sign(a, b), sign(c, d));
    if left != right || left == 0 {
        return left.cmp(&right);
    }
    let magnitudes = wide_mul(a.unsigned_abs(), b.unsigned_abs())
        .cmp(&wide_mul(c.unsigned_abs(), d.unsigned_abs()));
    if left > 0 {
        magnitudes
    } else {
        magnitudes.reverse()
    }
}

/// The full 256-bit product as (high, low) halves.
fn wide_mul(x: u128, y: u128) -> (u128, u128) {
    const LOW: u128 = u64::MAX as u128;
    let (x1, x0, y1, y0) = (x >> 64, x & LOW, y >> 64, y & LOW);
    let (p00, p01, p10, p11) = (x0 * y0, x0 * y1, x1 * y0, x1 * y1);
    let mid = (p00 >> 64) + (p01 & LOW) + (p10 & LOW);
    (
        p11 + (p01 >> 64) + (p10 >> 64) + (mid >> 64),
        (p00 & LOW) | (mid << 64),
    )
}

/// A refused definitions file. Displays as `FILE:LINE:COLUMN: message`;
/// line and column are 1-based, the column counted in characters.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct ParseError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Segment definitions, in file order.
#[derive(Clone, Debug, PartialEq)]
pub struct Definitions {
    segments: Vec<(String, Expr)>,
}

impl Definitions {
    /// Parses a definitions file; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Definitions, ParseError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut segments = Vec::new();
        let mut seen = BTreeMap::new();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let content = raw.find('#').map_or(raw, |i| &raw[..i]).trim_end();
            if content.trim_start().is_empty() {
                continue;
            }
            let error = |Fail(at, message)| ParseError {
                file: file.to_owned(),
                line,
                column: at + 1,
                message,
            };
            let chars: Vec<char> = content.chars().collect();
            let (name, name_at, expr) = parse_line(&chars).map_err(error)?;
            if let Some(first) = seen.insert(name.clone(), line) {
                let message = format!("segment \"{name}\" is already defined on line {first}");
                return Err(error(Fail(name_at, message)));
            }
            segments.push((name, expr));
        }
        Ok(Definitions { segments })
    }

    /// The shipped [`DEFAULT`] definitions.
    pub fn defaults() -> Definitions {
        Definitions::parse("default.segments", DEFAULT)
            .expect("the shipped default.segments parses (tested)")
    }

    /// The segment names, in file order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().map(|(name, _)| name.as_str())
    }

    /// The names of the segments that hold, in file order. `feature` gives a
    /// feature's value, `None` when absent (see the module doc).
    pub fn matching<'a>(&'a self, feature: &dyn Fn(Feature) -> Option<Value>) -> Vec<&'a str> {
        let holding = self.segments.iter().filter(|(_, expr)| expr.holds(feature));
        holding.map(|(name, _)| name.as_str()).collect()
    }
}

/// A comparison operator; `OPS[op as usize]` is its text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

const OPS: [(&str, Op); 6] = [
    ("<", Op::Lt),
    ("<=", Op::Le),
    (">", Op::Gt),
    (">=", Op::Ge),
    ("==", Op::Eq),
    ("!=", Op::Ne),
];

impl Op {
    fn test(self, ordering: Ordering) -> bool {
        match self {
            Op::Lt => ordering.is_lt(),
            Op::Le => ordering.is_le(),
            Op::Gt => ordering.is_gt(),
            Op::Ge => ordering.is_ge(),
            Op::Eq => ordering.is_eq(),
            Op::Ne => ordering.is_ne(),
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(OPS[*self as usize].0)
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Operand {
    Feature(Feature),
    Number(Value),
}

impl Operand {
    fn value(self, feature: &dyn Fn(Feature) -> Option<Value>) -> Option<Value> {
        match self {
            Operand::Feature(f) => feature(f),
            Operand::Number(v) => Some(v),
        }
    }
}

/// A parsed expression; `a and b and c` is one `And` of three.
#[derive(Clone, Debug, PartialEq)]
enum Expr {
    Cmp(Operand, Op, Operand),
    Not(Box<Expr>),
    And(Vec<Expr>),
    Or(Vec<Expr>),
}

impl Expr {
    fn holds(&self, feature: &dyn Fn(Feature) -> Option<Value>) -> bool {
        match self {
            Expr::Cmp(l, op, r) => match (l.value(feature), r.value(feature)) {
                (Some(a), Some(b)) => op.test(a.cmp(&b)),
                _ => false,
            },
            Expr::Not(e) => !e.holds(feature),
            Expr::And(es) => es.iter().all(|e| e.holds(feature)),
            Expr::Or(es) => es.iter().any(|e| e.holds(feature)),
        }
    }
}

/// An error message at a character index of the line.
struct Fail(usize, String);

fn fail<T>(at: usize, message: impl Into<String>) -> Result<T, Fail> {
    Err(Fail(at, message.into()))
}

/// The end of the run of characters from `from` that satisfy `keep`.
fn run(chars: &[char], from: usize, keep: impl Fn(char) -> bool) -> usize {
    from + chars[from..].iter().take_while(|c| keep(**c)).count()
}

/// `"text"` as found in an error message; nothing is `end of line`.
fn quoted(text: &[char]) -> String {
    match text.is_empty() {
        true => "end of line".into(),
        false => format!("\"{}\"", text.iter().collect::<String>()),
    }
}

const OPERATOR: &str = "expected a comparison operator (<, <=, >, >=, ==, !=)";
const EMPTY: &str = "empty expression after \"=\"; expected a condition such as \"events >= 20\"";
const NAME: &str = "expected a segment name (letters, digits, _ : + . -)";
const EQUALS: &str = "unexpected \"=\"; use \"==\" to compare";
const BANG: &str = "unexpected \"!\"; use \"not\" to negate or \"!=\" to compare";
const AND_OR: &str = "expected \"and\", \"or\"";
const OPERAND: &str = "expected a feature, number or \"(\"";
const SIDES: &str = "a comparison takes a feature or number on each side";
const DECIMAL: &str = "expected a decimal such as 10, 0.4, -1 or 10_000";

fn parse_line(chars: &[char]) -> Result<(String, usize, Expr), Fail> {
    let name_at = run(chars, 0, char::is_whitespace);
    let name_end = run(chars, name_at, |c| {
        c.is_ascii_alphanumeric() || "_:+.-".contains(c)
    });
    let name: String = chars[name_at..name_end].iter().collect();
    let pos = run(chars, name_end, char::is_whitespace);
    match (name.is_empty(), chars.get(pos)) {
        (true, Some('=')) => fail(pos, "missing segment name before \"=\""),
        (true, Some(c)) => fail(pos, format!("unexpected \"{c}\"; {NAME}")),
        (false, Some('=')) => Parser::new(chars, pos + 1)?
            .expression()
            .map(|e| (name, name_at, e)),
        _ => {
            let found = quoted(&chars[pos..run(chars, pos, |c| !c.is_whitespace())]);
            fail(
                pos,
                format!("expected \"=\" after segment name \"{name}\", found {found}"),
            )
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Ident(String),
    Number(Value),
    Op(Op),
    LParen,
    RParen,
    And,
    Or,
    Not,
    End,
}

/// What `parse_or` and below yield: a condition, or an operand still waiting
/// for its comparison. Invariant: an `Operand` is only returned when the
/// current token is `)`, i.e. inside parentheses such as `(events) >= 20`.
enum Node {
    Bool(Expr),
    Operand(Operand, String),
}

/// Recursive descent over one line with one token of lookahead: `tok` spans
/// the characters `at..end`, and lexing resumes at `pos`.
struct Parser<'a> {
    chars: &'a [char],
    pos: usize,
    tok: Token,
    at: usize,
    end: usize,
    depth: usize,
}

impl<'a> Parser<'a> {
    fn new(chars: &'a [char], pos: usize) -> Result<Parser<'a>, Fail> {
        let mut parser = Parser {
            chars,
            pos,
            tok: Token::End,
            at: 0,
            end: 0,
            depth: 0,
        };
        parser.advance()?;
        Ok(parser)
    }

    fn expression(&mut self) -> Result<Expr, Fail> {
        if self.tok == Token::End {
            return fail(self.at, EMPTY);
        }
        let node = self.parse_or()?;
        let expr = self.boolean(node)?;
        let found = self.found();
        match self.tok {
            Token::End => Ok(expr),
            Token::RParen => fail(self.at, "unexpected \")\" without a matching \"(\""),
            _ => fail(
                self.at,
                format!("unexpected {found}; {AND_OR} or end of line"),
            ),
        }
    }

    fn parse_or(&mut self) -> Result<Node, Fail> {
        self.chain(Token::Or, Parser::parse_and, Expr::Or)
    }

    fn parse_and(&mut self) -> Result<Node, Fail> {
        self.chain(Token::And, Parser::parse_not, Expr::And)
    }

    /// `next { keyword next }`, gathered into one n-ary node.
    fn chain(
        &mut self,
        keyword: Token,
        next: fn(&mut Self) -> Result<Node, Fail>,
        build: fn(Vec<Expr>) -> Expr,
    ) -> Result<Node, Fail> {
        let first = next(self)?;
        if self.tok != keyword {
            return Ok(first);
        }
        let mut parts = vec![self.boolean(first)?];
        while self.tok == keyword {
            self.advance()?;
            let node = next(self)?;
            parts.push(self.boolean(node)?);
        }
        Ok(Node::Bool(build(parts)))
    }

    fn parse_not(&mut self) -> Result<Node, Fail> {
        if self.tok != Token::Not {
            return self.parse_cmp();
        }
        self.nest()?;
        self.advance()?;
        let node = self.parse_not()?;
        self.depth -= 1;
        Ok(Node::Bool(Expr::Not(Box::new(self.boolean(node)?))))
    }

    fn parse_cmp(&mut self) -> Result<Node, Fail> {
        let left = self.parse_atom()?;
        let (Token::Op(op), Node::Operand(l, _)) = (&self.tok, &left) else {
            return match (&self.tok, left) {
                (Token::Op(op), _) => fail(
                    self.at,
                    format!("unexpected \"{op}\" after a condition; {SIDES}"),
                ),
                (Token::RParen, left) => Ok(left),
                (_, left) => self.boolean(left).map(Node::Bool),
            };
        };
        let (op, l) = (*op, *l);
        self.advance()?;
        let right_at = self.at;
        match self.parse_atom()? {
            Node::Operand(r, _) => Ok(Node::Bool(Expr::Cmp(l, op, r))),
            Node::Bool(_) => fail(
                right_at,
                format!("{SIDES}; found a condition after \"{op}\""),
            ),
        }
    }

    fn parse_atom(&mut self) -> Result<Node, Fail> {
        let (at, text) = (self.at, self.chars[self.at..self.end].iter().collect());
        let node = match &self.tok {
            Token::Ident(name) => match Feature::from_name(name) {
                Some(feature) => Node::Operand(Operand::Feature(feature), text),
                None => {
                    let all = FEATURES.join(", ");
                    return fail(
                        at,
                        format!("unknown feature \"{name}\"; expected one of {all}"),
                    );
                }
            },
            Token::Number(value) => Node::Operand(Operand::Number(*value), text),
            Token::LParen => {
                self.nest()?;
                self.advance()?;
                let inner = self.parse_or()?;
                let (close, found) = (format!("to close \"(\" at column {}", at + 1), self.found());
                match self.tok {
                    Token::RParen => self.depth -= 1,
                    Token::End => return fail(self.at, format!("missing \")\" {close}")),
                    _ => return fail(self.at, format!("{AND_OR} or \")\" {close}, found {found}")),
                }
                inner
            }
            _ => return fail(at, format!("{OPERAND}, found {}", self.found())),
        };
        self.advance()?;
        Ok(node)
    }

    /// The condition of `node`; an operand there lacks its comparison operator.
    fn boolean(&self, node: Node) -> Result<Expr, Fail> {
        match node {
            Node::Bool(expr) => Ok(expr),
            Node::Operand(_, text) => fail(
                self.at,
                format!("{OPERATOR} after \"{text}\", found {}", self.found()),
            ),
        }
    }

    fn nest(&mut self) -> Result<(), Fail> {
        self.depth += 1;
        match self.depth > MAX_DEPTH {
            true => fail(
                self.at,
                format!("expression nested more than {MAX_DEPTH} levels deep"),
            ),
            false => Ok(()),
        }
    }

    /// The current token as the source shows it, or `end of line`.
    fn found(&self) -> String {
        quoted(&self.chars[self.at..self.end])
    }

    /// Lexes the next token into `tok`.
    fn advance(&mut self) -> Result<(), Fail> {
        let chars = self.chars;
        let char_at = |i: usize| chars.get(i).copied().unwrap_or('\0');
        let at = run(chars, self.pos, char::is_whitespace);
        let word_end = |from| {
            run(chars, from, |c| {
                c.is_ascii_alphanumeric() || "_:.-".contains(c)
            })
        };
        let (c, next) = (char_at(at), char_at(at + 1));
        let (tok, end) = match c {
            _ if at == chars.len() => (Token::End, at),
            '(' => (Token::LParen, at + 1),
            ')' => (Token::RParen, at + 1),
            '<' | '>' | '=' | '!' => {
                let len = if next == '=' { 2 } else { 1 };
                let text: String = chars[at..at + len].iter().collect();
                match OPS.iter().find(|(t, _)| *t == text) {
                    Some((_, op)) => (Token::Op(*op), at + len),
                    None if c == '=' => return fail(at, EQUALS),
                    None => return fail(at, BANG),
                }
            }
            _ if c.is_ascii_digit()
                || ("-.".contains(c) && (next.is_ascii_digit() || next == '.')) =>
            {
                let end = word_end(at + 1);
                let text: String = chars[at..end].iter().collect();
                let value = parse_number(&text).or_else(|message| fail(at, message))?;
                (Token::Number(value), end)
            }
            _ if c.is_ascii_alphabetic() || c == '_' => {
                let end = word_end(at);
                let word: String = chars[at..end].iter().collect();
                let tok = match word.as_str() {
                    "and" => Token::And,
                    "or" => Token::Or,
                    "not" => Token::Not,
                    _ => Token::Ident(word),
                };
                (tok, end)
            }
            '&' => return fail(at, "unexpected \"&\"; use \"and\""),
            '|' => return fail(at, "unexpected \"|\"; use \"or\""),
            _ => return fail(at, format!("unexpected character \"{c}\"")),
        };
        (self.tok, self.at, self.end, self.pos) = (tok, at, end, end);
        Ok(())
    }
}

/// The exact value of a decimal like `10`, `-1`, `0.4` or `10_737_418_240`.
fn parse_number(text: &str) -> Result<Value, String> {
    let body = text.strip_prefix('-').unwrap_or(text);
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    let digits = |s: &str| {
        let (first, last) = (s.bytes().next(), s.bytes().last());
        first.is_some_and(|c| c.is_ascii_digit())
            && last.is_some_and(|c| c.is_ascii_digit())
            && s.bytes().all(|c| c.is_ascii_digit() || c == b'_')
            && !s.contains("__")
    };
    if !digits(int) || (body.contains('.') && !digits(frac)) {
        return Err(format!("bad number \"{text}\"; {DECIMAL}"));
    }
    let range = || format!("number \"{text}\" is out of range");
    let (mut num, mut den) = (0i128, 1i128);
    for digit in int.bytes().chain(frac.bytes()).filter(|c| *c != b'_') {
        let digit = i128::from(digit - b'0');
        num = num
            .checked_mul(10)
            .and_then(|n| n.checked_add(digit))
            .ok_or_else(range)?;
    }
    for _ in frac.bytes().filter(|c| *c != b'_') {
        den = den.checked_mul(10).ok_or_else(range)?;
    }
    let num = if body.len() < text.len() { -num } else { num };
    Ok(Value { num, den })
}

#[cfg(test)]
mod tests;
