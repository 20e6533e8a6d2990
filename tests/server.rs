//! `wgpu-infer serve` over real HTTP: the binary runs on an ephemeral loopback port and the
//! tests talk to it with an HTTP client (reqwest) and an SSE parser (eventsource-stream).
//! Answers are compared with the library called in this process and with the PyTorch
//! references; every error code, batching under 200 concurrent requests, a client leaving
//! mid-stream, and SIGTERM with requests in flight are checked. Needs a GPU adapter (on a
//! headless box: `apt-get install -y mesa-vulkan-drivers libvulkan1`) and the models of
//! `bash tools/fetch_minilm.sh` and `bash tools/fetch_assets.sh`.

#![recursion_limit = "256"]

mod common;
use base64::Engine;
use futures_util::StreamExt;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wgpu_infer::models::gpt2::{GenerateOptions, Gpt2};
use wgpu_infer::models::sampling::Sampling;
use wgpu_infer::models::{Bert, Vit, Yolo};
use wgpu_infer::Backend;

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// A running server process, killed when dropped.
struct Server {
    child: Option<Child>,
    base: String,
    log: Arc<Mutex<String>>,
}

impl Server {
    /// Starts `wgpu-infer serve --port 0 ARGS` and waits until `/health` answers 200.
    async fn start(args: &[String]) -> Server {
        let mut server = Self::spawn(args);
        server.wait_ready().await;
        server
    }

    fn spawn(args: &[String]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_wgpu-infer"))
            .args(["serve", "--port", "0"])
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start wgpu-infer serve");
        let log = Arc::new(Mutex::new(String::new()));
        let mut err = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let out = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(out).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(120))
            .unwrap_or_default();
        let base = match line.trim().strip_prefix("listening on ") {
            Some(b) => b.to_string(),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                std::thread::sleep(Duration::from_millis(200));
                panic!(
                    "the server did not start (stdout {line:?}); its log:\n{}",
                    log.lock().unwrap()
                );
            }
        };
        Server {
            child: Some(child),
            base,
            log,
        }
    }

    async fn wait_ready(&mut self) {
        let t0 = Instant::now();
        loop {
            if let Some(Ok(Some(st))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!(
                    "the server exited ({st}) before it was ready; its log:\n{}",
                    self.log()
                );
            }
            if let Ok(r) = reqwest::get(self.url("/health")).await {
                if r.status() == 200 {
                    return;
                }
            }
            assert!(
                t0.elapsed() < Duration::from_secs(180),
                "the server was not ready after 180 s; its log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Waits for the process to exit by itself.
    fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        let t0 = Instant::now();
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                return st;
            }
            if t0.elapsed() > limit {
                let _ = child.kill();
                panic!(
                    "the server did not exit within {limit:?}; its log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(300))
        .build()
        .unwrap()
}

async fn post(
    c: &reqwest::Client,
    url: String,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    let r = c.post(url).json(&body).send().await.expect("request");
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    let v = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text:?}"));
    (status, v)
}

/// An error answer: the status and TEI's `{error, error_type}`.
async fn expect_error(
    c: &reqwest::Client,
    url: String,
    body: serde_json::Value,
    status: u16,
    error_type: &str,
) -> String {
    let (st, v) = post(c, url.clone(), body.clone()).await;
    assert_eq!(st, status, "{url} {body}: {v}");
    assert_eq!(v["error_type"], error_type, "{url} {body}: {v}");
    let msg = v["error"].as_str().expect("an error message").to_string();
    assert!(!msg.is_empty());
    msg
}

fn max_diff(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .flat_map(|(x, y)| {
            assert_eq!(x.len(), y.len());
            x.iter().zip(y).map(|(p, q)| (p - q).abs())
        })
        .fold(0.0, f32::max)
}

fn floats(v: &serde_json::Value) -> Vec<Vec<f32>> {
    serde_json::from_value(v.clone()).expect("[[f32]]")
}

/// A GPT-2 folder big enough that a generation lasts seconds (random weights, 1024
/// positions, the tiny fixture's tokenizer).
fn long_gpt2(dir: &Path) -> PathBuf {
    use safetensors::tensor::{Dtype, TensorView};
    let (e, layers, positions, vocab) = (256usize, 6usize, 1024usize, 420usize);
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("gpt2/tiny_a/config.json")).unwrap())
            .unwrap();
    cfg["n_embd"] = e.into();
    cfg["n_layer"] = layers.into();
    cfg["n_head"] = 4.into();
    cfg["n_positions"] = positions.into();
    cfg["n_ctx"] = positions.into();
    cfg["eos_token_id"] = serde_json::Value::Null; // never stops early
    cfg["bos_token_id"] = serde_json::Value::Null;
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("config.json"), cfg.to_string()).unwrap();
    std::fs::copy(
        fixture("gpt2/tiny_a/tokenizer.json"),
        dir.join("tokenizer.json"),
    )
    .unwrap();
    let mut shapes: Vec<(String, Vec<usize>)> = vec![
        ("wte.weight".into(), vec![vocab, e]),
        ("wpe.weight".into(), vec![positions, e]),
        ("ln_f.weight".into(), vec![e]),
        ("ln_f.bias".into(), vec![e]),
    ];
    for l in 0..layers {
        let p = |n: &str| format!("h.{l}.{n}");
        shapes.extend([
            (p("ln_1.weight"), vec![e]),
            (p("ln_1.bias"), vec![e]),
            (p("ln_2.weight"), vec![e]),
            (p("ln_2.bias"), vec![e]),
            (p("attn.c_attn.weight"), vec![e, 3 * e]),
            (p("attn.c_attn.bias"), vec![3 * e]),
            (p("attn.c_proj.weight"), vec![e, e]),
            (p("attn.c_proj.bias"), vec![e]),
            (p("mlp.c_fc.weight"), vec![e, 4 * e]),
            (p("mlp.c_fc.bias"), vec![4 * e]),
            (p("mlp.c_proj.weight"), vec![4 * e, e]),
            (p("mlp.c_proj.bias"), vec![e]),
        ]);
    }
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let data: Vec<(String, Vec<usize>, Vec<u8>)> = shapes
        .into_iter()
        .map(|(name, shape)| {
            let n: usize = shape.iter().product();
            let ln_weight = name.contains("ln_") && name.ends_with("weight");
            let vals: Vec<f32> = (0..n)
                .map(|_| {
                    if ln_weight {
                        return 1.0;
                    }
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.1
                })
                .collect();
            (name, shape, bytemuck::cast_slice(&vals).to_vec())
        })
        .collect();
    let views: Vec<(String, TensorView)> = data
        .iter()
        .map(|(n, s, b)| {
            (
                n.clone(),
                TensorView::new(Dtype::F32, s.clone(), b).unwrap(),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, None, &dir.join("model.safetensors")).unwrap();
    dir.to_path_buf()
}

/// The parsed SSE events of a completion stream (data fields), read to the end.
async fn sse_events(resp: reqwest::Response) -> Vec<String> {
    assert_eq!(resp.status(), 200);
    let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("text/event-stream"), "content type {ct}");
    use eventsource_stream::Eventsource;
    let mut events = resp.bytes_stream().eventsource();
    let mut out = Vec::new();
    while let Some(ev) = events.next().await {
        out.push(ev.expect("a well-formed SSE event").data);
    }
    out
}

