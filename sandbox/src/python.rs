//! Python support: the static check (a real tokenizer, then an import
//! allowlist and a forbidden-name list on the token stream) and the trusted
//! runner that the jail executes.
//!
//! The static check is *shaping*, not security: it rejects programs early and
//! gives the model a clear signal, but the jail enforces the same rules on
//! its own (the adversarial suite runs every Python attack with the check
//! switched off).

use std::fmt;

/// Modules a Python strategy may import by default. The runner imports them
/// before the tight seccomp stage; afterwards no file can be opened, so no
/// other module can be loaded.
pub const DEFAULT_ALLOWED_MODULES: &[&str] =
    &["math", "random", "itertools", "functools", "collections", "heapq", "copy", "bisect", "operator"];

/// Names whose use is a forbidden construct (escape hatches to the
/// interpreter's internals, dynamic code, files and introspection).
pub const FORBIDDEN_NAMES: &[&str] = &[
    "__import__",
    "importlib",
    "eval",
    "exec",
    "compile",
    "open",
    "globals",
    "locals",
    "vars",
    "getattr",
    "setattr",
    "delattr",
    "breakpoint",
    "input",
    "memoryview",
    "__builtins__",
    "__subclasses__",
    "__globals__",
    "__code__",
    "__bases__",
    "__mro__",
    "__loader__",
    "__spec__",
    "__dict__",
    "__getattribute__",
    "__reduce__",
    "__reduce_ex__",
    "gi_frame",
    "f_globals",
    "f_back",
    "f_locals",
];

/// One problem found by the static check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// `import x` / `from x import y` of a module outside the allowlist.
    Import {
        /// The module's dotted name (`""` + dots for relative imports).
        module: String,
        /// 1-based line.
        line: usize,
    },
    /// Use of a forbidden name.
    Name {
        /// The name.
        name: String,
        /// 1-based line.
        line: usize,
    },
    /// The source could not be tokenised (unterminated string, bad bracket).
    Syntax {
        /// What is wrong.
        reason: String,
        /// 1-based line.
        line: usize,
    },
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::Import { module, line } => write!(f, "line {line}: import of `{module}` is not allowed"),
            Finding::Name { name, line } => write!(f, "line {line}: `{name}` is not allowed"),
            Finding::Syntax { reason, line } => write!(f, "line {line}: {reason}"),
        }
    }
}

/// All findings of a static check.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Findings(pub Vec<Finding>);

impl Findings {
    /// A one-line summary: the first findings joined with `; `.
    pub fn summary(&self) -> String {
        let mut s = self.0.iter().take(3).map(|f| f.to_string()).collect::<Vec<_>>().join("; ");
        if self.0.len() > 3 {
            s.push_str(&format!("; and {} more", self.0.len() - 3));
        }
        s
    }
    /// Whether any finding is an import outside the allowlist.
    pub fn has_import(&self) -> bool {
        self.0.iter().any(|f| matches!(f, Finding::Import { .. }))
    }
    /// Whether any finding is a syntax problem.
    pub fn has_syntax(&self) -> bool {
        self.0.iter().any(|f| matches!(f, Finding::Syntax { .. }))
    }
}

/// A Python token (only the kinds the check needs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    /// An identifier or keyword.
    Name(String),
    /// An operator or delimiter (`.`, `,`, `(`, `;`, ...), one char or `->`/`**` etc.
    Op(String),
    /// A string literal; `f` is true for f-strings, whose raw text is kept.
    Str {
        /// The literal's text between the quotes.
        text: String,
        /// Whether it is an f-string (its text may contain expressions).
        f: bool,
    },
    /// A number literal.
    Number,
    /// End of a logical line.
    Newline,
}

