//! Scene files: a network description in RON plus run settings, loaded with every error
//! located at a file, line and column.

use std::fmt;
use std::path::{Path, PathBuf};

use myelin_engine::{
    InputSpec, ModelRegistry, NetworkSpec, PathSeg, PopulationSpec, ProjectionSpec, RecorderSpec,
    SpecPath,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A scene: one simulation run, as written in a `.ron` file.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scene {
    /// Optional name of the scene (recorded in outputs; default: the file stem).
    #[serde(default)]
    pub name: Option<String>,
    /// Optional free-text description.
    #[serde(default)]
    pub description: Option<String>,
    /// Time step (ms).
    pub dt: f64,
    /// Simulated duration (ms).
    pub duration: f64,
    /// Seed of every random draw.
    pub seed: u64,
    /// Populations, numbered in this order.
    pub populations: Vec<PopulationSpec>,
    /// Projections between populations.
    #[serde(default)]
    pub projections: Vec<ProjectionSpec>,
    /// Stimulation devices.
    #[serde(default)]
    pub inputs: Vec<InputSpec>,
    /// Spike and state recorders.
    #[serde(default)]
    pub recorders: Vec<RecorderSpec>,
}

impl Scene {
    /// The network the scene describes (everything but the run settings).
    pub fn network(&self) -> NetworkSpec {
        NetworkSpec {
            dt: self.dt,
            seed: self.seed,
            populations: self.populations.clone(),
            projections: self.projections.clone(),
            inputs: self.inputs.clone(),
            recorders: self.recorders.clone(),
        }
    }
}

/// A scene loaded from a file and validated, with its source text and hash.
#[derive(Clone, Debug)]
pub struct LoadedScene {
    /// The parsed scene.
    pub scene: Scene,
    /// The file it was read from.
    pub path: PathBuf,
    /// The file's text.
    pub source: String,
    /// Hex SHA-256 of the source text.
    pub hash: String,
}

impl LoadedScene {
    /// The scene's name: its `name` field, else the file stem.
    pub fn name(&self) -> String {
        self.scene.name.clone().unwrap_or_else(|| {
            self.path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
    }
}

/// One located problem in a scene.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Located {
    /// 1-based line of the offending value.
    pub line: usize,
    /// 1-based column (in characters) of the offending value.
    pub col: usize,
    /// Path of the offending value, e.g. `projections[0].target`.
    pub path: String,
    /// What is wrong, naming the value.
    pub message: String,
}

impl fmt::Display for Located {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: ", self.line, self.col)?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

/// Why a scene could not be loaded. Every message starts with the file (and, where there
/// is one, `LINE:COL`).
#[derive(Debug, thiserror::Error)]
pub enum SceneError {
    /// The file could not be read.
    #[error("{}: cannot read the scene file: {source}", file.display())]
    Read {
        /// The scene file.
        file: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The text is not valid RON, or a value has the wrong type, or a field is missing or
    /// unknown.
    #[error("{}:{line}:{col}: {message}", file.display())]
    Syntax {
        /// The scene file.
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column (in characters).
        col: usize,
        /// What is wrong (with the path of the value where it is known).
        message: String,
    },
    /// The scene parses but describes an invalid network (every problem found).
    #[error("{}", display_invalid(file, errors))]
    Invalid {
        /// The scene file.
        file: PathBuf,
        /// The problems, in the order validation found them.
        errors: Vec<Located>,
    },
}

fn display_invalid(file: &Path, errors: &[Located]) -> String {
    errors
        .iter()
        .map(|e| format!("{}:{e}", file.display()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Hex SHA-256 of a text.
pub fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Parses a scene from RON text (`path` names the file in errors). Option fields may be
/// written without `Some(...)`. Syntax and type errors, missing and unknown fields become
/// [`SceneError::Syntax`] at the position RON reports, prefixed with the path of the value
/// there where it can be found.
pub fn parse_scene(path: &Path, source: &str) -> Result<Scene, SceneError> {
    let opts =
        ron::Options::default().with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME);
    opts.from_str::<Scene>(source).map_err(|e| {
        let (line, col, message) = describe(source, &e);
        SceneError::Syntax {
            file: path.to_path_buf(),
            line,
            col,
            message,
        }
    })
}

/// Reads, parses and validates a scene file against the registry. Every validation error
/// is located at the offending value's line and column.
pub fn load_scene(path: &Path, registry: &ModelRegistry) -> Result<LoadedScene, SceneError> {
    let source = std::fs::read_to_string(path).map_err(|source| SceneError::Read {
        file: path.to_path_buf(),
        source,
    })?;
    let scene = parse_scene(path, &source)?;
    let mut errors = Vec::new();
    let mut push = |p: SpecPath, message: String| {
        let (line, col) = locate(&source, &p).unwrap_or((1, 1));
        errors.push(Located {
            line,
            col,
            path: p.to_string(),
            message,
        });
    };
    let field = |f: &'static str| SpecPath(vec![PathSeg::Field(f)]);
    if !(scene.duration > 0.0 && scene.duration.is_finite()) {
        push(
            field("duration"),
            format!("duration = {} ms must be positive", scene.duration),
        );
    }
    if !(scene.dt > 0.0 && scene.dt.is_finite()) {
        push(
            field("dt"),
            format!("time step dt = {} ms must be positive", scene.dt),
        );
    } else {
        for e in myelin_engine::validate(&scene.network(), registry) {
            push(e.path, e.message);
        }
    }
    if !errors.is_empty() {
        return Err(SceneError::Invalid {
            file: path.to_path_buf(),
            errors,
        });
    }
    let hash = sha256_hex(&source);
    Ok(LoadedScene {
        scene,
        path: path.to_path_buf(),
        source,
        hash,
    })
}

// ---------------------------------------------------------------------------------------
// A small lexical scanner and tolerant parser of RON text, used only to locate values.

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Pos {
    line: usize,
    col: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Open(char),
    Close(char),
    Comma,
    Colon,
    Ident,
    Str,
    Atom,
    Other(char),
}

#[derive(Clone, Debug)]
struct Token {
    kind: Kind,
    /// Identifier name or decoded string contents; raw text for atoms.
    text: String,
    start: Pos,
    /// Position just after the token's last character.
    end: Pos,
    /// Char offsets of the start and of just after the end.
    span: (usize, usize),
}

struct Lexer {
    chars: Vec<char>,
    i: usize,
    pos: Pos,
}

fn is_ident_start(c: char) -> bool {
    c == '_' || c.is_alphabetic()
}

fn is_ident_continue(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

impl Lexer {
    fn new(src: &str) -> Self {
        Self {
            chars: src.chars().collect(),
            i: 0,
            pos: Pos { line: 1, col: 1 },
        }
    }

    fn peek(&self, k: usize) -> Option<char> {
        self.chars.get(self.i + k).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.chars.get(self.i).copied()?;
        self.i += 1;
        if c == '\n' {
            self.pos.line += 1;
            self.pos.col = 1;
        } else {
            self.pos.col += 1;
        }
        Some(c)
    }

    fn skip_trivia(&mut self) {
        loop {
            match (self.peek(0), self.peek(1)) {
                (Some(c), _) if c.is_whitespace() => {
                    self.bump();
                }
                (Some('/'), Some('/')) => {
                    while let Some(c) = self.peek(0) {
                        if c == '\n' {
                            break;
                        }
                        self.bump();
                    }
                }
                (Some('/'), Some('*')) => {
                    self.bump();
                    self.bump();
                    let mut depth = 1usize;
                    while depth > 0 {
                        match (self.peek(0), self.peek(1)) {
                            (None, _) => break,
                            (Some('*'), Some('/')) => {
                                self.bump();
                                self.bump();
                                depth -= 1;
                            }
                            (Some('/'), Some('*')) => {
                                self.bump();
                                self.bump();
                                depth += 1;
                            }
                            _ => {
                                self.bump();
                            }
                        }
                    }
                }
                _ => return,
            }
        }
    }

    /// A quoted string or char literal starting at the opening `quote`; returns its
    /// decoded contents.
    fn quoted(&mut self, quote: char) -> String {
        let mut out = String::new();
        self.bump();
        while let Some(c) = self.bump() {
            if c == quote {
                break;
            }
            if c != '\\' {
                out.push(c);
                continue;
            }
            match self.bump() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('r') => out.push('\r'),
                Some('0') => out.push('\0'),
                Some('u') if self.peek(0) == Some('{') => {
                    self.bump();
                    let mut hex = String::new();
                    while let Some(h) = self.peek(0) {
                        self.bump();
                        if h == '}' {
                            break;
                        }
                        hex.push(h);
                    }
                    if let Some(ch) = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                        out.push(ch);
                    }
                }
                Some('x') => {
                    let hex: String = [self.bump(), self.bump()].into_iter().flatten().collect();
                    if let Some(ch) = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                        out.push(ch);
                    }
                }
                Some(other) => out.push(other),
                None => break,
            }
        }
        out
    }

    /// A raw string starting at its first `#` or `"` (after the `r`).
    fn raw(&mut self) -> String {
        let mut hashes = 0usize;
        while self.peek(0) == Some('#') {
            self.bump();
            hashes += 1;
        }
        if self.peek(0) != Some('"') {
            return String::new();
        }
        self.bump();
        let mut out = String::new();
        while let Some(c) = self.bump() {
            if c == '"' && (0..hashes).all(|k| self.peek(k) == Some('#')) {
                for _ in 0..hashes {
                    self.bump();
                }
                break;
            }
            out.push(c);
        }
        out
    }

    fn next_token(&mut self) -> Option<Token> {
        self.skip_trivia();
        let start = self.pos;
        let first = self.i;
        let c = self.peek(0)?;
        let tok = |kind, text: String, lex: &Self| Token {
            kind,
            text,
            start,
            end: lex.pos,
            span: (first, lex.i),
        };
        let (kind, text) = match c {
            '(' | '[' | '{' => {
                self.bump();
                (Kind::Open(c), String::new())
            }
            ')' | ']' | '}' => {
                self.bump();
                (Kind::Close(c), String::new())
            }
            ',' => {
                self.bump();
                (Kind::Comma, String::new())
            }
            ':' => {
                self.bump();
                (Kind::Colon, String::new())
            }
            '"' | '\'' => (Kind::Str, self.quoted(c)),
            'r' if matches!(self.peek(1), Some('"'))
                || (self.peek(1) == Some('#') && matches!(self.peek(2), Some('"' | '#'))) =>
            {
                self.bump();
                (Kind::Str, self.raw())
            }
            'r' if self.peek(1) == Some('#') && self.peek(2).is_some_and(is_ident_start) => {
                self.bump();
                self.bump();
                (Kind::Ident, self.ident())
            }
            'b' if matches!(self.peek(1), Some('"' | '\'')) => {
                self.bump();
                let q = self.peek(0).unwrap_or('"');
                (Kind::Str, self.quoted(q))
            }
            'b' if self.peek(1) == Some('r') && matches!(self.peek(2), Some('"' | '#')) => {
                self.bump();
                self.bump();
                (Kind::Str, self.raw())
            }
            c if is_ident_start(c) => (Kind::Ident, self.ident()),
            c if c.is_ascii_digit()
                || (matches!(c, '-' | '+' | '.')
                    && self
                        .peek(1)
                        .is_some_and(|d| d.is_alphanumeric() || d == '.')) =>
            {
                let mut text = String::new();
                let mut prev = c;
                if let Some(first) = self.bump() {
                    text.push(first);
                }
                while let Some(d) = self.peek(0) {
                    let sign_in_exponent = matches!(d, '+' | '-')
                        && matches!(prev, 'e' | 'E')
                        && !text.contains(['x', 'b', 'o']);
                    if is_ident_continue(d) || d == '.' || sign_in_exponent {
                        self.bump();
                        text.push(d);
                        prev = d;
                    } else {
                        break;
                    }
                }
                (Kind::Atom, text)
            }
            other => {
                self.bump();
                (Kind::Other(other), other.to_string())
            }
        };
        Some(tok(kind, text, self))
    }

    fn ident(&mut self) -> String {
        let mut s = String::new();
        while let Some(c) = self.peek(0) {
            if !is_ident_continue(c) {
                break;
            }
            self.bump();
            s.push(c);
        }
        s
    }
}

fn tokenize(src: &str) -> Vec<Token> {
    let mut lex = Lexer::new(src);
    let mut out = Vec::new();
    while let Some(t) = lex.next_token() {
        out.push(t);
    }
    out
}

/// A value with its extent in the text.
#[derive(Debug)]
struct Value {
    start: Pos,
    end: Pos,
    /// Char offsets of the start and of just after the end.
    span: (usize, usize),
    node: Node,
}

#[derive(Debug)]
enum Node {
    /// A number, string, identifier or stray token.
    Atom(String),
    /// `Name(...)` or `(...)`: named fields and/or positional elements.
    Compound {
        name: Option<String>,
        fields: Vec<(String, Value)>,
        elems: Vec<Value>,
    },
    /// `[...]`.
    List(Vec<Value>),
    /// `{...}`.
    Map(Vec<(Value, Value)>),
}

/// Deeper nesting than this is skipped over rather than parsed (no stack overflow).
const MAX_DEPTH: usize = 200;

struct Parser<'t> {
    toks: &'t [Token],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self, k: usize) -> Option<&Token> {
        self.toks.get(self.i + k)
    }

    fn peek_kind(&self, k: usize) -> Option<Kind> {
        self.peek(k).map(|t| t.kind)
    }

    fn last_end(&self) -> (Pos, usize) {
        self.i
            .checked_sub(1)
            .and_then(|k| self.toks.get(k))
            .map_or((Pos { line: 1, col: 1 }, 0), |t| (t.end, t.span.1))
    }

    fn value_from(&self, first: &Token, node: Node) -> Value {
        let (end, end_off) = self.last_end();
        Value {
            start: first.start,
            end,
            span: (first.span.0, end_off),
            node,
        }
    }

    fn root(&mut self) -> Option<Value> {
        // Skip `#![enable(...)]` attributes.
        while self.peek_kind(0) == Some(Kind::Other('#')) {
            self.i += 1;
            if self.peek_kind(0) == Some(Kind::Other('!')) {
                self.i += 1;
            }
            if matches!(self.peek_kind(0), Some(Kind::Open(_))) {
                self.skip_balanced();
            }
        }
        self.value(0)
    }

    /// Skips an opening bracket and everything up to its matching close.
    fn skip_balanced(&mut self) {
        let mut depth = 0usize;
        while let Some(k) = self.peek_kind(0) {
            self.i += 1;
            match k {
                Kind::Open(_) => depth += 1,
                Kind::Close(_) => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return;
                    }
                }
                _ if depth == 0 => return,
                _ => {}
            }
        }
    }

    /// Parses one value; consumes at least one token unless at the end.
    fn value(&mut self, depth: usize) -> Option<Value> {
        let t = self.peek(0)?.clone();
        if depth > MAX_DEPTH {
            self.skip_balanced();
            return Some(self.value_from(&t, Node::Atom(String::new())));
        }
        self.i += 1;
        let node = match t.kind {
            Kind::Open('[') => Node::List(self.list(depth)),
            Kind::Open('{') => Node::Map(self.map(depth)),
            Kind::Open(_) => self.compound(None, depth),
            Kind::Ident if self.peek_kind(0) == Some(Kind::Open('(')) => {
                self.i += 1;
                self.compound(Some(t.text.clone()), depth)
            }
            _ => Node::Atom(t.text.clone()),
        };
        Some(self.value_from(&t, node))
    }

    fn list(&mut self, depth: usize) -> Vec<Value> {
        let mut out = Vec::new();
        loop {
            match self.peek_kind(0) {
                None => break,
                Some(Kind::Close(_)) => {
                    self.i += 1;
                    break;
                }
                Some(Kind::Comma) => self.i += 1,
                _ => out.extend(self.value(depth + 1)),
            }
        }
        out
    }

    fn map(&mut self, depth: usize) -> Vec<(Value, Value)> {
        let mut out = Vec::new();
        loop {
            match self.peek_kind(0) {
                None => break,
                Some(Kind::Close(_)) => {
                    self.i += 1;
                    break;
                }
                Some(Kind::Comma) => self.i += 1,
                _ => {
                    let Some(key) = self.value(depth + 1) else {
                        break;
                    };
                    if self.peek_kind(0) == Some(Kind::Colon) {
                        self.i += 1;
                        if let Some(v) = self.value(depth + 1) {
                            out.push((key, v));
                        }
                    }
                }
            }
        }
        out
    }

    fn compound(&mut self, name: Option<String>, depth: usize) -> Node {
        let mut fields = Vec::new();
        let mut elems = Vec::new();
        loop {
            match (self.peek_kind(0), self.peek_kind(1)) {
                (None, _) => break,
                (Some(Kind::Close(_)), _) => {
                    self.i += 1;
                    break;
                }
                (Some(Kind::Comma), _) => self.i += 1,
                (Some(Kind::Ident), Some(Kind::Colon)) => {
                    let fname = self.peek(0).map(|t| t.text.clone()).unwrap_or_default();
                    self.i += 2;
                    if let Some(v) = self.value(depth + 1) {
                        fields.push((fname, v));
                    }
                }
                _ => elems.extend(self.value(depth + 1)),
            }
        }
        Node::Compound {
            name,
            fields,
            elems,
        }
    }
}

