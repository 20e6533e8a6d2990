//! `wgpu-infer chat`: a conversation with a chat model through its folder's chat template.
//! One turn with `--message`; otherwise interactive, one user turn per line of stdin.

use super::generate::{load_decoder, stream_generation, SamplingArgs};
use super::ModelArgs;
use clap::Args;
use std::io::{BufRead, IsTerminal, Write};
use wgpu_infer::chat::{ChatMessage, ChatTemplate};
use wgpu_infer::models::generate::GenerateOptions;
use wgpu_infer::models::{CausalLm, ModelFiles};
use wgpu_infer::{Error, Result};

/// `--model`: a chat model folder (Llama / Qwen2 / SmolLM, or GPT-2) whose
/// tokenizer_config.json has a `chat_template` (or with chat_template.jinja).
#[derive(Args, Debug)]
pub struct ChatArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// One user turn: print the reply and exit. Without it, read one user turn per line of
    /// stdin (`/reset` forgets the conversation, `/exit` or end of input quits).
    #[arg(long)]
    message: Option<String>,
    /// A system message before the conversation (the template may add its own default).
    #[arg(long)]
    system: Option<String>,
    #[command(flatten)]
    sampling: SamplingArgs,
    /// With --message: print one JSON object ({prompt, prompt_tokens, tokens, text}) instead
    /// of streaming the reply.
    #[arg(long, requires = "message")]
    json: bool,
}

pub fn run(mut args: ChatArgs) -> Result<()> {
    let opts = args.sampling.options(256)?;
    if let Some(m) = &args.message {
        if m.trim().is_empty() {
            return Err(Error::InvalidArgument("--message is empty".into()));
        }
    }
    // The template first: a folder without one fails before the weights load.
    let template = ChatTemplate::from_files(&ModelFiles::open(args.model.dir()?)?)?;
    let model = load_decoder(&args.model)?;
    let mut history: Vec<ChatMessage> = args
        .system
        .iter()
        .map(|s| ChatMessage::new("system", s.as_str()))
        .collect();
    let quiet = args.model.quiet;
    if let Some(message) = args.message.take() {
        history.push(ChatMessage::new("user", message));
        let (prompt, ids) = fit(&model, &template, &mut history, &opts, false)?;
        let stream = !args.json;
        let gen = stream_generation(&model, &ids, &opts, stream, quiet)?;
        if args.json {
            let out = serde_json::json!({
                "prompt": prompt, "prompt_tokens": gen.prompt_tokens,
                "tokens": gen.tokens, "text": gen.text,
            });
            println!("{out}");
        }
        return Ok(());
    }
    let terminal = std::io::stdin().is_terminal();
    if terminal && !quiet {
        eprintln!(
            "chatting with {} (/reset forgets the conversation, /exit or Ctrl-D quits)",
            model.name()
        );
    }
    let system = history.clone();
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    loop {
        if terminal {
            eprint!("> ");
            let _ = std::io::stderr().flush();
        }
        let Some(line) = lines.next() else { break };
        let line = line.map_err(|e| Error::io("<stdin>", e))?;
        let line = line.trim();
        match line {
            "" => continue,
            "/exit" | "/quit" => break,
            "/reset" => {
                history = system.clone();
                continue;
            }
            _ => {}
        }
        history.push(ChatMessage::new("user", line));
        let (_, ids) = fit(&model, &template, &mut history, &opts, !quiet)?;
        let gen = stream_generation(&model, &ids, &opts, true, quiet)?;
        history.push(ChatMessage::new("assistant", gen.text.trim().to_string()));
    }
    Ok(())
}

/// The rendered prompt and its ids for `history` (ending with a user turn). When prompt and
/// reply do not fit the context, the oldest exchanges after the system messages are dropped
/// (with a note when `tell`); a single turn that does not fit is an error.
fn fit(
    model: &CausalLm,
    template: &ChatTemplate,
    history: &mut Vec<ChatMessage>,
    opts: &GenerateOptions,
    tell: bool,
) -> Result<(String, Vec<u32>)> {
    loop {
        let prompt = template.render(history, true)?;
        let ids = model.tokenize(&prompt);
        let fits = matches!(&ids, Ok(ids) if ids.len() + opts.max_new_tokens <= model.context());
        let first = history.iter().position(|m| m.role != "system");
        let droppable = first.is_some_and(|i| i + 1 < history.len());
        if fits || !droppable {
            let ids = ids?;
            if !fits {
                return Err(Error::InvalidArgument(format!(
                    "the prompt ({} tokens) and --max-new-tokens {} do not fit the model's \
                     context of {} tokens",
                    ids.len(),
                    opts.max_new_tokens,
                    model.context()
                )));
            }
            return Ok((prompt, ids));
        }
        // Drop the oldest user turn and the replies up to the next user turn.
        let i = first.expect("droppable");
        let next = history[i + 1..]
            .iter()
            .position(|m| m.role == "user")
            .map_or(history.len() - 1, |p| i + 1 + p);
        history.drain(i..next);
        if tell {
            eprintln!("(the conversation outgrew the context: dropped its oldest turn)");
        }
    }
}