/// Every endpoint answers what the library computes in this process (and the embeddings
/// what sentence-transformers computes).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn endpoints_answer_what_the_library_computes() {
    let minilm = common::minilm_dir();
    let assets = common::assets();
    let (gpt2_dir, vit_dir, yolo_dir) = (
        fixture("gpt2/tiny_a"),
        fixture("vit/tiny_cls"),
        fixture("yolo/yolov8n"),
    );
    let srv = Server::start(&[
        "--embed-model".into(),
        s(&minilm),
        "--generate-model".into(),
        s(&gpt2_dir),
        "--classify-model".into(),
        s(&vit_dir),
        "--detect-model".into(),
        s(&yolo_dir),
        "--rerank-model".into(),
        s(&fixture("bert/rerank_a")),
    ])
    .await;
    let c = client();
    let backend = Backend::Gpu(common::device());

    // /health, /info, /v1/models
    let h = c.get(srv.url("/health")).send().await.unwrap();
    assert_eq!(h.status(), 200);
    let info: serde_json::Value = c
        .get(srv.url("/info"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["model_id"], "all-MiniLM-L6-v2");
    assert_eq!(info["max_input_length"], 256);
    assert_eq!(info["models"]["embed"]["dim"], 384);
    let models: serde_json::Value = c
        .get(srv.url("/v1/models"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(models["object"], "list");
    assert_eq!(models["data"].as_array().unwrap().len(), 5);

    // /embed: the library's embeddings, and sentence-transformers' within 2e-5.
    let sentences = common::minilm_sentences();
    let refs: Vec<&str> = sentences.iter().map(String::as_str).collect();
    let mut bert = Bert::load(backend.clone(), &minilm).unwrap();
    let want = bert.embed(&refs).unwrap();
    let mut got = Vec::new();
    for chunk in sentences.chunks(8) {
        let (st, v) = post(
            &c,
            srv.url("/embed"),
            serde_json::json!({"inputs": chunk, "truncate": true}),
        )
        .await;
        assert_eq!(st, 200, "{v}");
        got.extend(floats(&v));
    }
    let d = max_diff(&got, &want);
    println!("/embed vs library: max abs diff {d:e}");
    assert!(d <= 1e-6, "/embed differs from the library by {d}");
    let st_ref =
        wgpu_infer::weights::Weights::open(fixture("minilm/reference.safetensors")).unwrap();
    let st_ref = st_ref.get("embeddings").unwrap();
    let st_ref: Vec<Vec<f32>> = st_ref
        .as_f32()
        .unwrap()
        .chunks(384)
        .map(<[f32]>::to_vec)
        .collect();
    let d = max_diff(&got, &st_ref);
    println!("/embed vs sentence-transformers: max abs diff {d:e}");
    assert!(
        d <= 2e-5,
        "/embed differs from sentence-transformers by {d}"
    );
    // A single string, and normalize: false.
    let (_, one) = post(
        &c,
        srv.url("/embed"),
        serde_json::json!({"inputs": "hello", "normalize": false}),
    )
    .await;
    bert.set_normalize(false);
    let raw = bert.embed(&["hello"]).unwrap();
    assert!(max_diff(&floats(&one), &raw) <= 1e-6);
    let norm: f32 = raw[0].iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!(
        (norm - 1.0).abs() > 1e-3,
        "MiniLM's raw mean pooling is not unit length"
    );

    // /v1/embeddings: float, base64 (little-endian f32), dimensions, usage.
    let texts = [
        "The cat sits on the mat.",
        "A man is playing a guitar on stage.",
    ];
    let (st, v) = post(
        &c,
        srv.url("/v1/embeddings"),
        serde_json::json!({"input": texts, "model": "x"}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["object"], "list");
    assert_eq!(v["model"], "all-MiniLM-L6-v2");
    let data = v["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data[1]["index"], 1);
    assert_eq!(data[0]["object"], "embedding");
    let fl: Vec<Vec<f32>> = data
        .iter()
        .map(|d| serde_json::from_value(d["embedding"].clone()).unwrap())
        .collect();
    bert.set_normalize(true);
    assert!(max_diff(&fl, &bert.embed(&texts).unwrap()) <= 1e-6);
    let tokens: usize = bert
        .tokenize(&texts)
        .unwrap()
        .attention_mask
        .iter()
        .map(|&m| m as usize)
        .sum();
    assert_eq!(v["usage"]["prompt_tokens"], tokens);
    assert_eq!(v["usage"]["total_tokens"], tokens);
    let (_, b64) = post(
        &c,
        srv.url("/v1/embeddings"),
        serde_json::json!({"input": texts, "encoding_format": "base64"}),
    )
    .await;
    let dec: Vec<Vec<f32>> = b64["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(d["embedding"].as_str().unwrap())
                .unwrap();
            bytes
                .chunks(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect()
        })
        .collect();
    assert_eq!(dec, fl, "base64 carries the same floats");
    let (_, cut) = post(
        &c,
        srv.url("/v1/embeddings"),
        serde_json::json!({"input": texts[0], "dimensions": 16}),
    )
    .await;
    let cut: Vec<f32> = serde_json::from_value(cut["data"][0]["embedding"].clone()).unwrap();
    assert_eq!(cut.len(), 16);
    let n: f32 = fl[0][..16].iter().map(|x| x * x).sum::<f32>().sqrt();
    let want_cut: Vec<f32> = fl[0][..16].iter().map(|x| x / n).collect();
    assert!(max_diff(&[cut], &[want_cut]) <= 1e-6);

    // /tokenize: the tokenizer's ids, texts at the byte offsets, special tokens flagged.
    let (st, tk) = post(
        &c,
        srv.url("/tokenize"),
        serde_json::json!({"inputs": "Hello, wörld!"}),
    )
    .await;
    assert_eq!(st, 200);
    let toks = tk[0].as_array().unwrap();
    let ids: Vec<u32> = toks
        .iter()
        .map(|t| t["id"].as_u64().unwrap() as u32)
        .collect();
    assert_eq!(ids, bert.tokenize(&["Hello, wörld!"]).unwrap().input_ids);
    assert_eq!(toks[0]["special"], true);
    assert_eq!(toks[3]["text"], "wörld");
    assert_eq!(toks[3]["start"], 7);
    assert_eq!(toks[3]["stop"], 13);

    // /v1/completions: greedy text as the library generates it; stop sequences; SSE.
    let gpt2 = Gpt2::load(backend.clone(), &gpt2_dir).unwrap();
    let opts = GenerateOptions {
        max_new_tokens: 20,
        sampling: Sampling::default(),
        stop_at_eos: true,
    };
    let lib = gpt2.generate("Once upon a time", &opts, |_| true).unwrap();
    let body =
        serde_json::json!({"prompt": "Once upon a time", "max_tokens": 20, "temperature": 0});
    let (st, v) = post(&c, srv.url("/v1/completions"), body.clone()).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["object"], "text_completion");
    assert_eq!(v["choices"][0]["text"], lib.text.as_str());
    let finish = if lib.stopped_at_eos { "stop" } else { "length" };
    assert_eq!(v["choices"][0]["finish_reason"], finish);
    assert_eq!(v["usage"]["prompt_tokens"], lib.prompt_tokens.len());
    assert_eq!(v["usage"]["completion_tokens"], lib.tokens.len());
    // A stop sequence: the text ends before it, finish_reason "stop".
    let chars: Vec<char> = lib.text.chars().collect();
    if chars.len() >= 6 {
        let stop: String = chars[3..5].iter().collect();
        let cut = &lib.text[..lib.text.find(&stop).unwrap()];
        let mut b = body.clone();
        b["stop"] = serde_json::json!([stop]);
        let (_, v) = post(&c, srv.url("/v1/completions"), b).await;
        assert_eq!(v["choices"][0]["text"], cut, "stop {stop:?}");
        assert_eq!(v["choices"][0]["finish_reason"], "stop");
    }
    let mut b = body.clone();
    b["stream"] = true.into();
    let resp = c
        .post(srv.url("/v1/completions"))
        .json(&b)
        .send()
        .await
        .unwrap();
    let events = sse_events(resp).await;
    assert_eq!(events.last().unwrap(), "[DONE]");
    let chunks: Vec<serde_json::Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    let text: String = chunks
        .iter()
        .map(|c| c["choices"][0]["text"].as_str().unwrap())
        .collect();
    assert_eq!(text, lib.text, "the streamed pieces make the whole text");
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        finish
    );
    assert!(chunks[..chunks.len() - 1]
        .iter()
        .all(|c| c["choices"][0]["finish_reason"].is_null()));
    assert!(chunks.len() > 2, "streamed in pieces, not at once");

    // /rerank (TEI): the library's logits through a sigmoid, best first; raw scores; texts.
    let meta: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("bert/rerank_a/reference.json")).unwrap(),
    )
    .unwrap();
    let (query, docs) = (meta["query"].clone(), meta["docs"].clone());
    let (st, v) = post(
        &c,
        srv.url("/rerank"),
        serde_json::json!({"query": query, "texts": docs}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let order: Vec<u64> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["index"].as_u64().unwrap())
        .collect();
    let want: Vec<u64> = meta["order"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect();
    assert_eq!(order, want);
    for x in v.as_array().unwrap() {
        let i = x["index"].as_u64().unwrap() as usize;
        assert!(
            (x["score"].as_f64().unwrap() - meta["sigmoid"][i].as_f64().unwrap()).abs() <= 1e-4
        );
        assert!(x.get("text").is_none());
    }
    let (_, v) = post(
        &c,
        srv.url("/rerank"),
        serde_json::json!({"query": query, "texts": docs, "raw_scores": true, "return_text": true}),
    )
    .await;
    for x in v.as_array().unwrap() {
        let i = x["index"].as_u64().unwrap() as usize;
        assert!((x["score"].as_f64().unwrap() - meta["logits"][i].as_f64().unwrap()).abs() <= 1e-4);
        assert_eq!(x["text"], meta["docs"][i]);
    }
    let rr = srv.url("/rerank");
    expect_error(
        &c,
        rr.clone(),
        serde_json::json!({"query": "q", "texts": []}),
        400,
        "empty",
    )
    .await;
    expect_error(
        &c,
        rr.clone(),
        serde_json::json!({"query": "", "texts": ["a"]}),
        400,
        "empty",
    )
    .await;
    expect_error(
        &c,
        rr.clone(),
        serde_json::json!({"query": "q"}),
        400,
        "validation",
    )
    .await;
    let long = "paris ".repeat(200);
    expect_error(
        &c,
        rr,
        serde_json::json!({"query": "q", "texts": [long]}),
        422,
        "validation",
    )
    .await;

    // /classify (raw body) and /detect (multipart): the library's answers.
    let bus = std::fs::read(assets.join("bus.jpg")).unwrap();
    let vit = Vit::load(backend.clone(), &vit_dir).unwrap();
    let want = vit.classify(&[assets.join("bus.jpg")], 3).unwrap();
    let r = c
        .post(srv.url("/classify?top_k=3"))
        .body(bus.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    let top = v[0]["top"].as_array().unwrap();
    assert_eq!(top.len(), 3);
    for (g, w) in top.iter().zip(&want[0]) {
        assert_eq!(g["index"], w.index);
        assert_eq!(g["label"], w.label.as_str());
        assert!((g["score"].as_f64().unwrap() as f32 - w.score).abs() <= 1e-6);
    }
    let yolo = Yolo::load(backend.clone(), &yolo_dir).unwrap();
    let want = yolo
        .detect(&assets.join("bus.jpg"), &Default::default())
        .unwrap();
    let form = reqwest::multipart::Form::new().part(
        "image",
        reqwest::multipart::Part::bytes(bus.clone()).file_name("bus.jpg"),
    );
    let r = c
        .post(srv.url("/detect"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    let dets = v.as_array().unwrap();
    assert_eq!(dets.len(), want.len());
    for (g, w) in dets.iter().zip(&want) {
        assert_eq!(g["class_id"], w.class_id);
        for i in 0..4 {
            let x = g["box"][i].as_f64().unwrap() as f32;
            assert!(
                (x - w.bbox[i]).abs() <= 1e-3,
                "box {i}: {x} vs {}",
                w.bbox[i]
            );
        }
    }

    // /metrics: Prometheus text with what ran.
    let m = c
        .get(srv.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for needle in [
        "wgpu_infer_requests_total{route=\"/embed\",status=\"200\"}",
        "wgpu_infer_request_duration_seconds_bucket",
        "wgpu_infer_queue_duration_seconds_count{route=\"/embed\"}",
        "wgpu_infer_inference_duration_seconds_count{route=\"/v1/completions\"}",
        "wgpu_infer_batch_inputs_count",
        "wgpu_infer_queue_depth",
        "wgpu_infer_generated_tokens_total",
    ] {
        assert!(m.contains(needle), "/metrics lacks {needle}:\n{m}");
    }
}

/// Every error answer: TEI's status codes and `{error, error_type}` bodies.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_requests_get_tei_status_codes() {
    let srv = Server::start(&[
        "--embed-model".into(),
        s(&common::minilm_dir()),
        "--generate-model".into(),
        s(&fixture("gpt2/tiny_a")),
        "--classify-model".into(),
        s(&fixture("vit/tiny_cls")),
        "--payload-limit".into(),
        "65536".into(),
        "--max-client-batch-size".into(),
        "4".into(),
        "--body-timeout".into(),
        "1".into(),
    ])
    .await;
    let c = client();
    let (e, g) = (srv.url("/embed"), srv.url("/v1/completions"));
    // 400: malformed JSON, wrong types, empty input, bad options.
    let r = c.post(&e).body("{\"inputs\": ").send().await.unwrap();
    assert_eq!(r.status(), 400);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error_type"], "validation");
    assert!(
        v["error"].as_str().unwrap().contains("malformed JSON"),
        "{v}"
    );
    expect_error(
        &c,
        e.clone(),
        serde_json::json!({"inputs": 3}),
        400,
        "validation",
    )
    .await;
    expect_error(
        &c,
        e.clone(),
        serde_json::json!({"inputs": ["a", 3]}),
        400,
        "validation",
    )
    .await;
    expect_error(
        &c,
        e.clone(),
        serde_json::json!({"inputs": "a", "normalize": "yes"}),
        400,
        "validation",
    )
    .await;
    expect_error(&c, e.clone(), serde_json::json!({}), 400, "validation").await;
    expect_error(
        &c,
        e.clone(),
        serde_json::json!({"inputs": []}),
        400,
        "empty",
    )
    .await;
    expect_error(
        &c,
        e.clone(),
        serde_json::json!({"inputs": ["ok", "  "]}),
        400,
        "empty",
    )
    .await;
    let oe = srv.url("/v1/embeddings");
    expect_error(
        &c,
        oe.clone(),
        serde_json::json!({"input": "a", "encoding_format": "hex"}),
        400,
        "validation",
    )
    .await;
    expect_error(
        &c,
        oe.clone(),
        serde_json::json!({"input": "a", "dimensions": 0}),
        400,
        "validation",
    )
    .await;
    expect_error(
        &c,
        oe.clone(),
        serde_json::json!({"input": "a", "dimensions": 385}),
        400,
        "validation",
    )
    .await;
    expect_error(
        &c,
        g.clone(),
        serde_json::json!({"prompt": "a", "temperature": -1}),
        400,
        "validation",
    )
    .await;
    expect_error(
        &c,
        g.clone(),
        serde_json::json!({"prompt": "a", "max_tokens": 0}),
        400,
        "validation",
    )
    .await;
    expect_error(
        &c,
        g.clone(),
        serde_json::json!({"prompt": "a", "top_p": 1.5}),
        400,
        "validation",
    )
    .await;
    expect_error(
        &c,
        g.clone(),
        serde_json::json!({"prompt": "a", "n": 2}),
        400,
        "validation",
    )
    .await;
    expect_error(
        &c,
        g.clone(),
        serde_json::json!({"prompt": ""}),
        400,
        "empty",
    )
    .await;
    expect_error(
        &c,
        g.clone(),
        serde_json::json!({"prompt": "a", "stop": ["", "x"]}),
        400,
        "validation",
    )
    .await;
    // 413: too many inputs, a body over --payload-limit (declared, and chunked without a length).
    let five = serde_json::json!({"inputs": ["a", "b", "c", "d", "e"]});
    let msg = expect_error(&c, e.clone(), five, 413, "validation").await;
    assert!(msg.contains("--max-client-batch-size"), "{msg}");
    let big = "word ".repeat(20_000);
    expect_error(
        &c,
        e.clone(),
        serde_json::json!({"inputs": big, "truncate": true}),
        413,
        "validation",
    )
    .await;
    let chunks =
        futures_util::stream::iter((0..12).map(|_| Ok::<_, std::io::Error>(vec![b' '; 8192])));
    let r = c
        .post(&e)
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    // 422: longer than the model takes (unless truncate), a prompt + max_tokens over the context.
    let long = "lorem ipsum ".repeat(300);
    let msg = expect_error(
        &c,
        e.clone(),
        serde_json::json!({"inputs": long}),
        422,
        "validation",
    )
    .await;
    assert!(msg.contains("256"), "{msg}");
    let (st, _) = post(
        &c,
        e.clone(),
        serde_json::json!({"inputs": long, "truncate": true}),
    )
    .await;
    assert_eq!(st, 200);
    expect_error(
        &c,
        oe.clone(),
        serde_json::json!({"input": long}),
        422,
        "validation",
    )
    .await;
    expect_error(
        &c,
        g.clone(),
        serde_json::json!({"prompt": "a", "max_tokens": 1000}),
        422,
        "validation",
    )
    .await;
    expect_error(
        &c,
        g.clone(),
        serde_json::json!({"prompt": "a b ".repeat(200)}),
        422,
        "validation",
    )
    .await;
    // 400 for a bad image or none; 404 for a model or route the server lacks; 405.
    let r = c
        .post(srv.url("/classify"))
        .body(b"not an image".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = c.post(srv.url("/classify")).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["error_type"],
        "empty"
    );
    let png = common::png_declaring(100_000, 100_000);
    let r = c.post(srv.url("/classify")).body(png).send().await.unwrap();
    assert_eq!(r.status(), 400, "a decompression bomb is refused");
    let r = c
        .post(srv.url("/classify?top_k=x"))
        .body(vec![1u8])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = c
        .post(srv.url("/detect"))
        .body(vec![1u8])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["error_type"],
        "not_found"
    );
    let r = c.get(srv.url("/nope")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let r = c.get(srv.url("/embed")).send().await.unwrap();
    assert_eq!(r.status(), 405);
    // 408: a body that does not arrive within --body-timeout.
    let addr = srv.base.trim_start_matches("http://").to_string();
    let mut sock = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        sock,
        "POST /embed HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"inp"
    )
    .unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let t0 = Instant::now();
    let mut answer = String::new();
    let _ = BufReader::new(&sock).read_line(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "slow body: {answer:?}");
    assert!(t0.elapsed() < Duration::from_secs(10));
    // The server still answers.
    let (st, _) = post(&c, e.clone(), serde_json::json!({"inputs": "still here"})).await;
    assert_eq!(st, 200);
}

/// 503 while loading, then ready; a failing loader stops the server with its error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_503_until_the_models_are_loaded() {
    use wgpu_infer::server::{serve, Models, ServerConfig};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (go, wait) = std::sync::mpsc::channel::<()>();
    let dir = fixture("bert/tiny_a");
    let load = move || {
        wait.recv().unwrap();
        let bert = Bert::load(Backend::Cpu, &dir)?;
        Ok(Models {
            embed: Some(Arc::new(bert)),
            ..Models::default()
        })
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, ServerConfig::default(), load, async {
        let _ = stopped.await;
    }));
    let c = client();
    let r = c.get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["error_type"],
        "unhealthy"
    );
    expect_error(
        &c,
        format!("{base}/embed"),
        serde_json::json!({"inputs": "a"}),
        503,
        "unhealthy",
    )
    .await;
    go.send(()).unwrap();
    let t0 = Instant::now();
    while c
        .get(format!("{base}/health"))
        .send()
        .await
        .unwrap()
        .status()
        != 200
    {
        assert!(t0.elapsed() < Duration::from_secs(60));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (st, v) = post(
        &c,
        format!("{base}/embed"),
        serde_json::json!({"inputs": "a b c"}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    // Models the server lacks.
    expect_error(
        &c,
        format!("{base}/v1/completions"),
        serde_json::json!({"prompt": "a"}),
        404,
        "not_found",
    )
    .await;
    let body = serde_json::json!({"query": "a", "texts": ["b"]});
    expect_error(&c, format!("{base}/rerank"), body, 404, "not_found").await;
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let load = || Bert::load(Backend::Cpu, "/nonexistent/folder").map(|_| Models::default());
    let r = tokio::time::timeout(
        Duration::from_secs(30),
        serve(
            listener,
            ServerConfig::default(),
            load,
            std::future::pending(),
        ),
    )
    .await
    .expect("a failed load stops the server");
    assert!(r.unwrap_err().to_string().contains("/nonexistent/folder"));
}

/// 200 concurrent embedding requests get what single requests get, and were batched.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_equal_single_ones() {
    let srv = Server::start(&["--embed-model".into(), s(&common::minilm_dir())]).await;
    let c = client();
    let sentences = common::minilm_sentences();
    // 24 distinct requests of 1-3 texts (different lengths, so batches pad), each sent
    // alone first, then all 200 at once.
    let requests: Vec<Vec<String>> = (0..200)
        .map(|i| {
            let k = i % 24;
            (0..1 + k % 3)
                .map(|j| sentences[(k * 7 + j * 3) % (sentences.len() - 1)].clone())
                .collect()
        })
        .collect();
    // One at a time first.
    let mut single = Vec::new();
    for r in &requests[..24] {
        let (st, v) = post(&c, srv.url("/embed"), serde_json::json!({"inputs": r})).await;
        assert_eq!(st, 200);
        single.push(floats(&v));
    }
    let before = c
        .get(srv.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let tasks: Vec<_> = requests
        .iter()
        .cloned()
        .map(|r| {
            let (c, url) = (c.clone(), srv.url("/embed"));
            tokio::spawn(async move {
                let (st, v) = post(&c, url, serde_json::json!({"inputs": r})).await;
                assert_eq!(st, 200, "{v}");
                floats(&v)
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.push(t.await.unwrap());
    }
    let mut worst = 0.0f32;
    for (i, got) in all.iter().enumerate() {
        worst = worst.max(max_diff(got, &single[i % 24]));
    }
    println!("200 concurrent vs single requests: max abs diff {worst:e}");
    assert!(
        worst <= 1e-6,
        "batched answers differ from single ones by {worst}"
    );
    let after = c
        .get(srv.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let stat = |m: &str, name: &str| -> f64 {
        m.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().last())
            .map_or(0.0, |v| v.parse().unwrap())
    };
    let forwards = stat(&after, "wgpu_infer_batch_requests_count")
        - stat(&before, "wgpu_infer_batch_requests_count");
    let merged = stat(&after, "wgpu_infer_batch_requests_sum")
        - stat(&before, "wgpu_infer_batch_requests_sum");
    println!(
        "200 requests in {forwards} forwards ({:.1} requests per forward)",
        merged / forwards
    );
    assert_eq!(merged, 200.0);
    assert!(
        forwards < 100.0,
        "200 concurrent requests ran in {forwards} forwards: not batched"
    );
}

/// Overload (429), timeout (504), a client leaving mid-stream (its generation stops), and
/// generations side by side.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overload_timeout_and_cancel() {
    let tmp = tempfile::tempdir().unwrap();
    let gpt2 = long_gpt2(&tmp.path().join("gpt2-long"));
    let srv = Server::start(&[
        "--generate-model".into(),
        s(&gpt2),
        "--embed-model".into(),
        s(&fixture("bert/tiny_a")),
        "--max-concurrent-requests".into(),
        "2".into(),
        "--max-concurrent-generations".into(),
        "1".into(),
        "--request-timeout".into(),
        "3".into(),
    ])
    .await;
    let c = client();
    let g = srv.url("/v1/completions");
    let metric = |m: &str, name: &str| -> f64 {
        m.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().last())
            .map_or(0.0, |v| v.parse().unwrap())
    };
    // A long stream; read two events, then go away.
    let long =
        serde_json::json!({"prompt": "a", "max_tokens": 1000, "temperature": 0, "stream": true});
    let resp = c.post(&g).json(&long).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.bytes_stream();
    let mut seen = Vec::new();
    while seen.windows(2).filter(|w| w == b"\n\n").count() < 2 {
        seen.extend_from_slice(&body.next().await.unwrap().unwrap());
    }
    // While it runs: one more request fits (2 admitted), it waits for the one generation slot;
    // a third is refused with 429.
    let waiting = {
        let (c, g) = (c.clone(), g.clone());
        tokio::spawn(async move {
            post(
                &c,
                g,
                serde_json::json!({"prompt": "a", "max_tokens": 5, "temperature": 0}),
            )
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    expect_error(
        &c,
        srv.url("/embed"),
        serde_json::json!({"inputs": "x"}),
        429,
        "overloaded",
    )
    .await;
    drop(body);
    let t0 = Instant::now();
    loop {
        let m = c
            .get(srv.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if metric(&m, "wgpu_infer_generations_cancelled_total") >= 1.0 {
            let tokens = metric(&m, "wgpu_infer_generated_tokens_total");
            assert!(
                tokens < 1000.0,
                "the cancelled generation ran to the end ({tokens} tokens)"
            );
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the generation was not cancelled:\n{m}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (st, v) = waiting.await.unwrap();
    assert_eq!(
        st, 200,
        "the queued request ran once the slot was free: {v}"
    );
    // 504: a generation longer than --request-timeout (3 s).
    let slow = serde_json::json!({"prompt": "a", "max_tokens": 1000, "temperature": 0});
    let t0 = Instant::now();
    expect_error(&c, g.clone(), slow, 504, "timeout").await;
    assert!(t0.elapsed() < Duration::from_secs(20));
}

/// SIGTERM with requests in flight: none is lost, the process exits 0, the port closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_finishes_requests_in_flight() {
    let mut srv = Server::start(&[
        "--embed-model".into(),
        s(&common::minilm_dir()),
        "--generate-model".into(),
        s(&fixture("gpt2/tiny_a")),
    ])
    .await;
    let c = client();
    let sentences = common::minilm_sentences();
    let mut tasks = Vec::new();
    for i in 0..16 {
        let (c, url) = (c.clone(), srv.url("/embed"));
        let texts = vec![sentences[i % sentences.len()].clone(); 8];
        tasks.push(tokio::spawn(async move {
            post(
                &c,
                url,
                serde_json::json!({"inputs": texts, "truncate": true}),
            )
            .await
            .0
        }));
    }
    for _ in 0..4 {
        let (c, url) = (c.clone(), srv.url("/v1/completions"));
        tasks.push(tokio::spawn(async move {
            post(
                &c,
                url,
                serde_json::json!({"prompt": "Once", "max_tokens": 60, "temperature": 0}),
            )
            .await
            .0
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let st = Command::new("kill")
        .args(["-TERM", &srv.pid().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    for t in tasks {
        assert_eq!(
            t.await.unwrap(),
            200,
            "a request in flight was lost at shutdown"
        );
    }
    let status = srv.wait_exit(Duration::from_secs(60));
    assert_eq!(status.code(), Some(0), "exit status; log:\n{}", srv.log());
    // Some requests were answered after the shutdown began (they were in flight).
    let log = srv.log();
    let at = log.find("shutting down").expect("the shutdown is logged");
    assert!(
        log[at..].contains("status=200"),
        "no request was in flight at SIGTERM; the test proves nothing:\n{log}"
    );
    assert!(
        reqwest::get(srv.url("/health")).await.is_err(),
        "the port is closed"
    );
}

/// `/v1/chat/completions` on a Qwen2 folder: the conversation through its chat template gives
/// the prompt ids and greedy reply of transformers (the fixture), whole and streamed; the
/// refusals: 404 without a template, 422 when the template refuses, 400 for what the endpoint
/// does not support.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chat_completions_follow_the_chat_template() {
    use wgpu_infer::chat::{ChatMessage, ChatTemplate};
    use wgpu_infer::models::{CausalLm, ModelFiles};
    let src = fixture("llama/tiny_qwen2");
    let r = wgpu_infer::weights::Weights::open(src.join("reference.safetensors")).unwrap();
    let ids = |k: &str| r.get_u32(k).unwrap().as_u32().unwrap().to_vec();
    let (want_prompt, want_reply) = (ids("chat.prompt"), ids("chat.tokens"));
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(src.join("reference.json")).unwrap())
            .unwrap();
    let conv = meta["chat"].clone();
    // The folder's template, refusing a conversation that does not end with a user turn.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("qwen2");
    common::copy_dir(&src, &dir);
    let cfg = dir.join("tokenizer_config.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cfg).unwrap()).unwrap();
    let guard = "{% if messages[-1].role != 'user' %}{{ raise_exception('the last turn must be the user\\'s') }}{% endif %}";
    v["chat_template"] = format!("{guard}{}", v["chat_template"].as_str().unwrap()).into();
    std::fs::write(&cfg, v.to_string()).unwrap();
    let srv = Server::start(&["--generate-model".into(), s(&dir)]).await;
    let c = client();
    let url = srv.url("/v1/chat/completions");

    // The library's reply is transformers' (tokens), and the server's is the library's.
    let files = ModelFiles::open(&dir).unwrap();
    let m =
        CausalLm::from_files(Backend::Gpu(common::device()), &files, &Default::default()).unwrap();
    let msgs: Vec<ChatMessage> = serde_json::from_value(conv.clone()).unwrap();
    let text = ChatTemplate::from_files(&files)
        .unwrap()
        .render(&msgs, true)
        .unwrap();
    let prompt = m.tokenize(&text).unwrap();
    assert_eq!(prompt, want_prompt);
    let opts = GenerateOptions {
        max_new_tokens: 16,
        ..Default::default()
    };
    let lib = m.generate_ids(&prompt, &opts, |_| true).unwrap();
    assert_eq!(lib.tokens, want_reply);

    let body =
        serde_json::json!({"model": "x", "messages": conv, "max_tokens": 16, "temperature": 0});
    let (st, v) = post(&c, url.clone(), body.clone()).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["object"], "chat.completion");
    assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(v["choices"][0]["message"]["role"], "assistant");
    assert_eq!(v["choices"][0]["message"]["content"], lib.text.as_str());
    let finish = if lib.stopped_at_eos { "stop" } else { "length" };
    assert_eq!(v["choices"][0]["finish_reason"], finish);
    assert_eq!(v["usage"]["prompt_tokens"], want_prompt.len());
    assert_eq!(v["usage"]["completion_tokens"], want_reply.len());
    // Content as text parts, and max_completion_tokens: the same answer.
    let mut b = body.clone();
    b["messages"][1]["content"] = serde_json::json!([{"type": "text", "text": conv[1]["content"]}]);
    b.as_object_mut().unwrap().remove("max_tokens");
    b["max_completion_tokens"] = 16.into();
    let (st, v2) = post(&c, url.clone(), b).await;
    assert_eq!(st, 200, "{v2}");
    assert_eq!(v2["choices"], v["choices"]);

    // Streamed: the role first, the pieces make the whole reply, then the finish, then [DONE].
    let mut b = body.clone();
    b["stream"] = true.into();
    let resp = c.post(&url).json(&b).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let events = sse_events(resp).await;
    assert_eq!(events.last().unwrap(), "[DONE]");
    let chunks: Vec<serde_json::Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    assert!(chunks
        .iter()
        .all(|c| c["object"] == "chat.completion.chunk"));
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let streamed: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(streamed, lib.text);
    let last = &chunks.last().unwrap()["choices"][0];
    assert_eq!(last["finish_reason"], finish);
    assert_eq!(last["delta"], serde_json::json!({}));
    assert!(chunks.len() > 3, "streamed in pieces");

    // 422: the template refuses; 400: unsupported roles, parts, options; 4xx: empty.
    let mut b = body.clone();
    b["messages"] = serde_json::json!([conv[1], {"role": "assistant", "content": "Yes."}]);
    let msg = expect_error(&c, url.clone(), b, 422, "chat_template").await;
    assert!(msg.contains("the last turn must be the user's"), "{msg}");
    for (patch, want) in [
        (
            serde_json::json!({"messages": [{"role": "tool", "content": "x"}]}),
            "role 'tool'",
        ),
        (
            serde_json::json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}),
            "only text parts",
        ),
        (serde_json::json!({"n": 2}), "n = 1"),
        (
            serde_json::json!({"tools": [{"type": "function"}]}),
            "tools",
        ),
        (
            serde_json::json!({"presence_penalty": 0.5}),
            "presence_penalty",
        ),
        (serde_json::json!({"max_tokens": 0}), "at least 1"),
        (
            serde_json::json!({"max_tokens": 5, "max_completion_tokens": 5}),
            "not both",
        ),
        (serde_json::json!({"temperature": -1}), "temperature"),
    ] {
        let mut b = body.clone();
        for (k, v) in patch.as_object().unwrap() {
            b[k] = v.clone();
        }
        let msg = expect_error(&c, url.clone(), b, 400, "validation").await;
        assert!(msg.contains(want), "{want}: {msg}");
    }
    let (st, _) = post(&c, url.clone(), serde_json::json!({"messages": []})).await;
    assert!((400..500).contains(&st));
    let long = serde_json::json!({"messages": [{"role": "user"}], "max_tokens": 100000});
    let msg = expect_error(&c, url.clone(), long, 422, "validation").await;
    assert!(msg.contains("exceeds the context"), "{msg}");

    // A generation model without a chat template: 404 naming why.
    drop(srv);
    let srv = Server::start(&["--generate-model".into(), s(&fixture("gpt2/tiny_a"))]).await;
    let msg = expect_error(&c, srv.url("/v1/chat/completions"), body, 404, "not_found").await;
    assert!(msg.contains("no chat template"), "{msg}");
}
