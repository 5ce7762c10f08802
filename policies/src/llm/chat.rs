//! Chat templates (the model's own Jinja template rendered with minijinja
//! plus Python-compatible string/dict methods) and the harmony reply format.

use minijinja::{Environment, Error, ErrorKind, Value};

use models::error::{read_json, read_to_string};
use models::ModelFiles;

use super::error::{LlmError, Result};

/// A model's chat template, ready to render.
#[derive(Debug)]
pub struct ChatTemplate {
    env: Environment<'static>,
    bos_token: String,
    eos_token: String,
}

/// Reads a special token from `tokenizer_config.json` (a string or `{content}`).
fn special(cfg: &serde_json::Value, key: &str) -> Option<String> {
    match cfg.get(key)? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Object(o) => o.get("content").and_then(|c| c.as_str()).map(str::to_string),
        _ => None,
    }
}

/// Writes a value as Python's `json.dumps` does (`", "` and `": "`
/// separators, or `indent`), without ASCII escaping and keeping map order,
/// as HF's `tojson` filter.
fn py_json(v: &Value, indent: Option<usize>, level: usize, out: &mut String) -> std::result::Result<(), Error> {
    use minijinja::value::ValueKind;
    let pad = |out: &mut String, level: usize| {
        if let Some(n) = indent {
            out.push('\n');
            out.push_str(&" ".repeat(n * level));
        }
    };
    let sep = if indent.is_some() { "," } else { ", " };
    match v.kind() {
        ValueKind::Seq | ValueKind::Iterable | ValueKind::Map => {
            let is_map = v.kind() == ValueKind::Map;
            let items: Vec<Value> = v.try_iter()?.collect();
            if items.is_empty() {
                out.push_str(if is_map { "{}" } else { "[]" });
                return Ok(());
            }
            out.push(if is_map { '{' } else { '[' });
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(sep);
                }
                pad(out, level + 1);
                if is_map {
                    let key = x.as_str().map(str::to_string).unwrap_or_else(|| x.to_string());
                    out.push_str(&serde_json::Value::String(key).to_string());
                    out.push_str(": ");
                    py_json(&v.get_item(x)?, indent, level + 1, out)?;
                } else {
                    py_json(x, indent, level + 1, out)?;
                }
            }
            pad(out, level);
            out.push(if is_map { '}' } else { ']' });
        }
        ValueKind::Undefined | ValueKind::None => out.push_str("null"),
        _ => {
            let j = serde_json::to_string(v).map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))?;
            out.push_str(&j);
        }
    }
    Ok(())
}

fn tojson(value: Value, kwargs: minijinja::value::Kwargs) -> std::result::Result<Value, Error> {
    let indent: Option<usize> = kwargs.get("indent")?;
    let _: Option<bool> = kwargs.get("ensure_ascii")?;
    kwargs.assert_all_used()?;
    let mut out = String::new();
    py_json(&value, indent, 0, &mut out)?;
    Ok(Value::from_safe_string(out))
}

fn raise_exception(msg: String) -> std::result::Result<Value, Error> {
    Err(Error::new(ErrorKind::InvalidOperation, msg))
}

/// `strftime_now(fmt)` for templates that print today's date (UTC);
/// supports `%Y %m %d %b %B %H %M %S %%`.
fn strftime_now(fmt: String) -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    strftime(secs, &fmt)
}

fn strftime(secs: u64, fmt: &str) -> String {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let days = (secs / 86400) as i64;
    let rem = secs % 86400;
    // Civil-from-days (H. Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let mut out = String::new();
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('Y') => out.push_str(&year.to_string()),
            Some('m') => out.push_str(&format!("{month:02}")),
            Some('d') => out.push_str(&format!("{day:02}")),
            Some('b') => out.push_str(&MONTHS[(month - 1) as usize][..3]),
            Some('B') => out.push_str(MONTHS[(month - 1) as usize]),
            Some('H') => out.push_str(&format!("{:02}", rem / 3600)),
            Some('M') => out.push_str(&format!("{:02}", rem % 3600 / 60)),
            Some('S') => out.push_str(&format!("{:02}", rem % 60)),
            Some('%') => out.push('%'),
            Some(o) => {
                out.push('%');
                out.push(o);
            }
            None => out.push('%'),
        }
    }
    out
}

impl ChatTemplate {
    /// Compiles a template with the special tokens it may reference.
    pub fn new(source: &str, bos_token: Option<String>, eos_token: Option<String>) -> Result<Self> {
        let mut env = Environment::new();
        // As transformers: trim_blocks, lstrip_blocks, loop controls, no trailing newline.
        let syntax = minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .map_err(|e| LlmError::Template(e.to_string()))?;
        env.set_syntax(syntax);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_filter("tojson", tojson);
        env.add_function("raise_exception", raise_exception);
        env.add_function("strftime_now", strftime_now);
        env.add_template_owned("chat", source.to_string()).map_err(|e| LlmError::Template(e.to_string()))?;
        Ok(Self { env, bos_token: bos_token.unwrap_or_default(), eos_token: eos_token.unwrap_or_default() })
    }

