//! Chat templates (feature `chat`): a model folder's Jinja `chat_template` rendered as
//! transformers' `apply_chat_template` renders it, with `minijinja`.
//!
//! The template comes from `chat_template.jinja` (transformers ≥ 4.43 writes it) or from
//! `tokenizer_config.json`'s `chat_template` (a string, or a list of `{name, template}` of
//! which `default` is used). The environment is transformers': `trim_blocks` and
//! `lstrip_blocks`, loop controls, Python string and dict methods (`strip`, `startswith`,
//! `items`, …), `raise_exception(msg)`, `strftime_now(fmt)`, a `tojson` that writes what
//! Python's `json.dumps(ensure_ascii=False)` writes, and the special tokens of
//! tokenizer_config.json (`bos_token`, `eos_token`, …) as variables. The rendered text is
//! tokenized without adding special tokens (the template writes them), as transformers does.

use crate::error::{Error, Result};
use crate::models::files::ModelFiles;
use minijinja::value::Kwargs;
use minijinja::{Environment, ErrorKind, Value};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// One message of a conversation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant` (the template decides what it accepts).
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> ChatMessage {
        ChatMessage {
            role: role.into(),
            content: content.into(),
        }
    }
}

/// The special-token fields of tokenizer_config.json passed to the template.
const SPECIAL_TOKENS: [&str; 7] = [
    "bos_token",
    "eos_token",
    "unk_token",
    "pad_token",
    "sep_token",
    "cls_token",
    "mask_token",
];

/// Largest template source accepted (the biggest published ones are ~20 KB).
const MAX_TEMPLATE_BYTES: usize = 1 << 20;

/// Template instructions one rendering may run: a template that loops without end (or for
/// absurdly long) fails instead of hanging the caller. Published templates take a few
/// thousand per message.
const FUEL: u64 = 50_000_000;

/// A compiled chat template and the variables it is rendered with.
pub struct ChatTemplate {
    env: Environment<'static>,
    /// Where the template came from, for messages.
    path: PathBuf,
    special: Vec<(String, String)>,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("path", &self.path)
            .field("special", &self.special)
            .finish()
    }
}

impl ChatTemplate {
    /// The folder's chat template; [`Error::ChatTemplate`] when it has none or it does not
    /// compile.
    pub fn from_files(files: &ModelFiles) -> Result<ChatTemplate> {
        Self::find(files)?.ok_or_else(|| Error::ChatTemplate {
            path: files.path("tokenizer_config.json"),
            msg: "this model has no chat template (no chat_template in tokenizer_config.json \
                  and no chat_template.jinja); it is not a chat model — use `generate` with a \
                  plain prompt"
                .into(),
        })
    }

