//! The README and the PyTorch guide (`src/doc/pytorch_users.rs`) tell the truth: every
//! `tapegrad::…` path they name exists, every type they name in backticks exists, and neither
//! announces as missing an area that the crate has.
//!
//! (The guide's intra-doc links are also checked by `cargo doc` with `-D warnings`; the README has
//! no such check, hence this test.)

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn read(rel: &str) -> String {
    fs::read_to_string(Path::new(ROOT).join(rel)).unwrap_or_else(|e| panic!("reading {rel}: {e}"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// Every name the crate (and its derive crate) declares public: items, modules, re-exports and
/// macros. A name that is not here cannot be a public path of the crate.
fn public_names() -> BTreeSet<String> {
    let mut files = Vec::new();
    rust_files(&Path::new(ROOT).join("src"), &mut files);
    let mut names = BTreeSet::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    for f in files {
        let text = fs::read_to_string(&f).unwrap();
        // a module is named by its file
        let stem = f.file_stem().unwrap().to_string_lossy().to_string();
        names.insert(stem);
        for line in text.lines() {
            let l = line.trim_start();
            for kw in [
                "pub fn ",
                "pub struct ",
                "pub enum ",
                "pub trait ",
                "pub type ",
                "pub mod ",
                "pub const ",
                "pub static ",
                "macro_rules! ",
                "fn ",
            ] {
                // `fn ` covers trait methods (public through their trait)
                if let Some(rest) = l.strip_prefix(kw) {
                    names.insert(ident(rest));
                }
            }
            // enum variants and re-exports: `pub use a::{B, C};`, `Variant(..)` lines
            if let Some(rest) = l.strip_prefix("pub use ") {
                for part in rest.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
                    if !part.is_empty() {
                        names.insert(part.to_string());
                    }
                }
            }
            let first = ident(l);
            if !first.is_empty() && first.chars().next().unwrap().is_uppercase() {
                names.insert(first);
            }
        }
    }
    names.insert("Module".into()); // the derive macro, re-exported from tapegrad-derive
    names
}

/// `tapegrad::a::b::C` paths in a text, without trailing `::`.
fn crate_paths(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("tapegrad::") {
        let tail = &rest[i + "tapegrad::".len()..];
        let path: String = tail
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        let path = path.trim_end_matches(':').to_string();
        if !path.is_empty() {
            out.push(path);
        }
        rest = tail;
    }
    out
}

#[test]
fn every_crate_path_in_the_readme_and_the_guide_names_something_that_exists() {
    let names = public_names();
    let mut missing = Vec::new();
    for doc in ["README.md", "src/doc/pytorch_users.rs", "src/lib.rs"] {
        let text = read(doc);
        for path in crate_paths(&text) {
            for seg in path.split("::").filter(|s| !s.is_empty()) {
                if !names.contains(seg) {
                    missing.push(format!("{doc}: tapegrad::{path} (no `{seg}` in src/)"));
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "docs name paths that do not exist:\n{}",
        missing.join("\n")
    );
}

#[test]
fn every_type_named_in_the_readme_feature_map_exists() {
    let names = public_names();
    let readme = read("README.md");
    let start = readme
        .find("## Features")
        .expect("README has a Features section");
    let end = start
        + readme[start..]
            .find("\n## ")
            .unwrap_or(readme.len() - start);
    let features = &readme[start..end];
    let mut missing = Vec::new();
    for span in features.split('`').skip(1).step_by(2) {
        // CamelCase names (types) and `module::Item` paths, e.g. `Conv2d`, `nn::functional`
        for seg in span.split("::") {
            let seg = seg.trim_end_matches("()");
            let is_ident = !seg.is_empty() && seg.chars().all(|c| c.is_alphanumeric() || c == '_');
            if is_ident && seg.chars().next().unwrap().is_uppercase() && !names.contains(seg) {
                missing.push(seg.to_string());
            }
        }
    }
    assert!(
        missing.is_empty(),
        "the README's feature map names types that do not exist: {missing:?}"
    );
}

#[test]
fn no_doc_announces_as_missing_what_the_crate_has() {
    let stale = [
        "not in this version yet",
        "being added",
        "coming next",
        "still to come",
    ];
    let mut found = Vec::new();
    let mut files = vec![
        Path::new(ROOT).join("README.md"),
        Path::new(ROOT).join("src/lib.rs"),
    ];
    rust_files(&Path::new(ROOT).join("src/doc"), &mut files);
    rust_files(&Path::new(ROOT).join("src/autograd"), &mut files);
    for f in files {
        let text = fs::read_to_string(&f).unwrap().to_lowercase();
        for s in stale {
            if text.contains(s) {
                found.push(format!("{}: \"{s}\"", f.display()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "docs announce features as missing:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_license_files_the_manifest_declares_are_there() {
    let manifest = read("Cargo.toml");
    assert!(manifest.contains("license = \"MIT OR Apache-2.0\""));
    assert!(read("LICENSE-MIT").contains("Permission is hereby granted"));
    assert!(read("LICENSE-APACHE").contains("Apache License"));
}
