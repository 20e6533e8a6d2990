//! Chat templates against transformers' `apply_chat_template` (tools/fixtures/gen_chat.py,
//! gen_llama.py): the rendered text of four published template families over several
//! conversations, the prompt ids and greedy reply of the Llama / Qwen2 fixtures' chat, the
//! `chat` CLI (one turn and interactive), and the typed refusals.

mod common;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use wgpu_infer::chat::{ChatMessage, ChatTemplate};
use wgpu_infer::models::generate::GenerateOptions;
use wgpu_infer::models::{CausalLm, ModelFiles};
use wgpu_infer::weights::Weights;
use wgpu_infer::Error;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn messages(v: &serde_json::Value) -> Vec<ChatMessage> {
    serde_json::from_value(v.clone()).unwrap()
}

#[test]
fn templates_render_as_transformers_renders_them() {
    let d = json(&fixtures().join("chat/templates.json"));
    let special: Vec<(String, String)> = d["special"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect();
    let (mut same, mut refused) = (0, 0);
    for case in d["cases"].as_array().unwrap() {
        let name = case["template"].as_str().unwrap();
        let src = d["templates"][name].as_str().unwrap().to_string();
        let t = ChatTemplate::new(src, name, special.clone()).unwrap();
        let gen = case["add_generation_prompt"].as_bool().unwrap();
        let got = t.render(&messages(&case["messages"]), gen);
        match (case.get("text"), got) {
            (Some(want), Ok(text)) => {
                assert_eq!(text, want.as_str().unwrap(), "{name} gen={gen} {case}");
                same += 1;
            }
            (None, Err(Error::ChatTemplate { msg, .. })) => {
                let want = case["error"].as_str().unwrap();
                assert!(msg.contains(want), "{name}: {msg} vs {want}");
                assert!(msg.contains("refused the conversation"), "{msg}");
                refused += 1;
            }
            (want, got) => panic!("{name} gen={gen}: want {want:?}, got {got:?}"),
        }
    }
    println!("{same} renderings identical to transformers', {refused} refusals identical");
    assert!(same >= 30 && refused >= 2);
}

/// The fixtures' chat: the prompt ids transformers' apply_chat_template gives, and the greedy
/// reply of transformers' generate (the folder's own EOS ids), on every backend.
fn chat_case(name: &str) {
    let dir = fixtures().join("llama").join(name);
    let r = Weights::open(dir.join("reference.safetensors")).unwrap();
    let ids = |k: &str| r.get_u32(k).unwrap().as_u32().unwrap().to_vec();
    let (want_prompt, want_reply) = (ids("chat.prompt"), ids("chat.tokens"));
    let conv = messages(&json(&dir.join("reference.json"))["chat"]);
    let files = ModelFiles::open(&dir).unwrap();
    let t = ChatTemplate::from_files(&files).unwrap();
    let text = t.render(&conv, true).unwrap();
    assert!(text.ends_with("<|im_start|>assistant\n"), "{text:?}");
    for backend in common::model_backends() {
        let label = common::label(&backend);
        let m = CausalLm::from_files(backend.clone(), &files, &Default::default()).unwrap();
        assert!(matches!(m, CausalLm::Llama(_)));
        let prompt = m.tokenize(&text).unwrap();
        assert_eq!(prompt, want_prompt, "{name}: chat prompt ids");
        let opts = GenerateOptions {
            max_new_tokens: 16,
            ..Default::default()
        };
        let g = m.generate_ids(&prompt, &opts, |_| true).unwrap();
        assert_eq!(g.tokens, want_reply, "{name} {label}: greedy reply");
    }
}

#[test]
fn llama_chat_matches_transformers() {
    chat_case("tiny_llama");
}

#[test]
fn qwen2_chat_matches_transformers() {
    chat_case("tiny_qwen2");
}

fn cli() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wgpu-infer"))
}

fn tokens(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_u64().unwrap() as u32)
        .collect()
}