    /// The folder's chat template, `None` when it has none.
    pub fn find(files: &ModelFiles) -> Result<Option<ChatTemplate>> {
        let config_name = "tokenizer_config.json";
        let config: Option<serde_json::Value> = files.json(config_name)?;
        let config_path = files.path(config_name);
        let bad = |msg: String| Error::ChatTemplate {
            path: config_path.clone(),
            msg,
        };
        let special = match &config {
            Some(c) => special_tokens(c).map_err(bad)?,
            None => Vec::new(),
        };
        if let Some(source) = files.text("chat_template.jinja")? {
            return Self::new(source, files.path("chat_template.jinja"), special).map(Some);
        }
        let field = config.as_ref().and_then(|c| c.get("chat_template"));
        let source = match field {
            None | Some(serde_json::Value::Null) => return Ok(None),
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Array(list)) => {
                let named = |want: &str| {
                    list.iter().find_map(|t| {
                        (t.get("name")?.as_str()? == want)
                            .then(|| t.get("template")?.as_str().map(str::to_string))?
                    })
                };
                named("default").ok_or_else(|| {
                    bad("chat_template is a list of named templates without a 'default' one".into())
                })?
            }
            Some(other) => {
                return Err(bad(format!(
                    "chat_template must be a string or a list of {{name, template}}, not {other}"
                )))
            }
        };
        Self::new(source, config_path, special).map(Some)
    }

    /// Compiles `source` (with `special`: variable name → token text).
    pub fn new(
        source: String,
        path: impl Into<PathBuf>,
        special: Vec<(String, String)>,
    ) -> Result<ChatTemplate> {
        let path = path.into();
        if source.len() > MAX_TEMPLATE_BYTES {
            return Err(Error::ChatTemplate {
                path,
                msg: format!(
                    "the template is {} bytes, over the {MAX_TEMPLATE_BYTES}-byte limit",
                    source.len()
                ),
            });
        }
        let mut env = Environment::new();
        env.set_syntax(
            minijinja::syntax::SyntaxConfig::builder()
                .trim_blocks(true)
                .lstrip_blocks(true)
                .build()
                .expect("default delimiters"),
        );
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.set_fuel(Some(FUEL));
        env.add_function("raise_exception", raise_exception);
        env.add_function("strftime_now", strftime_now);
        env.add_filter("tojson", tojson);
        env.add_template_owned("chat_template", source)
            .map_err(|e| Error::ChatTemplate {
                path: path.clone(),
                msg: format!("the template does not compile: {e}"),
            })?;
        Ok(ChatTemplate { env, path, special })
    }

    /// Where the template came from.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// The prompt text for `messages`; with `add_generation_prompt` it ends where the
    /// assistant's reply begins. A template that raises (`raise_exception`, an undefined
    /// method) is an [`Error::ChatTemplate`] with its message.
    pub fn render(&self, messages: &[ChatMessage], add_generation_prompt: bool) -> Result<String> {
        if messages.is_empty() {
            return Err(Error::InvalidArgument(
                "a chat needs at least one message".into(),
            ));
        }
        let msgs: Vec<Value> = messages
            .iter()
            .map(|m| {
                Value::from_pairs([
                    ("role", Value::from(m.role.as_str())),
                    ("content", Value::from(m.content.as_str())),
                ])
            })
            .collect();
        let mut vars: Vec<(String, Value)> = vec![
            ("messages".into(), Value::from(msgs)),
            (
                "add_generation_prompt".into(),
                Value::from(add_generation_prompt),
            ),
            ("tools".into(), Value::from(())),
            ("documents".into(), Value::from(())),
        ];
        vars.extend(
            self.special
                .iter()
                .map(|(k, v)| (k.clone(), Value::from(v.as_str()))),
        );
        let t = self
            .env
            .get_template("chat_template")
            .expect("added at construction");
        t.render(Value::from_pairs(vars))
            .map_err(|e| Error::ChatTemplate {
                path: self.path.clone(),
                msg: match e.kind() {
                    ErrorKind::OutOfFuel => format!(
                        "the template ran more than {FUEL} steps on this conversation (a loop \
                         without end?)"
                    ),
                    ErrorKind::InvalidOperation if e.detail().is_some() => {
                        format!(
                            "the template refused the conversation: {}",
                            e.detail().unwrap_or("")
                        )
                    }
                    _ => format!("the template failed to render: {e}"),
                },
            })
    }
}

/// The special tokens of a tokenizer_config.json: each a string or an AddedToken object
/// (`{"content": ...}`).
fn special_tokens(
    config: &serde_json::Value,
) -> std::result::Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for name in SPECIAL_TOKENS {
        let text = match config.get(name) {
            None | Some(serde_json::Value::Null) => continue,
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(v) => match v.get("content").and_then(|c| c.as_str()) {
                Some(s) => s.to_string(),
                None => {
                    return Err(format!(
                        "{name} must be a string or {{\"content\": ...}}, not {v}"
                    ))
                }
            },
        };
        out.push((name.to_string(), text));
    }
    Ok(out)
}

/// `raise_exception(msg)`: the template refuses the conversation.
fn raise_exception(msg: String) -> std::result::Result<Value, minijinja::Error> {
    Err(minijinja::Error::new(ErrorKind::InvalidOperation, msg))
}