/// Tokenises Python source. Returns tokens with 1-based line numbers.
///
/// Handles comments, all string prefixes (`r b u f` and combinations),
/// single/triple quotes, backslash continuation and implicit continuation
/// inside brackets (no `Newline` inside brackets).
pub fn tokenize(src: &str) -> Result<Vec<(Token, usize)>, Finding> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut line = 1;
    let mut depth: i32 = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\n' => {
                if depth == 0 && !matches!(out.last(), Some((Token::Newline, _)) | None) {
                    out.push((Token::Newline, line));
                }
                line += 1;
                i += 1;
            }
            '#' => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '\\' if chars.get(i + 1) == Some(&'\n') => {
                line += 1;
                i += 2;
            }
            c if c.is_whitespace() => i += 1,
            c if c.is_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let lower = word.to_ascii_lowercase();
                let is_prefix = word.len() <= 3
                    && lower.chars().all(|c| matches!(c, 'r' | 'b' | 'u' | 'f'))
                    && matches!(chars.get(i), Some('"') | Some('\''));
                if is_prefix {
                    let (text, next, lines) = read_string(&chars, i, lower.contains('r'), line)?;
                    out.push((Token::Str { text, f: lower.contains('f') }, line));
                    line += lines;
                    i = next;
                } else {
                    out.push((Token::Name(word), line));
                }
            }
            c if c.is_ascii_digit() => {
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '.') {
                    i += 1;
                }
                out.push((Token::Number, line));
            }
            '"' | '\'' => {
                let (text, next, lines) = read_string(&chars, i, false, line)?;
                out.push((Token::Str { text, f: false }, line));
                line += lines;
                i = next;
            }
            '(' | '[' | '{' => {
                depth += 1;
                out.push((Token::Op(c.to_string()), line));
                i += 1;
            }
            ')' | ']' | '}' => {
                depth -= 1;
                if depth < 0 {
                    return Err(Finding::Syntax { reason: format!("unmatched `{c}`"), line });
                }
                out.push((Token::Op(c.to_string()), line));
                i += 1;
            }
            '.' if chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()) => {
                i += 1;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                out.push((Token::Number, line));
            }
            ';' => {
                out.push((Token::Newline, line));
                i += 1;
            }
            _ => {
                out.push((Token::Op(c.to_string()), line));
                i += 1;
            }
        }
    }
    if depth != 0 {
        return Err(Finding::Syntax { reason: "unclosed bracket".into(), line });
    }
    out.push((Token::Newline, line));
    Ok(out)
}

/// Reads a string literal starting at the quote `chars[i]`. Returns the text,
/// the index after the closing quote and the number of newlines crossed.
fn read_string(chars: &[char], i: usize, raw: bool, line: usize) -> Result<(String, usize, usize), Finding> {
    let q = chars[i];
    let triple = chars.get(i + 1) == Some(&q) && chars.get(i + 2) == Some(&q);
    let mut j = if triple { i + 3 } else { i + 1 };
    let mut text = String::new();
    let mut lines = 0;
    loop {
        let Some(&c) = chars.get(j) else {
            return Err(Finding::Syntax { reason: "unterminated string".into(), line });
        };
        if c == '\\' {
            if let Some(&n) = chars.get(j + 1) {
                if n == '\n' {
                    lines += 1;
                }
                if raw {
                    text.push(c);
                }
                text.push(n);
            }
            j += 2;
            continue;
        }
        if c == '\n' {
            if !triple {
                return Err(Finding::Syntax { reason: "unterminated string".into(), line });
            }
            lines += 1;
        }
        if c == q {
            if !triple {
                return Ok((text, j + 1, lines));
            }
            if chars.get(j + 1) == Some(&q) && chars.get(j + 2) == Some(&q) {
                return Ok((text, j + 3, lines));
            }
        }
        text.push(c);
        j += 1;
    }
}

/// Reads a dotted name starting at token `k`; returns it and the next index.
fn dotted(tokens: &[(Token, usize)], mut k: usize) -> (String, usize) {
    let mut name = String::new();
    while let Some((Token::Op(o), _)) = tokens.get(k) {
        if o != "." {
            break;
        }
        name.push('.');
        k += 1;
    }
    loop {
        match tokens.get(k) {
            Some((Token::Name(n), _)) if n != "import" => {
                name.push_str(n);
                k += 1;
                if matches!(tokens.get(k), Some((Token::Op(o), _)) if o == ".") {
                    name.push('.');
                    k += 1;
                } else {
                    break;
                }
            }
            _ => break,
        }
    }
    (name, k)
}

