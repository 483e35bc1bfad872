//! The bash-like expansion engine of post-build substitution (Flux's `envsubst` dialect).
//!
//! Supported: `${var}`, `${#var}`, `${var^}`, `${var^^}`, `${var,}`, `${var,,}`, `${var:n}`,
//! `${var:n:len}`, `${var#glob}`, `${var##glob}`, `${var%glob}`, `${var%%glob}`,
//! `${var:-default}`, `${var=default}`, `${var:=default}` (a default applies
//! when the variable is unset or empty; defaults may nest `${...}`), `${var/pat/rep}`,
//! `${var//pat/rep}`, `${var/#pat/rep}`, `${var/%pat/rep}` (literal patterns; `\/` and `\\`
//! escape inside them). `$$` is a literal `$`, so `$${var}` gives `${var}`; `$var` without
//! braces is left alone. `${var+x}`, `${var:+x}` and `${var:?x}` are rejected, as in Flux, and
//! so is `${var-x}`: Flux's parser rejects it, which catches names written with a dash
//! (`${cluster-name}`) instead of silently treating them as a default.
//!
//! In strict mode, a variable that is not set and has no default is an error, whatever operator
//! is applied to it; otherwise it expands to the empty string. Defaults are only evaluated
//! when used, so a missing variable inside an unused default is not an error.

/// Why an expression could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandError {
    /// A variable without default is not set, in strict mode.
    #[error("variable {0:?} is not set (strict mode) and has no default")]
    NotSet(String),
    /// The offset or length of a substring is not an integer once expanded.
    #[error(
        "bad substitution: the offset and length of a substring must expand to integers (the value is not shown)"
    )]
    NotAnInteger,
    /// The text after `${` is not a valid expression.
    #[error("bad substitution at {position:?}: {problem}")]
    Syntax {
        /// The expression text, up to 40 characters.
        position: String,
        /// What is wrong.
        problem: &'static str,
    },
}

/// Expands every `${...}` of `input`; `lookup` gives a variable's value, `None` when unset.
pub fn expand<'v>(
    input: &str,
    lookup: &dyn Fn(&str) -> Option<&'v str>,
    strict: bool,
) -> Result<String, ExpandError> {
    let chars: Vec<char> = input.chars().collect();
    let mut parser = Parser { chars, pos: 0 };
    let nodes = parser.segment(&[], false)?;
    let env = Env { lookup, strict };
    env.eval_all(&nodes)
}

#[derive(Debug)]
enum Node {
    Text(String),
    Expr(Box<Expr>),
}

#[derive(Debug)]
enum Expr {
    Value(String),
    Length(String),
    Default {
        name: String,
        default: Vec<Node>,
    },
    Substring {
        name: String,
        offset: Vec<Node>,
        length: Option<Vec<Node>>,
    },
    Case {
        name: String,
        op: String,
    },
    Replace {
        name: String,
        mode: ReplaceMode,
        pattern: Vec<Node>,
        replacement: Vec<Node>,
    },
    Remove {
        name: String,
        op: String,
        pattern: Vec<Node>,
    },
}

#[derive(Debug, Clone, Copy)]
enum ReplaceMode {
    First,
    All,
    Prefix,
    Suffix,
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<char> {
        self.chars.get(self.pos + offset).copied()
    }

    fn error(&self, start: usize, problem: &'static str) -> ExpandError {
        let position: String = self.chars[start.min(self.chars.len())..]
            .iter()
            .take(40)
            .collect();
        ExpandError::Syntax { position, problem }
    }