    /// The template from `chat_template.jinja`, else `tokenizer_config.json`'s
    /// `chat_template` (a string, or a list of named templates: `default`).
    /// `Ok(None)` when the model has none (a base model).
    pub fn from_files(files: &ModelFiles) -> Result<Option<Self>> {
        let cfg = match &files.tokenizer_config {
            Some(p) => read_json(p)?,
            None => serde_json::Value::Null,
        };
        let source = match &files.chat_template {
            Some(p) => Some(read_to_string(p)?),
            None => match cfg.get("chat_template") {
                Some(serde_json::Value::String(s)) => Some(s.clone()),
                Some(serde_json::Value::Array(list)) => list
                    .iter()
                    .find(|t| t.get("name").and_then(|n| n.as_str()) == Some("default"))
                    .and_then(|t| t.get("template"))
                    .and_then(|t| t.as_str())
                    .map(str::to_string),
                _ => None,
            },
        };
        source.map(|s| Self::new(&s, special(&cfg, "bos_token"), special(&cfg, "eos_token"))).transpose()
    }

    /// Renders `messages` (objects with `role` and `content`), with extra
    /// template variables from `kwargs` (e.g. `enable_thinking`,
    /// `reasoning_effort`, `date_string`).
    pub fn render(
        &self,
        messages: &serde_json::Value,
        add_generation_prompt: bool,
        kwargs: &serde_json::Value,
    ) -> Result<String> {
        let mut ctx = serde_json::Map::new();
        if let Some(o) = kwargs.as_object() {
            ctx.extend(o.clone());
        }
        ctx.insert("messages".into(), messages.clone());
        ctx.insert("add_generation_prompt".into(), add_generation_prompt.into());
        ctx.insert("bos_token".into(), self.bos_token.clone().into());
        ctx.insert("eos_token".into(), self.eos_token.clone().into());
        let tmpl = self.env.get_template("chat").map_err(|e| LlmError::Template(e.to_string()))?;
        tmpl.render(Value::from(minijinja::value::Serde(&ctx))).map_err(|e| LlmError::Template(format!("{e:#}")))
    }
}

/// A gpt-oss (harmony) reply split into channels.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HarmonyReply {
    /// The `analysis` channel (chain of thought), concatenated.
    pub analysis: String,
    /// The `final` channel (the answer), if the model wrote one.
    pub final_text: Option<String>,
}

/// Parses a harmony completion (the text after the prompt's
/// `<|start|>assistant`): `<|channel|>analysis<|message|>…<|end|><|start|>assistant<|channel|>final<|message|>…<|return|>`.
pub fn parse_harmony(text: &str) -> HarmonyReply {
    let mut reply = HarmonyReply::default();
    for part in text.split("<|start|>") {
        let Some(ch) = part.find("<|channel|>") else { continue };
        let rest = &part[ch + "<|channel|>".len()..];
        let Some(msg) = rest.find("<|message|>") else { continue };
        // The header may carry ` to=...` or `<|constrain|>...` after the channel name.
        let channel = rest[..msg].split(|c: char| c.is_whitespace() || c == '<').next().unwrap_or("");
        let mut body = &rest[msg + "<|message|>".len()..];
        for end in ["<|end|>", "<|return|>", "<|call|>"] {
            if let Some(i) = body.find(end) {
                body = &body[..i];
            }
        }
        match channel {
            "analysis" => reply.analysis.push_str(body),
            "final" => reply.final_text.get_or_insert_with(String::new).push_str(body),
            _ => {}
        }
    }
    reply
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tojson_matches_python_json_dumps() {
        let src =
            r#"{% set x = {"b": [1, "é<", none, true, 2.5], "a": {}} %}{{ x | tojson }}|{{ x | tojson(indent=2) }}"#;
        let t = ChatTemplate::new(src, None, None).unwrap();
        let out = t.render(&json!([]), false, &json!({})).unwrap();
        let want = "{\"b\": [1, \"é<\", null, true, 2.5], \"a\": {}}|{\n  \"b\": [\n    1,\n    \"é<\",\n    null,\n    true,\n    2.5\n  ],\n  \"a\": {}\n}";
        assert_eq!(out, want);
    }

    #[test]
    fn raise_exception_is_an_error() {
        let t = ChatTemplate::new("{{ raise_exception('no system role') }}", None, None).unwrap();
        let e = t.render(&json!([]), false, &json!({})).unwrap_err().to_string();
        assert!(e.contains("no system role"), "{e}");
    }

    #[test]
    fn strftime_formats_known_dates() {
        // 2024-07-26 13:25:09 UTC
        assert_eq!(strftime(1_722_000_309, "%d %b %Y %H:%M:%S %B %m %%"), "26 Jul 2024 13:25:09 July 07 %");
        assert_eq!(strftime(0, "%Y-%m-%d"), "1970-01-01");
    }

    #[test]
    fn harmony_final_channel_is_extracted() {
        let r = parse_harmony(
            "<|channel|>analysis<|message|>2+2 is 4.<|end|><|start|>assistant<|channel|>final<|message|>4<|return|>",
        );
        assert_eq!(r.analysis, "2+2 is 4.");
        assert_eq!(r.final_text.as_deref(), Some("4"));
        let r = parse_harmony("<|channel|>analysis<|message|>thinking forever");
        assert_eq!(r.final_text, None);
        assert_eq!(r.analysis, "thinking forever");
    }
}
