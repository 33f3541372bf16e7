//! The layers of shared/design.md as a check: every module path a file of `src/` names
//! (`crate::…`, `super::…`, `self::…`, in `use` groups over several lines or fully qualified in
//! code) must follow an arrow of [`ALLOWED`]. A new upward import, or a winsys module reaching a
//! backend such as `src/sim`, fails here with the file, the line and the path (docs/layering.md).
//!
//! The scanner is a tokenizer, not a Rust parser: it drops comments (doc links included: they are
//! no dependency), string and char literals, follows inline `mod name { … }` blocks so `super::`
//! resolves as rustc resolves it, and expands `use` trees. It does not see paths relative to the
//! current module without `self::` (a child module named bare), names re-exported under an alias
//! in lib.rs, or methods reached through a type (`Device::new_sim` is defined in `backend`, but a
//! call to it names only `Device`). `src/bin` is a crate of its own (there `crate::` is the binary)
//! and a tool, which may use everything; lib.rs only declares the modules and re-exports names.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The layers of shared/design.md, top to bottom, and the modules of each (a module is a
/// top-level module of the crate, or `kernel::drm`, the real-node backend that lives inside the
/// kernel boundary's directory). Every top-level module must be listed.
const LAYERS: &[(&str, &[&str])] = &[
    ("tools", &["scenario", "model_check"]),
    ("C ABI", &["ffi"]),
    ("backend choice", &["backend"]),
    (
        "winsys",
        &["device", "iova", "bind", "bo", "metadata", "sync"],
    ),
    ("kernel boundary", &["kernel", "uapi"]),
    ("backends", &["kernel::drm", "sim"]),
    ("errno", &["errno"]),
];

/// The allowed arrows: which layers the modules of a layer may use, besides their own module.
/// Data flows down and nothing calls upward, with one arrow that points up on purpose: a backend
/// implements the boundary's `Kernel` trait and decodes its uAPI structs. The two backends know
/// nothing of each other, and the winsys reaches neither: it meets them only through the raw
/// ioctls of the `Kernel` trait, so the code tested on the model is the code that runs on a phone.
const ALLOWED: &[(&str, &str)] = &[
    (
        "tools",
        "tools, C ABI, backend choice, winsys, kernel boundary, backends, errno",
    ),
    // The C ABI creates model devices (`msmws_device_new_sim`) and names model constants.
    (
        "C ABI",
        "backend choice, winsys, kernel boundary, backends, errno",
    ),
    ("backend choice", "winsys, kernel boundary, backends, errno"),
    ("winsys", "winsys, kernel boundary, errno"),
    ("kernel boundary", "kernel boundary, errno"),
    ("backends", "kernel boundary, errno"),
    ("errno", ""),
];

/// The layers `from_layer` may use, as ALLOWED lists them.
fn allowed_targets(from_layer: &str) -> Vec<&'static str> {
    ALLOWED
        .iter()
        .filter(|(l, _)| *l == from_layer)
        .flat_map(|(_, to)| to.split(", ").filter(|t| !t.is_empty()))
        .collect()
}

fn layer_of(module: &str) -> Option<&'static str> {
    LAYERS
        .iter()
        .find(|(_, mods)| mods.contains(&module))
        .map(|(layer, _)| *layer)
}

/// 0 for the top layer.
fn rank(layer: &str) -> usize {
    LAYERS.iter().position(|(l, _)| *l == layer).unwrap()
}

fn allowed(from_layer: &str, to_layer: &str) -> bool {
    allowed_targets(from_layer).contains(&to_layer)
}

// ---- Tokens ------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Ident(String),
    PathSep,
    Open,
    Close,
    Comma,
    Star,
    Other,
}