/// A RON text's tokens and its tolerant parse.
struct Doc {
    toks: Vec<Token>,
    root: Option<Value>,
}

impl Doc {
    fn new(source: &str) -> Self {
        let toks = tokenize(source);
        let root = Parser { toks: &toks, i: 0 }.root();
        Self { toks, root }
    }

    /// `p` if a token holds it, else the start of the first token after it.
    fn snap(&self, p: Pos) -> Pos {
        self.toks
            .iter()
            .find(|t| p < t.end)
            .map_or(p, |t| t.start.max(p))
    }
}

fn parse_tree(source: &str) -> Option<Value> {
    Doc::new(source).root
}

impl Value {
    /// `Some(x)` unwrapped to `x`.
    fn unwrap_some(&self) -> &Value {
        match &self.node {
            Node::Compound {
                name: Some(n),
                fields,
                elems,
            } if n == "Some" && fields.is_empty() && elems.len() == 1 => elems[0].unwrap_some(),
            _ => self,
        }
    }

    fn child(&self, seg: &PathSeg) -> Option<&Value> {
        let v = self.unwrap_some();
        match (&v.node, seg) {
            (Node::Compound { fields, .. }, PathSeg::Field(f)) => {
                fields.iter().find(|(n, _)| n == f).map(|(_, x)| x)
            }
            (Node::Compound { fields, .. }, PathSeg::Key(k)) => {
                fields.iter().find(|(n, _)| n == k).map(|(_, x)| x)
            }
            (Node::Compound { elems, .. }, PathSeg::Index(i)) => elems.get(*i),
            (Node::List(items), PathSeg::Index(i)) => items.get(*i),
            (Node::Map(entries), PathSeg::Key(k)) => entries
                .iter()
                .find(|(key, _)| matches!(&key.node, Node::Atom(t) if t == k))
                .map(|(_, x)| x),
            (Node::Map(entries), PathSeg::Field(f)) => entries
                .iter()
                .find(|(key, _)| matches!(&key.node, Node::Atom(t) if t == f))
                .map(|(_, x)| x),
            _ => None,
        }
    }