    /// Text and expressions up to (not including) one of `terminators`. At the top level
    /// (no terminators) it runs to the end; inside an expression, reaching the end is an error.
    fn segment(&mut self, terminators: &[char], escapes: bool) -> Result<Vec<Node>, ExpandError> {
        let start = self.pos;
        let mut nodes = Vec::new();
        let mut text = String::new();
        loop {
            let Some(c) = self.peek() else {
                if terminators.is_empty() {
                    break;
                }
                return Err(self.error(start.saturating_sub(2), "missing closing brace"));
            };
            if terminators.contains(&c) {
                break;
            }
            match (c, self.peek_at(1)) {
                ('$', Some('$')) => {
                    text.push('$');
                    self.pos += 2;
                }
                ('$', Some('{')) => {
                    if !text.is_empty() {
                        nodes.push(Node::Text(std::mem::take(&mut text)));
                    }
                    self.pos += 2;
                    nodes.push(Node::Expr(Box::new(self.expression()?)));
                }
                ('\\', Some(next @ ('/' | '\\'))) if escapes => {
                    text.push(next);
                    self.pos += 2;
                }
                _ => {
                    text.push(c);
                    self.pos += 1;
                }
            }
        }
        if !text.is_empty() {
            nodes.push(Node::Text(text));
        }
        Ok(nodes)
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if c.is_alphanumeric() || c == '_' {
                name.push(c);
                self.pos += 1;
            } else {
                break;
            }
        }
        name
    }

    fn close(&mut self, start: usize) -> Result<(), ExpandError> {
        match self.peek() {
            Some('}') => {
                self.pos += 1;
                Ok(())
            }
            Some(_) => Err(self.error(start, "unexpected character")),
            None => Err(self.error(start, "missing closing brace")),
        }
    }

    /// Repeats of `c`, at most two (`^`/`^^`, `#`/`##`...).
    fn op(&mut self, c: char) -> String {
        let mut op = String::new();
        while op.len() < 2 && self.peek() == Some(c) {
            op.push(c);
            self.pos += 1;
        }
        op
    }

    /// The expression after `${`, consuming its closing brace.
    fn expression(&mut self) -> Result<Expr, ExpandError> {
        let start = self.pos.saturating_sub(2);
        if self.peek() == Some('#') {
            self.pos += 1;
            let name = self.name();
            if name.is_empty() {
                return Err(self.error(start, "unable to parse variable name"));
            }
            self.close(start)?;
            return Ok(Expr::Length(name));
        }
        let name = self.name();
        if name.is_empty() {
            return Err(self.error(start, "unable to parse variable name"));
        }
        let expr = match (self.peek(), self.peek_at(1)) {
            (Some('}'), _) => Expr::Value(name),
            (Some(':'), Some('=' | '-')) | (Some('='), _) => {
                self.pos += if self.peek() == Some(':') { 2 } else { 1 };
                let default = self.segment(&['}'], false)?;
                Expr::Default { name, default }
            }
            (Some(':'), Some('?' | '+')) | (Some('?' | '+'), _) => {
                return Err(self.error(start, "unsupported operator"));
            }
            (Some(':'), _) => {
                self.pos += 1;
                let offset = self.segment(&[':', '}'], false)?;
                let length = if self.peek() == Some(':') {
                    self.pos += 1;
                    Some(self.segment(&['}'], false)?)
                } else {
                    None
                };
                Expr::Substring {
                    name,
                    offset,
                    length,
                }
            }
            (Some(c @ ('^' | ',')), _) => Expr::Case {
                name,
                op: self.op(c),
            },
            (Some('/'), next) => {
                self.pos += 1;
                let mode = match next {
                    Some('/') => ReplaceMode::All,
                    Some('#') => ReplaceMode::Prefix,
                    Some('%') => ReplaceMode::Suffix,
                    _ => ReplaceMode::First,
                };
                if !matches!(mode, ReplaceMode::First) {
                    self.pos += 1;
                }
                let pattern = self.segment(&['/', '}'], true)?;
                let replacement = if self.peek() == Some('/') {
                    self.pos += 1;
                    self.segment(&['}'], true)?
                } else {
                    Vec::new()
                };
                Expr::Replace {
                    name,
                    mode,
                    pattern,
                    replacement,
                }
            }
            (Some(c @ ('#' | '%')), _) => {
                let op = self.op(c);
                let pattern = self.segment(&['}'], false)?;
                Expr::Remove { name, op, pattern }
            }
            (None, _) => return Err(self.error(start, "missing closing brace")),
            (Some(_), _) => return Err(self.error(start, "invalid character in variable name")),
        };
        self.close(start)?;
        Ok(expr)
    }
}