/// The tokens of `src` that matter for paths, each with its 1-based line; comments, string and
/// char literals and lifetimes are dropped.
fn tokens(src: &str) -> Vec<(Tok, usize)> {
    let c: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    let is_ident = |ch: char| ch == '_' || ch.is_alphanumeric();
    // Skips from `i` past the closing quote of a string whose opening quote is at `i - 1`.
    fn skip_string(c: &[char], mut i: usize, line: &mut usize) -> usize {
        while i < c.len() && c[i] != '"' {
            if c[i] == '\\' {
                i += 1;
            }
            if i < c.len() && c[i] == '\n' {
                *line += 1;
            }
            i += 1;
        }
        i + 1
    }
    while i < c.len() {
        let ch = c[i];
        let next = c.get(i + 1).copied();
        match ch {
            '\n' => {
                line += 1;
                i += 1;
            }
            '/' if next == Some('/') => {
                while i < c.len() && c[i] != '\n' {
                    i += 1;
                }
            }
            '/' if next == Some('*') => {
                let mut depth = 0;
                while i < c.len() {
                    if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                        depth += 1;
                        i += 2;
                    } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        if c[i] == '\n' {
                            line += 1;
                        }
                        i += 1;
                    }
                }
            }
            '"' => i = skip_string(&c, i + 1, &mut line),
            '\'' => {
                if next == Some('\\') {
                    // An escaped char literal: '\n', '\'', '\u{1F600}'. Skip the quote, the
                    // backslash and the escaped char, then up to the closing quote.
                    i += 3;
                    while i < c.len() && c[i] != '\'' {
                        i += 1;
                    }
                    i += 1;
                } else if c.get(i + 2) == Some(&'\'') {
                    i += 3; // 'x'
                } else {
                    i += 1; // a lifetime or a label: the name that follows is harmless
                }
            }
            ':' if next == Some(':') => {
                out.push((Tok::PathSep, line));
                i += 2;
            }
            '{' | '}' | ',' | '*' => {
                out.push((
                    match ch {
                        '{' => Tok::Open,
                        '}' => Tok::Close,
                        ',' => Tok::Comma,
                        _ => Tok::Star,
                    },
                    line,
                ));
                i += 1;
            }
            ch if is_ident(ch) => {
                let start = i;
                while i < c.len() && is_ident(c[i]) {
                    i += 1;
                }
                let word: String = c[start..i].iter().collect();
                // Raw strings: r"…", r#"…"#, br##"…"##.
                if (word == "r" || word == "br") && matches!(c.get(i), Some('"') | Some('#')) {
                    let mut hashes = 0;
                    while c.get(i + hashes) == Some(&'#') {
                        hashes += 1;
                    }
                    if c.get(i + hashes) == Some(&'"') {
                        i += hashes + 1;
                        loop {
                            if i >= c.len() {
                                break;
                            }
                            if c[i] == '\n' {
                                line += 1;
                            }
                            if c[i] == '"' && (1..=hashes).all(|h| c.get(i + h) == Some(&'#')) {
                                i += hashes + 1;
                                break;
                            }
                            i += 1;
                        }
                        continue;
                    }
                    // `r#ident`: a raw identifier; the `#` is skipped as "other" below.
                }
                out.push((Tok::Ident(word), line));
            }
            ch if ch.is_whitespace() => i += 1,
            _ => {
                out.push((Tok::Other, line));
                i += 1;
            }
        }
    }
    out
}

// ---- Paths -------------------------------------------------------------------------------------

/// A module path as written, expanded out of its `use` group: `["crate", "bind", "BindOp"]`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Written {
    segments: Vec<String>,
    line: usize,
}

/// Parses one use tree (or a path in code) at `toks[i]` under `prefix`; returns its paths and the
/// index after it. `a::{b, c::{d, self}, e::*}` gives `a::b`, `a::c::d`, `a::c`, `a::e`.
fn use_tree(toks: &[(Tok, usize)], i: usize, prefix: &[String], out: &mut Vec<Written>) -> usize {
    match toks.get(i) {
        Some((Tok::Open, _)) => {
            let mut j = i + 1;
            loop {
                match toks.get(j) {
                    None => return j,
                    Some((Tok::Close, _)) => return j + 1,
                    Some((Tok::Comma, _)) => j += 1,
                    Some(_) => {
                        let after = use_tree(toks, j, prefix, out);
                        // Anything a use tree does not know (an attribute inside a group) is skipped.
                        j = after.max(j + 1);
                    }
                }
            }
        }
        Some((Tok::Ident(word), line)) => {
            let mut path = prefix.to_vec();
            // `self` inside a group is the group's prefix itself.
            if word != "self" || prefix.is_empty() {
                path.push(word.clone());
            }
            if toks.get(i + 1).map(|t| &t.0) == Some(&Tok::PathSep) {
                use_tree(toks, i + 2, &path, out)
            } else {
                out.push(Written {
                    segments: path,
                    line: *line,
                });
                i + 1
            }
        }
        // `prefix::*`, or a path that ends in `::<T>` (turbofish).
        Some((_, line)) => {
            out.push(Written {
                segments: prefix.to_vec(),
                line: *line,
            });
            i + 1
        }
        None => i,
    }
}