/// The modules a program imports, with lines (relative imports start with `.`).
pub fn imports(tokens: &[(Token, usize)]) -> Vec<(String, usize)> {
    let mut found = Vec::new();
    let mut k = 0;
    while k < tokens.len() {
        match &tokens[k] {
            (Token::Name(n), line) if n == "from" => {
                let (module, next) = dotted(tokens, k + 1);
                if matches!(tokens.get(next), Some((Token::Name(i), _)) if i == "import") {
                    found.push((module, *line));
                    // Skip the imported names (attributes, not modules).
                    k = next + 1;
                    while k < tokens.len() && tokens[k].0 != Token::Newline {
                        k += 1;
                    }
                } else {
                    k += 1;
                }
            }
            (Token::Name(n), line) if n == "import" => {
                k += 1;
                loop {
                    let (module, next) = dotted(tokens, k);
                    found.push((module, *line));
                    k = next;
                    if matches!(tokens.get(k), Some((Token::Name(a), _)) if a == "as") {
                        k += 2;
                    }
                    if matches!(tokens.get(k), Some((Token::Op(c), _)) if c == ",") {
                        k += 1;
                    } else {
                        break;
                    }
                }
            }
            _ => k += 1,
        }
    }
    found
}

fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '_')).filter(|w| !w.is_empty())
}

/// Checks a Python program: every import's top-level module must be in
/// `allowed` (relative imports never are) and no forbidden name may be used
/// (as a name, attribute, or inside an f-string expression).
pub fn static_check(source: &str, allowed: &[String]) -> Result<(), Findings> {
    let tokens = tokenize(source).map_err(|f| Findings(vec![f]))?;
    let mut findings = Vec::new();
    for (module, line) in imports(&tokens) {
        let top = module.split('.').next().unwrap_or("");
        if module.starts_with('.') || module.is_empty() || !allowed.iter().any(|a| a == top) {
            findings.push(Finding::Import { module, line });
        }
    }
    for (tok, line) in &tokens {
        match tok {
            Token::Name(n) if FORBIDDEN_NAMES.contains(&n.as_str()) => {
                findings.push(Finding::Name { name: n.clone(), line: *line })
            }
            Token::Str { text, f: true } => {
                for w in words(text) {
                    if FORBIDDEN_NAMES.contains(&w) {
                        findings.push(Finding::Name { name: w.to_string(), line: *line });
                    }
                }
            }
            _ => {}
        }
    }
    if findings.is_empty() {
        Ok(())
    } else {
        Err(Findings(findings))
    }
}