/// `x | tojson(indent=None, sort_keys=False)` as Python's `json.dumps(x, ensure_ascii=False)`
/// writes it (", " and ": " separators; with `indent`, newlines and "," between items).
fn tojson(v: Value, kwargs: Kwargs) -> std::result::Result<Value, minijinja::Error> {
    let indent: Option<usize> = kwargs.get("indent")?;
    let sort_keys: Option<bool> = kwargs.get("sort_keys")?;
    kwargs.assert_all_used()?;
    let mut out = String::new();
    write_json(&mut out, &v, indent, sort_keys.unwrap_or(false), 0)?;
    Ok(Value::from_safe_string(out))
}

fn write_json(
    out: &mut String,
    v: &Value,
    indent: Option<usize>,
    sort: bool,
    depth: usize,
) -> std::result::Result<(), minijinja::Error> {
    use minijinja::value::ValueKind;
    let newline = |out: &mut String, d: usize| {
        if let Some(n) = indent {
            out.push('\n');
            out.push_str(&" ".repeat(n * d));
        }
    };
    let item_sep = if indent.is_some() { "," } else { ", " };
    match v.kind() {
        ValueKind::Undefined | ValueKind::None => out.push_str("null"),
        ValueKind::Bool => out.push_str(if v.is_true() { "true" } else { "false" }),
        ValueKind::Number => {
            if let Some(i) = v.as_i64() {
                out.push_str(&i.to_string());
            } else {
                let f = f64::try_from(v.clone()).unwrap_or(f64::NAN);
                out.push_str(&python_float(f));
            }
        }
        ValueKind::String => json_string(out, v.as_str().unwrap_or("")),
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<Value> = v.try_iter()?.collect();
            if items.is_empty() {
                out.push_str("[]");
                return Ok(());
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                newline(out, depth + 1);
                write_json(out, item, indent, sort, depth + 1)?;
            }
            newline(out, depth);
            out.push(']');
        }
        ValueKind::Map => {
            let mut keys: Vec<Value> = v.try_iter()?.collect();
            if sort {
                keys.sort();
            }
            if keys.is_empty() {
                out.push_str("{}");
                return Ok(());
            }
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                newline(out, depth + 1);
                json_string(out, &k.to_string());
                out.push_str(": ");
                write_json(out, &v.get_item(k)?, indent, sort, depth + 1)?;
            }
            newline(out, depth);
            out.push('}');
        }
        _ => {
            return Err(minijinja::Error::new(
                ErrorKind::InvalidOperation,
                format!("tojson: cannot write a {} as JSON", v.kind()),
            ))
        }
    }
    Ok(())
}

/// A float as Python's `repr` writes it in JSON (`1.0`, `0.1`, `1e-07`, `NaN`).
fn python_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let a = f.abs();
    if a != 0.0 && !(1e-4..1e16).contains(&a) {
        // Python: 1e-07, 1.5e+16.
        let s = format!("{f:e}");
        let (m, e) = s.split_once('e').expect("exponent form");
        let e: i32 = e.parse().expect("integer exponent");
        return format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs());
    }
    let s = format!("{f}");
    if s.contains('.') {
        s
    } else {
        format!("{s}.0")
    }
}