/// Every path starting at `crate`, `$crate`, `super` or `self` in `src`, made absolute (relative to
/// the crate root) from the module `file_module` the file is; with the line it is written on and
/// as it was written.
fn paths(src: &str, file_module: &[String]) -> Vec<(Vec<String>, usize, String)> {
    let toks = tokens(src);
    let mut out = Vec::new();
    // Inline modules open at a brace depth: (depth of their `{`, name).
    let mut inline: Vec<(usize, String)> = Vec::new();
    let mut depth = 0;
    let mut i = 0;
    while i < toks.len() {
        match &toks[i].0 {
            Tok::Open => depth += 1,
            Tok::Close => {
                depth -= 1;
                if inline.last().is_some_and(|(d, _)| *d == depth) {
                    inline.pop();
                }
            }
            Tok::Ident(kw) if kw == "mod" => {
                if let (Some((Tok::Ident(name), _)), Some((Tok::Open, _))) =
                    (toks.get(i + 1), toks.get(i + 2))
                {
                    inline.push((depth, name.clone()));
                    depth += 1;
                    i += 3;
                    continue;
                }
            }
            Tok::Ident(first)
                if matches!(first.as_str(), "crate" | "super" | "self")
                    && toks.get(i + 1).map(|t| &t.0) == Some(&Tok::PathSep)
                    && (i == 0 || toks[i - 1].0 != Tok::PathSep) =>
            {
                let mut written = Vec::new();
                let next = use_tree(&toks, i, &[], &mut written);
                let mut here: Vec<String> = file_module.to_vec();
                here.extend(inline.iter().map(|(_, n)| n.clone()));
                for w in written {
                    let text = w.segments.join("::");
                    if let Some(abs) = absolute(&w.segments, &here) {
                        out.push((abs, w.line, text));
                    }
                }
                // The group's braces were consumed with it: the depth is unchanged.
                i = next;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// `segments` (starting at `crate`, `super` or `self`) relative to the crate root, seen from
/// module `here`; `None` when `super` climbs above the root.
fn absolute(segments: &[String], here: &[String]) -> Option<Vec<String>> {
    let mut abs: Vec<String> = match segments[0].as_str() {
        "crate" => Vec::new(),
        _ => here.to_vec(),
    };
    let mut rest = &segments[1..];
    if segments[0] == "super" {
        abs.pop()?;
        while rest.first().is_some_and(|s| s == "super") {
            abs.pop()?;
            rest = &rest[1..];
        }
    }
    abs.extend(rest.iter().cloned());
    Some(abs)
}

// ---- The check ---------------------------------------------------------------------------------

/// What lib.rs declares: its modules, and each re-exported name with the module it comes from.
struct Root {
    modules: Vec<String>,
    reexports: BTreeMap<String, String>,
}

fn root(lib_rs: &str) -> Root {
    let toks = tokens(lib_rs);
    let mut modules = Vec::new();
    let mut reexports = BTreeMap::new();
    for (i, (t, _)) in toks.iter().enumerate() {
        match (t, toks.get(i + 1)) {
            (Tok::Ident(kw), Some((Tok::Ident(name), _))) if kw == "mod" => {
                modules.push(name.clone())
            }
            (Tok::Ident(kw), Some(_)) if kw == "use" => {
                let mut written = Vec::new();
                use_tree(&toks, i + 1, &[], &mut written);
                for w in written {
                    if let [module, .., name] = w.segments.as_slice() {
                        reexports.insert(name.clone(), module.clone());
                    }
                }
            }
            _ => {}
        }
    }
    Root { modules, reexports }
}

/// The module of the layer table an absolute path lands in (`kernel::drm`, `sim`, ...), after
/// following a root re-export; `None` if it names nothing lib.rs declares.
fn module_of(abs: &[String], root: &Root) -> Option<String> {
    let first = abs.first()?;
    let top = if root.modules.contains(first) {
        first.clone()
    } else {
        root.reexports.get(first)?.clone()
    };
    if first == "kernel" && abs.get(1).is_some_and(|s| s == "drm") {
        return Some("kernel::drm".into());
    }
    Some(top)
}

/// The module path of a file under `src/`: `src/kernel/drm.rs` is `kernel::drm`,
/// `src/sim/mod.rs` is `sim`.
fn file_module(rel: &Path) -> Vec<String> {
    let mut m: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if let Some(last) = m.pop() {
        let stem = last.trim_end_matches(".rs");
        if stem != "mod" && stem != "lib" {
            m.push(stem.to_string());
        }
    }
    m
}

/// The arrows of one file that break the layering, one sentence each.
fn violations(rel: &Path, src: &str, root: &Root) -> Vec<String> {
    let here = file_module(rel);
    let name = format!("src/{}", rel.display());
    let Some(from) = module_of(&here, root) else {
        return vec![format!(
            "{name}: module `{}` is not declared in lib.rs",
            here.join("::")
        )];
    };
    let Some(from_layer) = layer_of(&from) else {
        return vec![format!(
            "{name}: module `{from}` is in no layer: add it to LAYERS in tests/layering.rs"
        )];
    };
    let mut out = Vec::new();
    for (abs, line, text) in paths(src, &here) {
        let Some(to) = module_of(&abs, root) else {
            if abs.is_empty() {
                continue; // `crate::*` or `super::*` up to the root: names no module by itself
            }
            out.push(format!(
                "{name}:{line}: `{text}` names nothing lib.rs declares or re-exports"
            ));
            continue;
        };
        if to == from {
            continue;
        }
        let Some(to_layer) = layer_of(&to) else {
            out.push(format!(
                "{name}:{line}: `{text}` reaches module `{to}`, which is in no layer"
            ));
            continue;
        };
        if !allowed(from_layer, to_layer) {
            let why = if from_layer == "winsys" && to_layer == "backends" {
                "the winsys meets a backend only through the raw ioctls of the `Kernel` trait"
            } else if rank(to_layer) < rank(from_layer) {
                "an upward arrow"
            } else {
                "an arrow ALLOWED in tests/layering.rs does not list"
            };
            out.push(format!(
                "{name}:{line}: `{text}`: {from} ({from_layer}) may not use {to} ({to_layer}): {why}"
            ));
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn the_crate_follows_the_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let root = root(&std::fs::read_to_string(src.join("lib.rs")).unwrap());
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut bad = Vec::new();
    let mut arrows = 0;
    for f in &files {
        let rel = f.strip_prefix(&src).unwrap();
        if rel == Path::new("lib.rs") || rel.starts_with("bin") {
            continue;
        }
        let text = std::fs::read_to_string(f).unwrap();
        arrows += paths(&text, &file_module(rel)).len();
        bad.extend(violations(rel, &text, &root));
    }
    // A scanner that finds nothing checks nothing.
    assert!(
        files.len() > 50 && arrows > 200,
        "{} files, {arrows} paths",
        files.len()
    );
    for m in &root.modules {
        assert!(
            layer_of(m).is_some(),
            "src/{m}: module `{m}` is in no layer: add it to LAYERS"
        );
    }
    assert!(bad.is_empty(), "layering broken:\n{}", bad.join("\n"));
}

#[test]
fn every_layer_has_its_arrows_written_down() {
    for (layer, _) in LAYERS {
        assert!(ALLOWED.iter().any(|(l, _)| l == layer), "{layer}");
    }
    for (from, _) in ALLOWED {
        assert!(layer_of_name(from), "{from}");
        for to in allowed_targets(from) {
            assert!(layer_of_name(to), "{from} -> {to}: no such layer");
        }
    }
}

fn layer_of_name(name: &str) -> bool {
    LAYERS.iter().any(|(l, _)| *l == name)
}

// ---- The scanner on made-up files --------------------------------------------------------------

fn test_root() -> Root {
    root(
        "pub mod bind; pub mod device; pub mod ffi; pub mod kernel; pub mod sim; pub mod uapi;
          pub mod errno;
          pub use device::{Device, VmMode};
          pub use errno::{Errno, ErrnoError};",
    )
}

fn check(file: &str, src: &str) -> Vec<String> {
    violations(
        Path::new(file.trim_start_matches("src/")),
        src,
        &test_root(),
    )
}

/// Asserts that checking `src` as `file` gives one violation per entry of `expected`, each
/// starting with it, in order.
fn assert_violations(file: &str, src: &str, expected: &[&str]) -> Vec<String> {
    let v = check(file, src);
    assert_eq!(v.len(), expected.len(), "{v:#?}");
    for (got, want) in v.iter().zip(expected) {
        assert!(got.starts_with(want), "{got}\ndoes not start with\n{want}");
    }
    v
}

#[test]
fn an_upward_import_fails_with_file_line_and_path() {
    let src = "use super::Kernel;\nuse crate::{\n    uapi::*,\n    bind::{BindOp, Target},\n};\n\
               fn f() -> crate::ffi::FfiError { todo!() }\n";
    let v = assert_violations(
        "src/kernel/ioctl.rs",
        src,
        &[
            "src/kernel/ioctl.rs:4: `crate::bind::BindOp`: kernel (kernel boundary) may not use \
             bind (winsys)",
            "src/kernel/ioctl.rs:4: `crate::bind::Target`",
            "src/kernel/ioctl.rs:6: `crate::ffi::FfiError`",
        ],
    );
    assert!(v[2].ends_with("an upward arrow"), "{}", v[2]);
}

#[test]
fn the_winsys_reaching_the_model_fails() {
    let v = assert_violations(
        "src/device.rs",
        "use crate::sim::{Sim, SimError};",
        &[
            "src/device.rs:1: `crate::sim::Sim`",
            "src/device.rs:1: `crate::sim::SimError`",
        ],
    );
    assert!(
        v[0].ends_with("raw ioctls of the `Kernel` trait"),
        "{}",
        v[0]
    );
    // A root re-export counts as the module it comes from.
    assert_violations(
        "src/sim/gem.rs",
        "use crate::Device;",
        &["src/sim/gem.rs:1"],
    );
    assert_violations("src/sim/gem.rs", "use crate::{Errno, uapi::*};", &[]);
}

#[test]
fn the_real_node_backend_is_a_backend_inside_the_kernel_directory() {
    // drm.rs implements the boundary's trait: its `super::` is the boundary, allowed.
    assert_violations("src/kernel/drm.rs", "use super::{ioctl, Kernel};", &[]);
    // The boundary and the winsys may not name it, nor may the other backend.
    for (file, src) in [
        ("src/kernel/ioctl.rs", "use super::drm::DrmKernel;"),
        ("src/kernel/mod.rs", "fn f() { self::drm::DrmKernel::x(); }"),
        ("src/bind/vm.rs", "use crate::kernel::{drm, Kernel};"),
        ("src/sim/mod.rs", "use crate::kernel::drm::OpenError;"),
    ] {
        assert_violations(file, src, &[&format!("{file}:1: `")]);
    }
}

#[test]
fn super_in_an_inline_module_is_the_file_module() {
    let src = "fn a() {}\n#[cfg(test)]\nmod tests {\n    use super::*;\n    use super::super::sim::Sim;\n}\n\
               fn b() { super::sim::x(); }";
    assert_violations(
        "src/device.rs",
        src,
        &[
            "src/device.rs:5: `super::super::sim::Sim`",
            "src/device.rs:7: `super::sim::x`",
        ],
    );
}

#[test]
fn comments_strings_and_chars_are_not_imports() {
    let src = r####"
        //! Talks to [`crate::sim`] only through ioctls.
        /* use crate::sim::Sim; /* nested */ crate::ffi::x */
        /// `crate::ffi::boundary`
        fn f<'a>(x: &'a str) -> char {
            let _ = "crate::sim::Sim \" crate::ffi";
            let _ = r#"crate::sim::"# ;
            let _ = br##"crate::ffi "# "##;
            let _ = ('"', '\'', '{', b'}');
            'outer: loop { break 'outer; }
            crate::uapi::MSM_PARAM_GPU_ID as char
        }
    "####;
    let v = check("src/kernel/ioctl.rs", src);
    assert!(v.is_empty(), "{v:#?}");
    let p = paths(src, &["kernel".into(), "ioctl".into()]);
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].1, 11, "the line of the one real path");
}

#[test]
fn a_name_nobody_declares_and_a_module_in_no_layer_fail() {
    assert_violations(
        "src/bind/vm.rs",
        "use crate::Nowhere;",
        &["src/bind/vm.rs:1: `crate::Nowhere` names nothing"],
    );
    assert_violations(
        "src/shim/mod.rs",
        "",
        &["src/shim/mod.rs: module `shim` is not declared in lib.rs"],
    );
}