struct Env<'a, 'v> {
    lookup: &'a dyn Fn(&str) -> Option<&'v str>,
    strict: bool,
}

impl Env<'_, '_> {
    fn eval_all(&self, nodes: &[Node]) -> Result<String, ExpandError> {
        let mut out = String::new();
        for node in nodes {
            match node {
                Node::Text(t) => out.push_str(t),
                Node::Expr(e) => out.push_str(&self.eval(e)?),
            }
        }
        Ok(out)
    }

    /// The value of a variable an operator applies to: unset is an error in strict mode.
    fn value(&self, name: &str) -> Result<String, ExpandError> {
        match (self.lookup)(name) {
            Some(v) => Ok(v.to_owned()),
            None if self.strict => Err(ExpandError::NotSet(name.to_owned())),
            None => Ok(String::new()),
        }
    }

    fn eval(&self, expr: &Expr) -> Result<String, ExpandError> {
        Ok(match expr {
            Expr::Value(name) => self.value(name)?,
            Expr::Length(name) => self.value(name)?.chars().count().to_string(),
            Expr::Default { name, default } => match (self.lookup)(name) {
                Some(v) if !v.is_empty() => v.to_owned(),
                _ => self.eval_all(default)?,
            },
            Expr::Substring {
                name,
                offset,
                length,
            } => {
                let value: Vec<char> = self.value(name)?.chars().collect();
                let offset = self.integer(offset)?;
                let len = value.len() as i64;
                // Saturating: offsets and lengths are any i64 (`${v:1:9223372036854775807}`).
                let from = if offset < 0 {
                    len.saturating_add(offset).max(0)
                } else {
                    offset.min(len)
                };
                let to = match length {
                    Some(l) => {
                        let l = self.integer(l)?;
                        if l < 0 {
                            len.saturating_add(l).max(from)
                        } else {
                            from.saturating_add(l).min(len)
                        }
                    }
                    None => len,
                };
                value[from as usize..to as usize].iter().collect()
            }
            Expr::Case { name, op } => {
                let value = self.value(name)?;
                let mut chars = value.chars();
                match op.as_str() {
                    "^^" => value.to_uppercase(),
                    ",," => value.to_lowercase(),
                    "^" => chars
                        .next()
                        .map_or(String::new(), |c| c.to_uppercase().chain(chars).collect()),
                    _ => chars
                        .next()
                        .map_or(String::new(), |c| c.to_lowercase().chain(chars).collect()),
                }
            }
            Expr::Replace {
                name,
                mode,
                pattern,
                replacement,
            } => {
                let value = self.value(name)?;
                let pattern = self.eval_all(pattern)?;
                let replacement = self.eval_all(replacement)?;
                replace(&value, *mode, &pattern, &replacement)
            }
            Expr::Remove { name, op, pattern } => {
                let value = self.value(name)?;
                let pattern: Vec<char> = self.eval_all(pattern)?.chars().collect();
                remove(&value, op, &pattern)
            }
        })
    }

    fn integer(&self, nodes: &[Node]) -> Result<i64, ExpandError> {
        let text = self.eval_all(nodes)?;
        let text = text.trim();
        if text.is_empty() {
            return Ok(0);
        }
        // The text is a value (perhaps from a Secret), so it is not shown.
        text.parse().map_err(|_| ExpandError::NotAnInteger)
    }
}

fn replace(value: &str, mode: ReplaceMode, pattern: &str, replacement: &str) -> String {
    match mode {
        ReplaceMode::Prefix => match value.strip_prefix(pattern) {
            Some(rest) => format!("{replacement}{rest}"),
            None => value.to_owned(),
        },
        ReplaceMode::Suffix => match value.strip_suffix(pattern) {
            Some(rest) => format!("{rest}{replacement}"),
            None => value.to_owned(),
        },
        _ if pattern.is_empty() => value.to_owned(),
        ReplaceMode::First => value.replacen(pattern, replacement, 1),
        ReplaceMode::All => value.replace(pattern, replacement),
    }
}

