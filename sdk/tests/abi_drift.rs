//! ABI drift test: the C compiler's view of `relaymap_abi.h` against the
//! Rust side, item by item, generated rather than listed by hand.
//!
//! * The items come from the sources themselves: every `struct relaymap_*`
//!   and object-like `#define RELAYMAP_*` of the header; every struct,
//!   field and constant of the generated `src/abi_sys.rs`, whose layout
//!   assertions rustc has already checked against the Rust types; every
//!   ioctl of `relaymap::abi::IOCTLS`. Each set must match the others.
//! * A C program printing every size, offset, constant and ioctl number is
//!   generated from that list, compiled against the header with `cc`, and
//!   its output compared with the Rust values.
//! * The vendored copy `abi/relaymap_abi.h` (what the packaged crate
//!   carries) must equal `../include/relaymap_abi.h` where that exists.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

const ABI_SYS: &str = include_str!("../src/abi_sys.rs");

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn vendored() -> PathBuf {
    root().join("abi/relaymap_abi.h")
}

/// Words after `pat` up to the first char not in [A-Za-z0-9_].
fn ident_after<'a>(s: &'a str, pat: &str) -> Option<&'a str> {
    let rest = s.strip_prefix(pat)?;
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    (end > 0).then(|| &rest[..end])
}

#[derive(Debug, Default)]
struct RustSide {
    /// struct -> fields (Rust names), in order.
    structs: BTreeMap<String, Vec<String>>,
    /// "sizeof S" / "offsetof S.f" (C field names) -> value, from the
    /// layout assertions rustc checked.
    layout: BTreeMap<String, u64>,
    /// Integer constants.
    ints: BTreeMap<String, i128>,
    /// String constants, without the NUL.
    strings: BTreeMap<String, String>,
}

fn c_field(f: &str) -> &str {
    // bindgen renames C fields that are Rust keywords.
    f.strip_suffix('_')
        .filter(|k| ["type", "ref", "fn", "loop", "match"].contains(k))
        .unwrap_or(f)
}

fn rust_side() -> RustSide {
    let mut r = RustSide::default();
    let mut cur: Option<String> = None;
    for line in ABI_SYS.lines() {
        let l = line.trim();
        if let Some(name) = ident_after(l, "pub struct ") {
            cur = Some(name.to_string());
            r.structs.insert(name.to_string(), Vec::new());
            continue;
        }
        if l == "}" {
            cur = None;
        }
        if let (Some(s), Some(f)) = (&cur, ident_after(l, "pub ")) {
            r.structs.get_mut(s).unwrap().push(f.to_string());
        }
        if let Some(name) = ident_after(l, "pub const ") {
            let (_, v) = l.split_once(" = ").expect("const value");
            let v = v.trim_end_matches(';');
            if let Some(b) = v.strip_prefix("b\"") {
                let s = b.trim_end_matches('"').trim_end_matches("\\0");
                r.strings.insert(name.into(), s.into());
            } else {
                r.ints
                    .insert(name.into(), v.parse().expect("integer constant"));
            }
        }
        // Layout assertions (one per line after formatting).
        if let Some(p) = l.find("size_of::<") {
            let rest = &l[p + "size_of::<".len()..];
            let (ty, rest) = rest.split_once(">() - ").unwrap();
            let n: u64 = rest.split("usize").next().unwrap().parse().unwrap();
            r.layout.insert(format!("sizeof {ty}"), n);
        }
        if let Some(p) = l.find("offset_of!(") {
            let rest = &l[p + "offset_of!(".len()..];
            let (args, rest) = rest.split_once(") - ").unwrap();
            let (ty, f) = args.split_once(", ").unwrap();
            let n: u64 = rest.split("usize").next().unwrap().parse().unwrap();
            r.layout.insert(format!("offsetof {ty}.{}", c_field(f)), n);
        }
    }
    r.structs.retain(|k, _| k.starts_with("relaymap_"));
    r
}

/// (structs, object-like RELAYMAP_* macros) of the header.
fn header_items(text: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut structs = BTreeSet::new();
    let mut macros = BTreeSet::new();
    for line in text.lines() {
        let l = line.trim();
        if let Some(s) = ident_after(l, "struct relaymap_") {
            if l.ends_with('{') {
                structs.insert(format!("relaymap_{s}"));
            }
        }
        if let Some(m) = ident_after(l, "#define RELAYMAP_") {
            let name = format!("RELAYMAP_{m}");
            // Function-like macros (RELAYMAP_IOC(dir, ...)) are not items.
            if !l["#define ".len() + name.len()..].starts_with('(') {
                macros.insert(name);
            }
        }
    }
    (structs, macros)
}

