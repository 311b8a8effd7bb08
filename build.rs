//! Stages the rules for the wheel. The source of truth is the top-level `rules/`
//! folder: the core `include_str!`s the default from there, and maturin copies this
//! staged copy into the wheel as `redisprep/rules/` (`include` with
//! `from = "out-dir"` in pyproject.toml), where `redisprep.rules_path()` finds it.

use std::path::PathBuf;
use std::{env, fs};

const RULES: [&str; 2] = [
    "cache_invalidation_rules.json",
    "cache_invalidation_rules.schema.json",
];

fn main() {
    let root = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR")).join("rules");
    fs::create_dir_all(&out).unwrap_or_else(|e| panic!("{}: {e}", out.display()));
    for name in RULES {
        let src = root.join("rules").join(name);
        println!("cargo::rerun-if-changed={}", src.display());
        fs::copy(&src, out.join(name)).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
    }
}
