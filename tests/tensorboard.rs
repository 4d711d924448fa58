//! Event files written by `SummaryWriter`, read back by our reader and by the real TensorBoard
//! (`scripts/check_tensorboard.py` in the repository's .venv, which scripts/test.sh installs).
#![cfg(feature = "tensorboard")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use tapegrad::nn::{self, Forward, Module};
use tapegrad::tensorboard::proto::{event::What, summary::value::Value as V};
use tapegrad::tensorboard::{parse_events, read_events, HParam, SummaryWriter};
use tapegrad::{Error, Tensor};

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tapegrad-tb-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn event_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("events.out.tfevents.")
        })
        .collect();
    v.sort();
    v
}

struct Mlp {
    fc1: nn::Linear,
    fc2: nn::Linear,
}
impl Module for Mlp {
    fn visit(&self, v: &mut nn::Visitor) {
        v.module("fc1", &self.fc1);
        v.module("fc2", &self.fc2);
    }
}
impl Forward for Mlp {
    fn forward(&self, x: &Tensor) -> Tensor {
        self.fc2.forward(&self.fc1.forward(x).tanh())
    }
}

/// A 2×3 RGB image in CHW: pixel (y, x) has R = 40·x, G = 100·y, B = 255 − 40·x (as 0..1 floats).
fn test_image() -> (Tensor, Vec<u8>) {
    let (h, w) = (2usize, 3usize);
    let mut chw = vec![0.0f64; 3 * h * w];
    let mut hwc = vec![0u8; 3 * h * w];
    for y in 0..h {
        for x in 0..w {
            let rgb = [40 * x as u32, 100 * y as u32, 255 - 40 * x as u32];
            for c in 0..3 {
                chw[(c * h + y) * w + x] = rgb[c] as f64 / 255.0;
                hwc[(y * w + x) * 3 + c] = rgb[c] as u8;
            }
        }
    }
    (Tensor::from_vec_f64(chw, &[3, h, w]), hwc)
}

/// Writes one of everything to `dir`; returns the histogram's values.
fn write_everything(dir: &Path) -> Vec<f64> {
    let mut w = SummaryWriter::new(dir).unwrap();
    for step in 0..5 {
        w.add_scalar("loss/train", 1.0 / (step as f64 + 1.0), step)
            .unwrap();
    }
    w.add_scalars("lr", &[("a", 0.5), ("b", 0.25)], 3).unwrap();
    let hist: Vec<f64> = vec![-2.0, -0.5, 0.0, 0.25, 0.25, 1.0, 3.5, 100.0];
    w.add_histogram("weights", &Tensor::from_vec_f64(hist.clone(), &[8]), 7)
        .unwrap();
    w.add_text("notes", "hello **tensorboard**", 2).unwrap();
    let (img, _) = test_image();
    w.add_image("img/chw", &img, 4, "CHW").unwrap();
    w.add_image("img/hwc", &img.permute(vec![1, 2, 0]), 4, "HWC")
        .unwrap();
    let net = Mlp {
        fc1: nn::Linear::new(4, 8),
        fc2: nn::Linear::new(8, 2),
    };
    w.add_graph(&net, &Tensor::randn(&[3, 4])).unwrap();
    w.add_hparams(
        &[("lr", HParam::from(0.01)), ("opt", "adam".into())],
        &[("hparam/acc", 0.9)],
        Some("hp"),
    )
    .unwrap();
    w.close().unwrap();
    hist
}