    fn contains(&self, p: Pos) -> bool {
        self.start <= p && p < self.end
    }
}

/// The 1-based line and column of the value at `path` in RON `source`, following named
/// fields, list and tuple indices and map keys from the top-level struct. Where a field or
/// key is absent, the position of the deepest enclosing value found. `None` only when the
/// text holds no value at all.
pub fn locate(source: &str, path: &SpecPath) -> Option<(usize, usize)> {
    let root = parse_tree(source)?;
    let mut v = &root;
    for seg in &path.0 {
        match v.child(seg) {
            Some(c) => v = c,
            None => break,
        }
    }
    Some((v.start.line, v.start.col))
}

/// The path (as [`SpecPath`] displays it) of the deepest value containing the 1-based
/// position `line:col` of `source`; empty for the top-level value, `None` when no value
/// contains it.
pub fn path_at(source: &str, line: usize, col: usize) -> Option<String> {
    let root = parse_tree(source)?;
    deepest(&root, Pos { line, col }).map(|(_, path)| path)
}

/// The deepest value containing `p`, and its path.
fn deepest(root: &Value, p: Pos) -> Option<(&Value, String)> {
    if !root.contains(p) {
        return None;
    }
    let mut out = String::new();
    let mut v = root;
    'descend: loop {
        let inner = v.unwrap_some();
        match &inner.node {
            Node::Compound { fields, elems, .. } => {
                for (n, c) in fields {
                    if c.contains(p) {
                        if !out.is_empty() {
                            out.push('.');
                        }
                        out.push_str(n);
                        v = c;
                        continue 'descend;
                    }
                }
                for (k, c) in elems.iter().enumerate() {
                    if c.contains(p) {
                        out.push_str(&format!("[{k}]"));
                        v = c;
                        continue 'descend;
                    }
                }
            }
            Node::List(items) => {
                for (k, c) in items.iter().enumerate() {
                    if c.contains(p) {
                        out.push_str(&format!("[{k}]"));
                        v = c;
                        continue 'descend;
                    }
                }
            }
            Node::Map(entries) => {
                for (key, c) in entries {
                    if key.contains(p) || c.contains(p) {
                        let k = match &key.node {
                            Node::Atom(t) => t.clone(),
                            _ => String::from("?"),
                        };
                        out.push_str(&format!(".\"{k}\""));
                        v = if key.contains(p) { key } else { c };
                        if key.contains(p) {
                            break 'descend;
                        }
                        continue 'descend;
                    }
                }
            }
            Node::Atom(_) => {}
        }
        break;
    }
    Some((v, out))
}

