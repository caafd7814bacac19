//! Every function the library exports runs behind the panic boundary
//! (`boundary::guard` or `boundary::guard_value`): a structural check of
//! ffi/src, so a new export without it fails here, not in a C program.

use std::path::Path;

#[test]
fn every_export_is_guarded() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut exports = 0;
    for entry in std::fs::read_dir(&src).expect("read ffi/src") {
        let path = entry.expect("dir entry").path();
        if path.extension() != Some(std::ffi::OsStr::new("rs")) {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read source");
        let lines: Vec<&str> = text.lines().collect();
        for (i, l) in lines.iter().enumerate() {
            if l.trim() != "#[no_mangle]" {
                continue;
            }
            exports += 1;
            // The body: from the signature's `{` to the first statement.
            let open = (i..lines.len())
                .find(|&j| lines[j].trim_end().ends_with('{'))
                .expect("function body");
            let first = lines[open + 1..]
                .iter()
                .map(|s| s.trim())
                .find(|s| !s.is_empty() && !s.starts_with("//"))
                .expect("a statement");
            assert!(
                first.starts_with("guard(")
                    || first.starts_with("guard_value(")
                    || first.starts_with("let _ = guard(")
                    || first.starts_with("let s: &'static str = guard_value(")
                    || first.starts_with("crate::boundary::guard_value(")
                    || first.starts_with("boundary::guard_value("),
                "{}:{}: export `{}` does not start with the panic boundary: `{first}`",
                path.display(),
                i + 1,
                lines[i + 1].trim()
            );
        }
    }
    assert!(exports >= 46, "only {exports} exports found");
}