/// `#`/`##` strip the shortest/longest prefix matching the glob; `%`/`%%` the suffix.
fn remove(value: &str, op: &str, pattern: &[char]) -> String {
    let chars: Vec<char> = value.chars().collect();
    let n = chars.len();
    let cut: Option<(usize, usize)> = match op {
        "#" => (0..=n)
            .find(|&i| glob(pattern, &chars[..i]))
            .map(|i| (i, n)),
        "##" => (0..=n)
            .rev()
            .find(|&i| glob(pattern, &chars[..i]))
            .map(|i| (i, n)),
        "%" => (0..=n)
            .rev()
            .find(|&i| glob(pattern, &chars[i..]))
            .map(|i| (0, i)),
        _ => (0..=n)
            .find(|&i| glob(pattern, &chars[i..]))
            .map(|i| (0, i)),
    };
    match cut {
        Some((from, to)) => chars[from..to].iter().collect(),
        None => value.to_owned(),
    }
}

/// Shell glob match of the whole text: `*`, `?`, `[abc]`, `[a-z]`, `[!x]`, `\x`.
///
/// Memoized on (pattern position, text position): plain backtracking takes exponential time
/// in the number of `*` (`${v##*a*a*a*a*a*a*a*a*a*ab}` on a long value never finished).
fn glob(pattern: &[char], text: &[char]) -> bool {
    let mut memo = vec![None; (pattern.len() + 1) * (text.len() + 1)];
    glob_at(pattern, text, 0, 0, &mut memo)
}

fn glob_at(pattern: &[char], text: &[char], p: usize, t: usize, memo: &mut [Option<bool>]) -> bool {
    let key = p * (text.len() + 1) + t;
    if let Some(known) = memo[key] {
        return known;
    }
    let rest = &pattern[p..];
    let next = text.get(t).copied();
    let matched = match rest.first() {
        None => t == text.len(),
        Some('*') => (t..=text.len()).any(|i| glob_at(pattern, text, p + 1, i, memo)),
        Some('?') => next.is_some() && glob_at(pattern, text, p + 1, t + 1, memo),
        Some('[') => match (class(&rest[1..]), next) {
            (Some((matches, used)), Some(c)) => {
                matches(c) && glob_at(pattern, text, p + 1 + used, t + 1, memo)
            }
            (Some(_), None) => false,
            (None, _) => next == Some('[') && glob_at(pattern, text, p + 1, t + 1, memo),
        },
        Some('\\') if rest.len() > 1 => {
            next == Some(rest[1]) && glob_at(pattern, text, p + 2, t + 1, memo)
        }
        Some(&c) => next == Some(c) && glob_at(pattern, text, p + 1, t + 1, memo),
    };
    memo[key] = Some(matched);
    matched
}

/// A bracket class after `[`: a predicate and the number of pattern chars used (with `]`).
fn class(pattern: &[char]) -> Option<(impl Fn(char) -> bool, usize)> {
    let negated = matches!(pattern.first(), Some('!' | '^'));
    let body_start = usize::from(negated);
    let end = (body_start + 1..pattern.len()).find(|&i| pattern[i] == ']')?;
    let body: Vec<char> = pattern[body_start..end].to_vec();
    let matches = move |c: char| {
        let mut i = 0;
        let mut hit = false;
        while i < body.len() {
            if i + 2 < body.len() && body[i + 1] == '-' {
                hit |= body[i] <= c && c <= body[i + 2];
                i += 3;
            } else {
                hit |= body[i] == c;
                i += 1;
            }
        }
        hit != negated
    };
    Some((matches, end + 1))
}

#[cfg(test)]
#[path = "expand_tests.rs"]
mod tests;