fn compile_and_run(program: &str, include: &Path) -> String {
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let src = out.join("abi_drift.c");
    let exe = out.join("abi_drift");
    std::fs::write(&src, program).unwrap();
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let o = Command::new(&cc)
        .args(["-std=c11", "-Wall", "-Werror", "-I"])
        .arg(include)
        .arg(&src)
        .arg("-o")
        .arg(&exe)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cc} (the ABI drift test needs a C compiler): {e}"));
    assert!(
        o.status.success(),
        "compiling the header failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = Command::new(&exe).output().unwrap();
    assert!(o.status.success());
    String::from_utf8(o.stdout).unwrap()
}

#[test]
#[cfg_attr(miri, ignore = "runs cc")]
fn rust_side_matches_c_compiler() {
    let header = std::fs::read_to_string(vendored()).unwrap();
    let (h_structs, h_macros) = header_items(&header);
    let r = rust_side();
    let ioctls: BTreeMap<String, u32> = relaymap::abi::IOCTLS
        .iter()
        .map(|(n, v)| (n.to_string(), *v))
        .collect();

    // 1. The same items everywhere.
    let r_structs: BTreeSet<String> = r.structs.keys().cloned().collect();
    assert_eq!(h_structs, r_structs, "structs of the header vs abi_sys.rs");
    let mut r_macros: BTreeSet<String> = r.ints.keys().chain(r.strings.keys()).cloned().collect();
    r_macros.extend(ioctls.keys().cloned());
    assert_eq!(
        h_macros, r_macros,
        "object-like RELAYMAP_* macros of the header vs abi_sys.rs constants + abi::IOCTLS"
    );
    for (s, fields) in &r.structs {
        assert!(
            r.layout.contains_key(&format!("sizeof {s}")),
            "no size check of {s}"
        );
        for f in fields {
            let k = format!("offsetof {s}.{}", c_field(f));
            assert!(r.layout.contains_key(&k), "no offset check of {k}");
        }
    }

    // 2. The C compiler's values.
    let mut prog = String::from(
        "#include <stdio.h>\n#include <stddef.h>\n#include \"relaymap_abi.h\"\nint main(void) {\n",
    );
    for (s, fields) in &r.structs {
        prog += &format!("printf(\"sizeof {s} %zu\\n\", sizeof(struct {s}));\n");
        for f in fields {
            let f = c_field(f);
            prog += &format!("printf(\"offsetof {s}.{f} %zu\\n\", offsetof(struct {s}, {f}));\n");
        }
    }
    for k in r.ints.keys() {
        prog += &format!("printf(\"{k} %lld\\n\", (long long)({k}));\n");
    }
    for k in r.strings.keys() {
        prog += &format!("printf(\"{k} %s\\n\", {k});\n");
    }
    for k in ioctls.keys() {
        prog += &format!("printf(\"{k} %llu\\n\", (unsigned long long)({k}));\n");
    }
    prog += "return 0;\n}\n";
    let c: BTreeMap<String, String> = compile_and_run(&prog, vendored().parent().unwrap())
        .lines()
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect();

    // 3. Compare, every item.
    let mut rust: BTreeMap<String, String> = BTreeMap::new();
    rust.extend(r.layout.iter().map(|(k, v)| (k.clone(), v.to_string())));
    rust.extend(r.ints.iter().map(|(k, v)| (k.clone(), v.to_string())));
    rust.extend(r.strings.iter().map(|(k, v)| (k.clone(), v.clone())));
    rust.extend(ioctls.iter().map(|(k, v)| (k.clone(), v.to_string())));
    let mut drift = Vec::new();
    for (k, v) in &c {
        match rust.get(k) {
            Some(x) if x == v => {}
            Some(x) => drift.push(format!("{k}: C {v}, Rust {x}")),
            None => drift.push(format!("{k}: printed by C, unknown to Rust")),
        }
    }
    for k in rust.keys().filter(|k| !c.contains_key(*k)) {
        drift.push(format!("{k}: on the Rust side, not printed by C"));
    }
    assert!(drift.is_empty(), "ABI drift:\n{}", drift.join("\n"));
    eprintln!("compared {} items with the C compiler", c.len());
    assert_eq!(
        relaymap::abi::DEVICE_PATH,
        r.strings["RELAYMAP_DEVICE_PATH"]
    );
}

#[test]
fn vendored_header_equals_include() {
    let include = root().join("../include/relaymap_abi.h");
    let Ok(upstream) = std::fs::read(&include) else {
        // Straight to stderr (not eprintln!, which the test harness
        // captures), so the skip is visible in a normal `cargo test`.
        let _ = writeln!(
            std::io::stderr(),
            "skipping: {} is absent (a packaged crate): only the vendored copy is checked",
            include.display()
        );
        return;
    };
    let copy = std::fs::read(vendored()).unwrap();
    assert!(
        copy == upstream,
        "sdk/abi/relaymap_abi.h differs from include/relaymap_abi.h: \
         cp include/relaymap_abi.h sdk/abi/ and regenerate the bindings \
         (RELAYMAP_BLESS=1 cargo test -p relaymap --test abi_bindgen)"
    );
}