#[test]
fn our_reader_reads_back_every_kind_of_summary() {
    let dir = tmpdir("readback");
    write_everything(&dir);
    let files = event_files(&dir);
    assert_eq!(files.len(), 1, "{files:?}");
    let events = read_events(&files[0]).unwrap();
    assert_eq!(
        events[0].what,
        Some(What::FileVersion("brain.Event:2".into()))
    );
    let scalars: Vec<(i64, f32)> = events
        .iter()
        .filter_map(|e| match &e.what {
            Some(What::Summary(s)) => match &s.value[0].value {
                Some(V::SimpleValue(v)) => Some((e.step, *v)),
                _ => None,
            },
            _ => None,
        })
        .collect();
    let expected: Vec<(i64, f32)> = (0..5).map(|s| (s, 1.0 / (s as f32 + 1.0))).collect();
    assert_eq!(scalars, expected);
    assert!(events
        .iter()
        .any(|e| matches!(e.what, Some(What::GraphDef(_)))));
    // add_scalars made two sub-runs, add_hparams one
    for sub in ["lr_a", "lr_b", "hp"] {
        assert_eq!(event_files(&dir.join(sub)).len(), 1, "{sub}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A small valid event file, written in a directory of its own (`name`: tests run in parallel).
fn valid_file(name: &str) -> Vec<u8> {
    let dir = tmpdir(name);
    let mut w = SummaryWriter::new(&dir).unwrap();
    w.add_scalar("a", 1.0, 0).unwrap();
    w.add_text("t", "some text", 1).unwrap();
    w.add_histogram("h", &Tensor::randn(&[50]), 2).unwrap();
    let path = w.file_path().to_path_buf();
    w.close().unwrap();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    bytes
}

#[test]
fn a_corrupt_byte_is_reported_with_its_record_offset() {
    let bytes = valid_file("valid-0");
    let n = parse_events(&bytes).unwrap().len();
    assert_eq!(n, 4);
    // the first record (file_version) is 16 bytes of framing plus its data; corrupt a data byte
    // of the second record
    let first_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let second = 16 + first_len;
    let mut bad = bytes.clone();
    bad[second + 14] ^= 0x40;
    match parse_events(&bad) {
        Err(Error::Format(m)) => {
            assert!(m.contains(&format!("offset {second}")), "{m}");
            assert!(m.contains("CRC"), "{m}");
        }
        other => panic!("expected a format error, got {other:?}"),
    }
}

#[test]
fn a_truncated_file_is_an_error_naming_the_offset() {
    let bytes = valid_file("valid-1");
    let cut = bytes.len() - 3;
    let dir = tmpdir("trunc");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("events.out.tfevents.0.host");
    std::fs::write(&path, &bytes[..cut]).unwrap();
    let e = read_events(&path).unwrap_err().to_string();
    assert!(e.contains("truncated record at offset"), "{e}");
    assert!(e.contains("events.out.tfevents.0.host"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn random_mutations_are_errors_or_faithful_never_panics() {
    // a seeded xorshift drives byte flips, truncations and insertions; every result must be an
    // Err or exactly the original events (a mutation CRC-32C cannot see is vanishingly rare and
    // would be a mis-read, so the test demands the original)
    let bytes = valid_file("valid-2");
    let original = parse_events(&bytes).unwrap();
    let mut s: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let mut errors = 0;
    for _ in 0..2000 {
        let mut m = bytes.clone();
        match next() % 3 {
            0 => {
                let i = (next() as usize) % m.len();
                m[i] ^= 1 << (next() % 8);
            }
            1 => m.truncate((next() as usize) % m.len()),
            _ => {
                let i = (next() as usize) % m.len();
                m.insert(i, next() as u8);
            }
        }
        match std::panic::catch_unwind(|| parse_events(&m)) {
            Ok(Ok(ev)) => assert_eq!(ev, original[..ev.len()], "a mutation was mis-read"),
            Ok(Err(_)) => errors += 1,
            Err(_) => panic!("parse_events panicked on a mutated file"),
        }
    }
    assert!(
        errors > 1900,
        "only {errors} of 2000 mutations were detected"
    );
}

fn tensorboard_python() -> Option<PathBuf> {
    let py = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    let ok = py.exists()
        && Command::new(&py)
            .args(["-c", "import tensorboard"])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
    ok.then_some(py)
}

#[test]
fn real_tensorboard_reads_scalars_histograms_text_images_graph_and_hparams() {
    let Some(py) = tensorboard_python() else {
        tapegrad::testing::skip_missing(
            "real_tensorboard_reads_scalars_histograms_text_images_graph_and_hparams",
            "the tensorboard Python package in .venv (scripts/test.sh installs it)",
        );
        return;
    };
    let dir = tmpdir("real");
    let hist = write_everything(&dir);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/check_tensorboard.py");
    let out = Command::new(py).arg(script).arg(&dir).output().unwrap();
    assert!(
        out.status.success(),
        "check_tensorboard.py failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: Value = serde_json::from_slice(&out.stdout).unwrap();
    let runs = &j["runs"];
    let main = &runs["."];

    // scalars, as f32
    let sc: Vec<(i64, f64)> = main["scalars"]["loss/train"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_i64().unwrap(), p[1].as_f64().unwrap()))
        .collect();
    let expected: Vec<(i64, f64)> = (0..5)
        .map(|s| (s, (1.0 / (s as f32 + 1.0)) as f64))
        .collect();
    assert_eq!(sc, expected);

    // add_scalars: two runs holding tag "lr"
    assert_eq!(
        runs["lr_a"]["scalars"]["lr"][0],
        serde_json::json!([3, 0.5])
    );
    assert_eq!(
        runs["lr_b"]["scalars"]["lr"][0],
        serde_json::json!([3, 0.25])
    );

    // histogram: the statistics, and every value counted in the bucket whose limits hold it
    let h = &main["histograms"]["weights"][0];
    assert_eq!(h["step"], 7);
    assert_eq!(h["min"].as_f64(), Some(-2.0));
    assert_eq!(h["max"].as_f64(), Some(100.0));
    assert_eq!(h["num"].as_f64(), Some(hist.len() as f64));
    assert_eq!(h["sum"].as_f64(), Some(hist.iter().sum::<f64>()));
    assert_eq!(
        h["sum_squares"].as_f64(),
        Some(hist.iter().map(|v| v * v).sum::<f64>())
    );
    let limits: Vec<f64> = serde_json::from_value(h["bucket_limit"].clone()).unwrap();
    let counts: Vec<f64> = serde_json::from_value(h["bucket"].clone()).unwrap();
    assert_eq!(counts.iter().sum::<f64>(), hist.len() as f64);
    for (i, &c) in counts.iter().enumerate() {
        let lo = if i == 0 {
            f64::NEG_INFINITY
        } else {
            limits[i - 1]
        };
        let inside = hist.iter().filter(|&&v| lo <= v && v < limits[i]).count();
        assert_eq!(c, inside as f64, "bucket {i} [{lo}, {})", limits[i]);
    }

    // text
    assert_eq!(
        main["text"]["notes/text_summary"][0],
        serde_json::json!([2, ["hello **tensorboard**"]])
    );

    // images, decoded by the script's own PNG reader
    let (_, hwc) = test_image();
    for tag in ["img/chw", "img/hwc"] {
        let im = &main["images"][tag][0];
        assert_eq!(
            (&im["step"], &im["width"], &im["height"], &im["channels"]),
            (
                &serde_json::json!(4),
                &serde_json::json!(3),
                &serde_json::json!(2),
                &serde_json::json!(3)
            ),
            "{tag}"
        );
        let px: Vec<u8> = serde_json::from_value(im["pixels"].clone()).unwrap();
        assert_eq!(px, hwc, "{tag}");
    }

    // graph: parameters under their module scopes, ops wired to them, shapes on every node
    let nodes = main["graph"]["nodes"].as_array().unwrap();
    let by_name = |n: &str| {
        nodes
            .iter()
            .find(|x| x["name"] == n)
            .unwrap_or_else(|| panic!("no node {n} in {nodes:?}"))
    };
    assert_eq!(by_name("fc1/weight")["op"], "Parameter");
    assert_eq!(by_name("fc1/weight")["shapes"], serde_json::json!([[8, 4]]));
    assert_eq!(by_name("fc2/bias")["shapes"], serde_json::json!([[2]]));
    let tanh = by_name("tanh_0");
    assert_eq!(tanh["op"], "tanh");
    assert_eq!(tanh["shapes"], serde_json::json!([[3, 8]]));
    let names: Vec<&str> = nodes.iter().map(|n| n["name"].as_str().unwrap()).collect();
    for n in nodes {
        for i in n["input"].as_array().unwrap() {
            assert!(names.contains(&i.as_str().unwrap()), "dangling input {i}");
        }
    }
    // the output node (last) depends, through the tape, on every parameter
    let mut seen = vec![nodes.last().unwrap()["name"].as_str().unwrap()];
    let mut k = 0;
    while k < seen.len() {
        for i in by_name(seen[k])["input"].as_array().unwrap() {
            if !seen.contains(&i.as_str().unwrap()) {
                seen.push(i.as_str().unwrap());
            }
        }
        k += 1;
    }
    for p in ["fc1/weight", "fc1/bias", "fc2/weight", "fc2/bias"] {
        assert!(
            seen.contains(&p),
            "{p} not reached from the output: {seen:?}"
        );
    }

    // hparams sub-run
    let hp = &runs["hp"];
    let exp = &hp["hparams"]["_hparams_/experiment"]["experiment"];
    let infos: Vec<(&str, &str)> = exp["hparamInfos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["name"].as_str().unwrap(), i["type"].as_str().unwrap()))
        .collect();
    assert_eq!(
        infos,
        [("lr", "DATA_TYPE_FLOAT64"), ("opt", "DATA_TYPE_STRING")]
    );
    assert_eq!(exp["metricInfos"][0]["name"]["tag"], "hparam/acc");
    let start = &hp["hparams"]["_hparams_/session_start_info"]["sessionStartInfo"];
    assert_eq!(start["hparams"]["lr"], 0.01);
    assert_eq!(start["hparams"]["opt"], "adam");
    assert_eq!(
        hp["hparams"]["_hparams_/session_end_info"]["sessionEndInfo"]["status"],
        "STATUS_SUCCESS"
    );
    assert_eq!(
        hp["scalars"]["hparam/acc"][0],
        serde_json::json!([0, (0.9f32) as f64])
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
