//! What cachesan reported on Linux, against what `docs/cachesan-linux.md`
//! explains: every report group (kind × function) the plugin prints must
//! have a row in the page's table for the board, and every row must have
//! been reported. A board's rows are the table lines under a heading that
//! names the board in a code span (`` ### `versatilepb-arm926` ``), up to
//! the next heading.
//! Either difference fails the run: an unexplained report is a finding to
//! look into, a row no longer reported is a page out of date.

use std::path::Path;

/// The page that explains every group.
pub const DOC: &str = "docs/cachesan-linux.md";

/// One report group: `group kind=K function=F count=N sites=S`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    pub kind: String,
    pub function: String,
    pub count: u64,
}

/// The groups in a cachesan log.
pub fn groups(log: &str) -> Vec<Group> {
    log.lines()
        .filter_map(|line| line.strip_prefix("cachesan: group "))
        .filter_map(|rest| {
            let field = |key: &str| {
                rest.split_whitespace()
                    .find_map(|w| w.strip_prefix(key))
                    .map(str::to_string)
            };
            Some(Group {
                kind: field("kind=")?,
                function: field("function=")?,
                count: field("count=")?.parse().ok()?,
            })
        })
        .collect()
}

/// The sites in a cachesan log: (kind, pc, the function of its group).
pub fn sites(log: &str) -> Vec<(String, String, String)> {
    log.lines()
        .filter_map(|line| line.strip_prefix("cachesan: site "))
        .filter_map(|rest| {
            let field = |key: &str| rest.split_whitespace().find_map(|w| w.strip_prefix(key));
            // The group's function (where a stale write-back's line was
            // dirtied), else the function of the PC.
            let at = field("group=").or_else(|| field("at="))?;
            let function = at.split('+').next().unwrap_or(at);
            Some((
                field("kind=")?.into(),
                field("pc=")?.into(),
                function.into(),
            ))
        })
        .collect()
}

/// The page's table lines for `board`: those under a heading naming it.
fn board_rows<'a>(doc: &'a str, board: &str) -> Vec<&'a str> {
    let tag = format!("`{board}`");
    let mut current = false;
    let mut rows = Vec::new();
    for line in doc.lines() {
        if line.starts_with('#') {
            current = line.contains(&tag);
        } else if current && line.starts_with('|') {
            rows.push(line);
        }
    }
    rows
}

/// The cells of a table line.
fn cells(line: &str) -> impl Iterator<Item = &str> {
    line.strip_prefix('|')
        .unwrap_or(line)
        .split('|')
        .map(str::trim)
}

/// A code span's text.
fn code(cell: Option<&str>) -> Option<String> {
    cell.and_then(|c| c.strip_prefix('`')?.strip_suffix('`'))
        .map(str::to_string)
}

/// The controls the page lists for `board`: `| omit=SYMBOL | `KIND` |
/// `FUNCTION` | … |` rows, the groups that omitting SYMBOL's maintenance
/// must add (a row whose kind is not a code span: it must add none).
pub fn controls(doc: &str, board: &str) -> Vec<(String, Option<(String, String)>)> {
    board_rows(doc, board)
        .into_iter()
        .filter_map(|line| {
            let mut cells = cells(line);
            let symbol = cells.next()?.strip_prefix("omit=")?.to_string();
            let kind = code(cells.next());
            let function = code(cells.next());
            Some((symbol, kind.zip(function)))
        })
        .collect()
}

/// What omitting `symbol` must show against the run without it: the
/// groups of the sites it adds are exactly the page's rows for it. Returns
/// the differences.
pub fn compare_control(
    board: &str,
    symbol: &str,
    base: &str,
    omitted: &str,
    doc: &str,
) -> Vec<String> {
    let before = sites(base);
    let mut added: Vec<(String, String)> = sites(omitted)
        .into_iter()
        .filter(|(kind, pc, _)| !before.iter().any(|(k, p, _)| k == kind && p == pc))
        .map(|(kind, _, function)| (kind, function))
        .collect();
    added.sort();
    added.dedup();
    let mut expected: Vec<(String, String)> = controls(doc, board)
        .into_iter()
        .filter(|(s, _)| s == symbol)
        .filter_map(|(_, group)| group)
        .collect();
    expected.sort();
    let mut problems = Vec::new();
    for (kind, function) in &added {
        if !expected.contains(&(kind.clone(), function.clone())) {
            problems.push(format!(
                "omit={symbol} added {kind} in {function} on `{board}`, which {DOC} does not list"
            ));
        }
    }
    for (kind, function) in &expected {
        if !added.contains(&(kind.clone(), function.clone())) {
            problems.push(format!(
                "omit={symbol} did not add {kind} in {function} on `{board}`, which {DOC} lists"
            ));
        }
    }
    problems
}