/// `chat --message` gives transformers' reply; interactive `chat` keeps the conversation (its
/// second reply is the library's reply to the whole history).
#[test]
fn chat_cli_one_turn_and_interactive() {
    let dir = fixtures().join("llama/tiny_qwen2");
    let r = Weights::open(dir.join("reference.safetensors")).unwrap();
    let want = r.get_u32("chat.tokens").unwrap().as_u32().unwrap().to_vec();
    let conv = messages(&json(&dir.join("reference.json"))["chat"]);
    let (system, user) = (&conv[0].content, &conv[1].content);
    let out = cli()
        .args(["chat", "--quiet", "--json", "--max-new-tokens", "16"])
        .args(["--system", system, "--message", user, "--model"])
        .arg(&dir)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(tokens(&v["tokens"]), want);

    // Interactive: two turns on stdin (a blank line and /reset-free), replies on stdout.
    let second = "And the lazy dog?";
    let mut child = cli()
        .args(["chat", "--quiet", "--max-new-tokens", "8"])
        .args(["--system", system, "--model"])
        .arg(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "{user}\n\n{second}\n/exit\nnot read").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The library, turn by turn.
    let files = ModelFiles::open(&dir).unwrap();
    let t = ChatTemplate::from_files(&files).unwrap();
    let m = CausalLm::from_files(
        wgpu_infer::Backend::Gpu(common::device()),
        &files,
        &Default::default(),
    )
    .unwrap();
    let opts = GenerateOptions {
        max_new_tokens: 8,
        ..Default::default()
    };
    let mut history = conv.clone();
    let mut expect = String::new();
    for turn in 0..2 {
        if turn == 1 {
            history.push(ChatMessage::new("user", second));
        }
        let ids = m.tokenize(&t.render(&history, true).unwrap()).unwrap();
        let g = m.generate_ids(&ids, &opts, |_| true).unwrap();
        expect.push_str(&g.text);
        expect.push('\n');
        history.push(ChatMessage::new("assistant", g.text.trim()));
    }
    assert_eq!(String::from_utf8_lossy(&out.stdout), expect);
}

/// A folder without a template, a template that refuses the conversation, one that does not
/// compile, and an empty message: typed errors and a non-zero exit, before anything runs.
#[test]
fn chat_refusals_are_typed() {
    let run = |dir: &Path, msg: &str| {
        let out = cli()
            .args(["chat", "--quiet", "--message", msg, "--model"])
            .arg(dir)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{}", dir.display());
        assert!(out.stdout.is_empty());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let e = run(&fixtures().join("gpt2/tiny_a"), "hi");
    assert!(e.contains("has no chat template"), "{e}");
    let e = run(&fixtures().join("llama/tiny_llama"), "  ");
    assert!(e.contains("--message is empty"), "{e}");

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("m");
    common::copy_dir(&fixtures().join("llama/tiny_llama"), &dir);
    let cfg = dir.join("tokenizer_config.json");
    let mut v = json(&cfg);
    v["chat_template"] =
        "{% if messages|length < 3 %}{{ raise_exception('needs three turns') }}{% endif %}".into();
    std::fs::write(&cfg, v.to_string()).unwrap();
    let e = run(&dir, "hi");
    assert!(
        e.contains("refused the conversation: needs three turns"),
        "{e}"
    );
    v["chat_template"] = "{% for m in messages %}{{ m.content }".into();
    std::fs::write(&cfg, v.to_string()).unwrap();
    let e = run(&dir, "hi");
    assert!(e.contains("does not compile"), "{e}");
    v["chat_template"] = serde_json::json!(42);
    std::fs::write(&cfg, v.to_string()).unwrap();
    let e = run(&dir, "hi");
    assert!(e.contains("must be a string"), "{e}");
    // chat_template.jinja wins over tokenizer_config.json.
    std::fs::write(dir.join("chat_template.jinja"), "{{ undefined_fn() }}").unwrap();
    let files = ModelFiles::open(&dir).unwrap();
    let t = ChatTemplate::from_files(&files).unwrap();
    assert!(t.path().ends_with("chat_template.jinja"));
    let e = t
        .render(&[ChatMessage::new("user", "x")], true)
        .unwrap_err();
    assert!(e.to_string().contains("failed to render"), "{e}");
    assert!(t.render(&[], true).is_err());
    // A template that never ends fails instead of hanging.
    let t = ChatTemplate::new(
        "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}".into(),
        "loop",
        Vec::new(),
    )
    .unwrap();
    let e = t
        .render(&[ChatMessage::new("user", "x")], true)
        .unwrap_err();
    assert!(e.to_string().contains("ran more than"), "{e}");
}