/// At most `max` characters of a value's text, on one line.
fn snippet(source: &str, v: &Value, max: usize) -> String {
    let text: String = source
        .chars()
        .skip(v.span.0)
        .take(v.span.1.saturating_sub(v.span.0))
        .collect();
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > max {
        format!("{}...", one_line.chars().take(max).collect::<String>())
    } else {
        one_line
    }
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Where and what a RON error is: line, column and message (with the value's path).
fn describe(source: &str, e: &ron::error::SpannedError) -> (usize, usize, String) {
    use ron::Error as E;
    let p = Pos {
        line: e.span.start.line.max(1),
        col: e.span.start.col.max(1),
    };
    let doc = Doc::new(source);
    let with_path = |path: &str, msg: String| {
        if path.is_empty() {
            msg
        } else {
            format!("{path}: {msg}")
        }
    };
    let Some(root) = doc.root.as_ref() else {
        return (p.line, p.col, lower_first(&e.code.to_string()));
    };
    match &e.code {
        // Reported at the closing bracket of the struct that lacks it: point at the struct.
        E::MissingStructField { field, .. } => match deepest(root, p) {
            Some((v, path)) => (
                v.start.line,
                v.start.col,
                with_path(&path, format!("missing field `{field}`")),
            ),
            None => (p.line, p.col, format!("missing field `{field}`")),
        },
        // Value-type errors are reported at (or just before) the value: point at it and
        // quote it.
        E::ExpectedArray
        | E::ExpectedBoolean
        | E::ExpectedChar
        | E::ExpectedByteLiteral
        | E::ExpectedFloat
        | E::ExpectedInteger
        | E::ExpectedOption
        | E::ExpectedMap
        | E::ExpectedStructLike
        | E::ExpectedNamedStructLike(_)
        | E::ExpectedUnit
        | E::ExpectedString
        | E::ExpectedByteString
        | E::ExpectedStructName(_)
        | E::IntegerOutOfBounds
        | E::InvalidValueForType { .. }
        | E::ExpectedDifferentLength { .. }
        | E::NoSuchEnumVariant { .. }
        | E::Message(_) => match deepest(root, doc.snap(p)) {
            Some((v, path)) => {
                let msg = match &e.code {
                    E::Message(m) if m.contains("untagged enum ParamValue") => {
                        "expected a number, a list of numbers or a list of lists of numbers"
                            .to_string()
                    }
                    other => lower_first(&other.to_string()),
                };
                let msg = if matches!(
                    e.code,
                    E::NoSuchEnumVariant { .. } | E::InvalidValueForType { .. }
                ) {
                    msg
                } else {
                    format!("{msg}, found {}", snippet(source, v, 40))
                };
                (v.start.line, v.start.col, with_path(&path, msg))
            }
            None => (p.line, p.col, lower_first(&e.code.to_string())),
        },
        other => {
            let path = deepest(root, p).map(|(_, path)| path).unwrap_or_default();
            (
                p.line,
                p.col,
                with_path(&path, lower_first(&other.to_string())),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(segs: Vec<PathSeg>) -> SpecPath {
        SpecPath(segs)
    }

    const SRC: &str = r##"// A scene with comments.
#![enable(implicit_some)]
Scene(
    /* block comment with ( [ { and "quotes" */
    dt: 0.1, // ms
    duration: 1e3,
    seed: 42,
    name: r#"raw "name" (x)"#,
    populations: [
        (name: "E", size: 10, model: "leaky", params: {"tau_m": 20.0}),
        (
            name: "I",  // second
            size: 5,
            model: "leaky",
            params: {
                "tau_m": -1.5, /* nested /* comment */ here */
                "we\"ird": 3,
            },
        ),
    ],
    projections: [
        (source: "E", target: "I", rule: "fixed_indegree",
         rule_params: {"indegree": 2}, weight: Constant(1.0), delay: Uniform(low: 0.5, high: 1.5)),
    ],
    recorders: [Spikes(population: "E"), State(population: "I", variable: "V_m", interval: 1.0, label: Some("v"))],
)
"##;

    #[test]
    fn locates_fields_indices_and_keys() {
        use PathSeg::*;
        assert_eq!(locate(SRC, &path(vec![Field("dt")])), Some((5, 9)));
        assert_eq!(locate(SRC, &path(vec![Field("duration")])), Some((6, 15)));
        assert_eq!(locate(SRC, &path(vec![Field("name")])), Some((8, 11)));
        assert_eq!(
            locate(
                SRC,
                &path(vec![Field("populations"), Index(0), Field("size")])
            ),
            Some((10, 27))
        );
        assert_eq!(
            locate(
                SRC,
                &path(vec![Field("populations"), Index(1), Field("size")])
            ),
            Some((13, 19))
        );
        assert_eq!(
            locate(
                SRC,
                &path(vec![
                    Field("populations"),
                    Index(1),
                    Field("params"),
                    Key("tau_m".into())
                ])
            ),
            Some((16, 26))
        );
        assert_eq!(
            locate(
                SRC,
                &path(vec![
                    Field("populations"),
                    Index(1),
                    Field("params"),
                    Key("we\"ird".into())
                ])
            ),
            Some((17, 28))
        );
        assert_eq!(
            locate(
                SRC,
                &path(vec![Field("projections"), Index(0), Field("target")])
            ),
            Some((22, 31))
        );
        assert_eq!(
            locate(
                SRC,
                &path(vec![Field("projections"), Index(0), Field("delay")])
            ),
            Some((23, 70))
        );
        assert_eq!(
            locate(
                SRC,
                &path(vec![
                    Field("projections"),
                    Index(0),
                    Field("delay"),
                    Field("high")
                ])
            ),
            Some((23, 94))
        );
        assert_eq!(
            locate(
                SRC,
                &path(vec![Field("recorders"), Index(1), Field("interval")])
            ),
            Some((25, 92))
        );
        assert_eq!(
            locate(
                SRC,
                &path(vec![Field("recorders"), Index(1), Field("label")])
            ),
            Some((25, 104))
        );
    }

    #[test]
    fn absent_paths_give_the_deepest_enclosing_value() {
        use PathSeg::*;
        // No "p" in rule_params: the map itself.
        assert_eq!(
            locate(
                SRC,
                &path(vec![
                    Field("projections"),
                    Index(0),
                    Field("rule_params"),
                    Key("p".into())
                ])
            ),
            Some((23, 23))
        );
        // No third population: the list.
        assert_eq!(
            locate(
                SRC,
                &path(vec![Field("populations"), Index(2), Field("size")])
            ),
            Some((9, 18))
        );
        // No `initial` field: the population.
        assert_eq!(
            locate(
                SRC,
                &path(vec![
                    Field("populations"),
                    Index(0),
                    Field("initial"),
                    Key("V_m".into())
                ])
            ),
            Some((10, 9))
        );
        // The empty path: the top-level struct.
        assert_eq!(locate(SRC, &SpecPath::default()), Some((3, 1)));
    }

    #[test]
    fn path_at_finds_the_deepest_value() {
        assert_eq!(path_at(SRC, 13, 19).as_deref(), Some("populations[1].size"));
        assert_eq!(
            path_at(SRC, 16, 28).as_deref(),
            Some("populations[1].params.\"tau_m\"")
        );
        assert_eq!(
            path_at(SRC, 23, 94).as_deref(),
            Some("projections[0].delay.high")
        );
        assert_eq!(path_at(SRC, 3, 1).as_deref(), Some(""));
        assert_eq!(path_at(SRC, 1, 1), None);
    }

    #[test]
    fn readme_example_parses() {
        let readme = include_str!("../README.md");
        let start = readme
            .find("```ron\n")
            .expect("the README has a RON example")
            + 7;
        let len = readme[start..].find("```").expect("the example is closed");
        let text = &readme[start..start + len];
        let scene = parse_scene(Path::new("README.md"), text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(scene.name.as_deref(), Some("small_brunel"));
        assert_eq!(scene.populations.len(), 2);
        assert!(!scene.projections[0].autapses);
        assert_eq!(scene.recorders[1].label(), "I_v");
        let p = SpecPath::item("projections", 1)
            .field("rule_params")
            .key("p");
        let (line, col) = locate(text, &p).expect("located");
        assert!(
            text.lines()
                .nth(line - 1)
                .expect("line exists")
                .chars()
                .skip(col - 1)
                .collect::<String>()
                .starts_with("0.1}")
        );
    }

    #[test]
    fn scanner_survives_garbage() {
        for src in [
            "",
            "(",
            ")",
            "Scene(dt: ",
            "[[[[",
            "r#\"unterminated",
            "\"abc",
            "/* open",
            "{\"a\" 1 : }",
            "#![",
            "(a: b: c:)",
            "'\\u{zz}'",
            "\\",
        ] {
            let _ = locate(src, &SpecPath::item("populations", 0).field("size"));
            let _ = path_at(src, 1, 2);
        }
        let deep = "[".repeat(100_000);
        assert_eq!(locate(&deep, &SpecPath::item("a", 0)), Some((1, 1)));
        let _ = path_at(&deep, 1, 50_000);
    }
}
