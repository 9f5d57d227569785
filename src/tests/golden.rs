//! Files under `docs/` that tests keep in step with what the code
//! produces, so that a change shows in the diff a reviewer reads.

extern crate std;

use std::format;

/// Compares `text` with the file at `docs/<name>` and panics at the first
/// difference, with `why` (what a difference may mean); with
/// `VACMM_BLESS=1`, rewrites the file instead.
pub fn check(name: &str, text: &str, why: &str) {
    let path = format!("{}/docs/{name}", env!("CARGO_MANIFEST_DIR"));
    if std::env::var("VACMM_BLESS").is_ok_and(|v| v == "1") {
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("{path}: {e}"));
        return;
    }
    let stored = std::fs::read_to_string(&path).unwrap_or_default();
    if stored != text {
        let differ = stored
            .lines()
            .zip(text.lines())
            .find(|(old, new)| old != new)
            .map(|(old, new)| format!("\n  file: {old}\n  now:  {new}"))
            .unwrap_or_else(|| "\n  (a line was added or removed)".into());
        panic!(
            "docs/{name} differs from {why}; first difference:{differ}\n\
             review the change and rerun with VACMM_BLESS=1 to rewrite the file"
        );
    }
}