/// The trusted runner executed by the jailed interpreter (`python3 -s -S -B -c`, environment `PYTHONHASHSEED=0` only).
///
/// Protocol (JSON, one object per line): the host writes a hello frame on
/// fd 3 — `{"source", "entry", "modules", "filters": [hex BPF...], "nr", "seed"}` —
/// the runner preloads the allowed modules, compiles the source, installs
/// the stage-2 seccomp filters through `ctypes`, drops `ctypes` from
/// `sys.modules`, executes the definitions and answers `{"ok": true}` on
/// fd 4. Then for each request line (a JSON array of arguments) it calls the
/// entry function and answers `{"a": "<action>"}` or
/// `{"e": "<kind>", "m": "<message>"}`. Everything the runner says is parsed
/// strictly by the host; once model code has run, the runner is as untrusted
/// as the model.
pub const RUNNER: &str = r#"
import sys, json, ctypes
def _main():
    rf = open(3, 'rb', buffering=0)
    wf = open(4, 'wb', buffering=0)
    pending = [b'']
    def readline():
        while True:
            buf = pending[0]
            i = buf.find(b'\n')
            if i >= 0:
                pending[0] = buf[i + 1:]
                return buf[:i]
            chunk = rf.read(65536)
            if not chunk:
                return None
            pending[0] = buf + chunk
    def send(obj):
        wf.write((json.dumps(obj) + '\n').encode())
    def fmt(e):
        try:
            return (type(e).__name__ + ': ' + str(e))[:300]
        except BaseException:
            return type(e).__name__
    def kind(e):
        if isinstance(e, MemoryError):
            return 'memory'
        return 'runtime'
    line = readline()
    if line is None:
        return
    hello = json.loads(line)
    for m in hello['modules']:
        try:
            __import__(m)
        except Exception:
            pass
    if 'random' in sys.modules:
        sys.modules['random'].seed(hello['seed'])
    try:
        code = compile(hello['source'], '<strategy>', 'exec')
    except BaseException as e:
        send({'e': 'compile', 'm': fmt(e)})
        return
    filters = [ctypes.create_string_buffer(bytes.fromhex(h), len(h) // 2) for h in hello['filters']]
    if filters:
        class Prog(ctypes.Structure):
            _fields_ = [('len', ctypes.c_ushort), ('filter', ctypes.c_void_p)]
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(38, 1, 0, 0, 0) != 0:
            send({'e': 'setup', 'm': 'prctl'})
            return
        for f in filters:
            prog = Prog(len(f) // 8, ctypes.addressof(f))
            if libc.syscall(hello['nr'], 1, 0, ctypes.byref(prog)) != 0:
                send({'e': 'setup', 'm': 'seccomp errno %d' % ctypes.get_errno()})
                return
        del libc, Prog, prog
    del filters
    for k in [k for k in sys.modules if k == 'ctypes' or k.startswith('ctypes.') or k == '_ctypes']:
        del sys.modules[k]
    entry = hello['entry']
    action_bytes = hello['action_bytes']
    del hello, line
    g = {'__name__': '__strategy__', '__builtins__': __builtins__}
    try:
        exec(code, g)
    except BaseException as e:
        send({'e': kind(e), 'm': fmt(e)})
        return
    fn = g.get(entry)
    if not callable(fn):
        send({'e': 'compile', 'm': 'no function `%s` defined' % entry})
        return
    send({'ok': True})
    while True:
        line = readline()
        if line is None:
            return
        args = json.loads(line)
        try:
            r = fn(*args)
        except BaseException as e:
            send({'e': kind(e), 'm': fmt(e)})
            return
        if type(r) is str:
            a = r
        elif type(r) is int:
            a = str(r)
        elif type(r) in (list, tuple) and all(type(x) is int for x in r):
            a = ' '.join(str(x) for x in r)
        else:
            send({'e': 'type', 'm': type(r).__name__})
            return
        if len(a.encode()) > action_bytes:
            send({'e': 'long', 'm': str(len(a.encode()))})
            return
        send({'a': a})
_main()
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed() -> Vec<String> {
        DEFAULT_ALLOWED_MODULES.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn allowed_imports_pass() {
        let src = "import math, random as r\nfrom collections import deque\ndef strategy(b):\n    return 'W'\n";
        assert_eq!(static_check(src, &allowed()), Ok(()));
    }

    #[test]
    fn forbidden_imports_are_found_in_all_forms() {
        for src in [
            "import os",
            "import math, os.path",
            "from os import path",
            "from . import x",
            "if True: import subprocess",
            "x = 1; import socket",
            "import \\\n  os",
            "from   sys   import  (\n  argv,\n)",
        ] {
            let f = static_check(src, &allowed()).unwrap_err();
            assert!(f.has_import(), "{src}: {f:?}");
        }
    }

    #[test]
    fn strings_and_comments_are_not_code() {
        let src = "# import os\ns = 'import os'\nt = \"\"\"\nimport sys\n\"\"\"\ndef strategy(b):\n    return 'W'\n";
        assert_eq!(static_check(src, &allowed()), Ok(()));
        // yield from / raise from are not imports.
        assert_eq!(static_check("def g():\n    yield from range(3)\n", &allowed()), Ok(()));
    }

    #[test]
    fn forbidden_names_are_found() {
        for src in [
            "__import__('os')",
            "x = ().__class__.__bases__[0].__subclasses__()",
            "eval('1')",
            "f = open('/etc/passwd')",
            "s = f\"{__import__('os')}\"",
            "getattr(x, 'y')",
        ] {
            let f = static_check(src, &allowed()).unwrap_err();
            assert!(!f.0.is_empty(), "{src}");
        }
    }

    #[test]
    fn tokenizer_reports_broken_source() {
        assert!(static_check("x = 'abc", &allowed()).unwrap_err().has_syntax());
        assert!(static_check("x = (1, 2", &allowed()).unwrap_err().has_syntax());
    }
}