/// The (kind, function) rows of the page's tables for `board`: table
/// lines whose first two cells are code spans,
/// `` | `StaleRead` | `io_commit_cqring` | ``.
pub fn explained(doc: &str, board: &str) -> Vec<(String, String)> {
    board_rows(doc, board)
        .into_iter()
        .filter_map(|line| {
            let mut cells = cells(line);
            Some((code(cells.next())?, code(cells.next())?))
        })
        .collect()
}

/// The differences between `log`'s groups and `doc`'s rows for `board`,
/// one line each; empty when they agree.
pub fn compare(board: &str, log: &str, doc: &str) -> Vec<String> {
    let found = groups(log);
    let rows = explained(doc, board);
    let mut problems = Vec::new();
    for g in &found {
        if !rows.iter().any(|(k, f)| *k == g.kind && *f == g.function) {
            problems.push(format!(
                "unexplained: {} in {} ({} reports): add a row under `{board}` in {DOC} with its verdict",
                g.kind, g.function, g.count
            ));
        }
    }
    for (kind, function) in &rows {
        if !found
            .iter()
            .any(|g| g.kind == *kind && g.function == *function)
        {
            problems.push(format!(
                "{DOC} explains {kind} in {function} for `{board}`, which was not reported"
            ));
        }
    }
    problems
}

/// Reads the page from the repository.
pub fn read_doc(root: &Path) -> Result<String, String> {
    let path = root.join(DOC);
    std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
cachesan: site kind=StaleFetch pc=0xb6f29000 at=? count=1
cachesan: group kind=StaleFetch function=? count=2 sites=2
cachesan: group kind=StaleRead function=uring_body count=1 sites=1
cachesan: result violations=3
";

    #[test]
    fn a_control_must_add_exactly_its_rows() {
        let base = "cachesan: site kind=StaleRead pc=0x10 at=memcpy+0x8 count=1\n";
        let omitted = "cachesan: site kind=StaleRead pc=0x10 at=memcpy+0x8 count=3\n\
                       cachesan: site kind=StaleRead pc=0x14 at=memcpy+0xc count=1\n\
                       cachesan: site kind=StaleRead pc=0x20 at=expect+0x4 count=1\n";
        let doc = "\
### `b1`
| omit=flush | `StaleRead` | `memcpy` | more |
| omit=flush | `StaleRead` | `expect` | the user |
| omit=unneeded | — | — | nothing |
";
        assert!(compare_control("b1", "flush", base, omitted, doc).is_empty());
        assert!(compare_control("b1", "unneeded", base, base, doc).is_empty());
        let problems = compare_control("b1", "unneeded", base, omitted, doc);
        assert_eq!(problems.len(), 2, "{problems:?}");
        let problems = compare_control("b1", "flush", base, base, doc);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("did not add"));
        // Control rows are not explanations of the plain run, and another
        // board has none.
        assert!(explained(doc, "b1").is_empty());
        assert!(controls(doc, "b2").is_empty());
    }

    #[test]
    fn groups_are_read_from_the_summary() {
        assert_eq!(
            groups(LOG),
            [
                Group {
                    kind: "StaleFetch".into(),
                    function: "?".into(),
                    count: 2
                },
                Group {
                    kind: "StaleRead".into(),
                    function: "uring_body".into(),
                    count: 1
                }
            ]
        );
    }

    #[test]
    fn every_group_needs_a_row_and_every_row_a_group() {
        let doc = "\
## The reports
### `b1`
| kind | function | verdict |
|---|---|---|
| `StaleFetch` | `?` | the negative control |
| `StaleRead` | `uring_body` | Linux's gap |
### `b2`
| `StaleFetch` | `?` | the negative control |
";
        assert!(compare("b1", LOG, doc).is_empty());
        // b2's table lacks the stale read.
        let problems = compare("b2", LOG, doc);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].starts_with("unexplained: StaleRead in uring_body"));
        let extra_row = doc.replace(
            "### `b2`",
            "| `StaleWriteBack` | `io_commit_cqring` | gone |\n### `b2`",
        );
        let problems = compare("b1", LOG, &extra_row);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("StaleWriteBack in io_commit_cqring"));
    }
}