/// A JSON string as Python writes it with `ensure_ascii=False`.
fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `strftime_now(fmt)`: the current UTC time in a `strftime` format (the codes the published
/// templates use: %d %m %Y %y %b %B %a %A %H %M %S %j %e %%); another code is an error.
fn strftime_now(fmt: String) -> std::result::Result<Value, minijinja::Error> {
    let secs = web_time::SystemTime::now()
        .duration_since(web_time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    strftime(&fmt, secs).map(Value::from)
}

/// `fmt` for the UTC time `secs` after the Unix epoch.
fn strftime(fmt: &str, secs: u64) -> std::result::Result<String, minijinja::Error> {
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
    const DAYS: [&str; 7] = [
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
        "Monday",
        "Tuesday",
        "Wednesday",
    ];
    let days = (secs / 86400) as i64;
    let tod = secs % 86400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy_mar = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy_mar + 2) / 153;
    let day = doy_mar - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let before = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334][(month - 1) as usize];
    let yday = before + day + i64::from(leap && month > 2);
    let weekday = DAYS[(days.rem_euclid(7)) as usize];
    let mname = MONTHS[(month - 1) as usize];
    let mut out = String::new();
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('d') => out.push_str(&format!("{day:02}")),
            Some('e') => out.push_str(&format!("{day:>2}")),
            Some('m') => out.push_str(&format!("{month:02}")),
            Some('Y') => out.push_str(&year.to_string()),
            Some('y') => out.push_str(&format!("{:02}", year % 100)),
            Some('b') => out.push_str(&mname[..3]),
            Some('B') => out.push_str(mname),
            Some('a') => out.push_str(&weekday[..3]),
            Some('A') => out.push_str(weekday),
            Some('H') => out.push_str(&format!("{:02}", tod / 3600)),
            Some('M') => out.push_str(&format!("{:02}", tod / 60 % 60)),
            Some('S') => out.push_str(&format!("{:02}", tod % 60)),
            Some('j') => out.push_str(&format!("{yday:03}")),
            Some('%') => out.push('%'),
            other => {
                return Err(minijinja::Error::new(
                    ErrorKind::InvalidOperation,
                    format!(
                        "strftime_now: the format code %{} is not supported",
                        other.map_or(String::new(), String::from)
                    ),
                ))
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strftime_matches_known_dates() {
        // 2024-02-29 13:05:09 UTC, a Thursday; 1970-01-01 was a Thursday.
        let t = 1_709_211_909;
        assert_eq!(
            strftime("%d %b %Y %H:%M:%S %a %j %B %y %m %%", t).unwrap(),
            "29 Feb 2024 13:05:09 Thu 060 February 24 02 %"
        );
        assert_eq!(strftime("%A %d %m %Y", 0).unwrap(), "Thursday 01 01 1970");
        assert_eq!(strftime("%d %b %Y", 1_798_761_600).unwrap(), "01 Jan 2027");
        assert!(strftime("%Q", 0).is_err());
    }

    #[test]
    fn special_tokens_and_named_templates_are_read() {
        let cfg = serde_json::json!({
            "bos_token": {"__type": "AddedToken", "content": "<s>", "lstrip": false},
            "eos_token": "</s>",
            "pad_token": null,
            "chat_template": [
                {"name": "tool_use", "template": "tools"},
                {"name": "default", "template": "{{ bos_token }}{{ messages[0].content }}{{ eos_token }}"},
            ],
        });
        let files =
            ModelFiles::new("m").with("tokenizer_config.json", cfg.to_string().into_bytes());
        let t = ChatTemplate::from_files(&files).unwrap();
        let out = t.render(&[ChatMessage::new("user", "hi")], false).unwrap();
        assert_eq!(out, "<s>hi</s>");
        let bad = serde_json::json!({"bos_token": 3, "chat_template": "x"});
        let files =
            ModelFiles::new("m").with("tokenizer_config.json", bad.to_string().into_bytes());
        let e = ChatTemplate::from_files(&files).unwrap_err().to_string();
        assert!(e.contains("bos_token must be a string"), "{e}");
        let none = ModelFiles::new("m").with("tokenizer_config.json", b"{}".to_vec());
        assert!(ChatTemplate::find(&none).unwrap().is_none());
        let e = ChatTemplate::from_files(&none).unwrap_err().to_string();
        assert!(e.contains("no chat template"), "{e}");
    }

    #[test]
    fn tojson_writes_what_python_writes() {
        let v = Value::from_pairs([
            ("name", Value::from("f\"x\n")),
            ("n", Value::from(3)),
            ("x", Value::from(0.5)),
            ("l", Value::from(vec![Value::from(true), Value::from(())])),
        ]);
        let mut s = String::new();
        write_json(&mut s, &v, None, false, 0).unwrap();
        assert_eq!(
            s,
            r#"{"name": "f\"x\n", "n": 3, "x": 0.5, "l": [true, null]}"#
        );
        let mut s = String::new();
        write_json(&mut s, &v, Some(2), false, 0).unwrap();
        assert_eq!(
            s,
            "{\n  \"name\": \"f\\\"x\\n\",\n  \"n\": 3,\n  \"x\": 0.5,\n  \"l\": [\n    true,\n    null\n  ]\n}"
        );
        assert_eq!(python_float(1e-7), "1e-07");
        assert_eq!(python_float(2.0), "2.0");
    }
}
