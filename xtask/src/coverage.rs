//! `cargo xtask coverage`: line coverage of the host suites with
//! cargo-llvm-cov (pinned, installed when missing together with the
//! nightly `llvm-tools` component, see [`prereq`]).
//!
//! Runs `cargo llvm-cov --no-report -p vacmm --features sim` (unit and
//! integration tests, `cargo test --tests`: no doctests, as in `cargo xtask
//! mutants`), then `cargo llvm-cov report --lcov` into
//! `target/vacmm-coverage/lcov.info`, reads that file and prints the line coverage of
//! `src/coherence`, `src/mm` and `src/mmu`: per directory, per file, and
//! the lines no test reached as compact ranges. Test code (`tests.rs`
//! files, `tests/` directories) is left out of the numbers.
//!
//! The random programs run [`COVERAGE_CASES`] programs of 10,000 operations
//! per preset instead of 256 unless `VACMM_CASES` is set: instrumented, on
//! the project's shared 2-core machine, the full 256 took over half an
//! hour for two of the five presets alone; 16 take about 5 minutes and
//! reach exactly the lines that 8 × 4,000 (`cargo xtask mutants`) reach. `--fail-under PCT` fails when a directory is below PCT
//! percent; `--report-only` reads the last run's data again.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use crate::cargo;
use crate::flags::Flags;
use crate::prereq::{self, CARGO_LLVM_COV};

/// The directories reported, relative to the root.
pub const DIRECTORIES: [&str; 3] = ["src/coherence", "src/mm", "src/mmu"];
/// Random programs per preset under coverage (default 256, see above).
pub const COVERAGE_CASES: u32 = 16;
/// Operations per program of the policy × switcher × cache sweep (2,010
/// programs; 300 by default): which lines a program reaches is settled
/// early, and instrumented, the full sweep is most of the run.
pub const COVERAGE_SWEEP_OPS: u32 = 60;
/// How many of the largest uncovered ranges the summary names.
const TOP_RANGES: usize = 15;

/// What `cargo xtask coverage` was asked to do.
#[derive(Debug, Default, PartialEq)]
pub struct Options {
    /// Fail when a directory's line coverage is below this percentage.
    pub fail_under: Option<f64>,
    /// Report the last run's data again without running the tests.
    pub report_only: bool,
}

impl Options {
    pub fn parse(args: &[String]) -> Result<Options, String> {
        let mut options = Options::default();
        let mut flags = Flags::new("coverage", args);
        while let Some(flag) = flags.next_flag() {
            match flag.name {
                "--fail-under" => {
                    let v = flags.value(&flag)?;
                    let pct: f64 = v
                        .trim_end_matches('%')
                        .parse()
                        .map_err(|_| format!("coverage: --fail-under {v:?} is not a percentage"))?;
                    if !(0.0..=100.0).contains(&pct) {
                        return Err(format!("coverage: --fail-under {v}: 0 to 100"));
                    }
                    options.fail_under = Some(pct);
                }
                "--report-only" if flag.inline.is_none() => options.report_only = true,
                _ => {
                    return Err(format!(
                        "coverage: unrecognised argument {:?}\n\n{}",
                        flag.arg,
                        crate::USAGE
                    ));
                }
            }
        }
        Ok(options)
    }
}

pub fn run(options: &Options) -> Result<(), String> {
    prereq::ensure_rustup_component("llvm-tools")?;
    prereq::ensure_cargo_tool(&CARGO_LLVM_COV)?;
    if !options.report_only {
        let mut command = cargo::cargo();
        command.args([
            "llvm-cov",
            "--no-report",
            "-p",
            "vacmm",
            "--features",
            "sim",
        ]);
        for (name, value) in [
            ("VACMM_CASES", COVERAGE_CASES),
            ("VACMM_SWEEP_OPS", COVERAGE_SWEEP_OPS),
        ] {
            match std::env::var(name) {
                Ok(set) => eprintln!("xtask: {name}={set} (from the environment)"),
                Err(_) => {
                    command.env(name, value.to_string());
                }
            }
        }
        eprintln!("xtask: cargo llvm-cov --no-report -p vacmm --features sim");
        let status = command
            .status()
            .map_err(|e| format!("cannot run cargo llvm-cov: {e}"))?;
        if !status.success() {
            return Err(format!(
                "cargo llvm-cov failed ({status}): a test failed or the build broke, see above"
            ));
        }
    }
    // Not target/llvm-cov: cargo-llvm-cov empties that directory itself.
    let lcov_dir = cargo::target_directory()?.join("vacmm-coverage");
    std::fs::create_dir_all(&lcov_dir)
        .map_err(|e| format!("cannot create {}: {e}", lcov_dir.display()))?;
    let lcov_path = lcov_dir.join("lcov.info");
    let output = cargo::cargo()
        .args([
            "llvm-cov",
            "report",
            "-p",
            "vacmm",
            "--lcov",
            "--output-path",
        ])
        .arg(&lcov_path)
        .output()
        .map_err(|e| format!("cannot run cargo llvm-cov report: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "cargo llvm-cov report failed ({}){}:\n{}",
            output.status,
            if options.report_only {
                " (--report-only needs an earlier `cargo xtask coverage`)"
            } else {
                ""
            },
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let text = std::fs::read_to_string(&lcov_path)
        .map_err(|e| format!("cannot read {}: {e}", lcov_path.display()))?;
    let files = parse_lcov(&text, &cargo::root())?;
    let report = Report::new(&files);
    print!("{}", report.render());
    if let Some(min) = options.fail_under {
        let low: Vec<String> = report
            .directories
            .iter()
            .filter(|d| d.counts.percent() < min)
            .map(|d| format!("{} {:.1}%", d.name, d.counts.percent()))
            .collect();
        if !low.is_empty() {
            return Err(format!("line coverage under {min}%: {}", low.join(", ")));
        }
        println!("every directory at {min}% or more");
    }
    Ok(())
}

/// One source file's instrumented lines: line number → execution count.
pub type LineCounts = BTreeMap<u32, u64>;

/// Reads an LCOV tracefile: `SF:<path>` starts a file, `DA:<line>,<count>`
/// gives a line, `end_of_record` ends the file. Paths come back relative to
/// `root` (others stay as they are); a line listed twice keeps the larger
/// count (both are executions of the same line).
pub fn parse_lcov(text: &str, root: &Path) -> Result<BTreeMap<String, LineCounts>, String> {
    let mut files: BTreeMap<String, LineCounts> = BTreeMap::new();
    let mut current: Option<String> = None;
    for (i, line) in text.lines().enumerate() {
        let at = || format!("lcov line {}: {line:?}", i + 1);
        let line = line.trim();
        if let Some(path) = line.strip_prefix("SF:") {
            let path = Path::new(path);
            let relative = path.strip_prefix(root).unwrap_or(path);
            let name = relative.to_string_lossy().replace('\\', "/");
            files.entry(name.clone()).or_default();
            current = Some(name);
        } else if let Some(data) = line.strip_prefix("DA:") {
            let file = current
                .as_ref()
                .ok_or_else(|| format!("{}: DA before any SF", at()))?;
            let mut fields = data.split(',');
            let number: u32 = fields
                .next()
                .and_then(|f| f.parse().ok())
                .ok_or_else(|| format!("{}: bad line number", at()))?;
            let count: u64 = fields
                .next()
                .and_then(|f| {
                    f.parse::<u64>()
                        .ok()
                        .or_else(|| f.parse::<f64>().ok().map(|x| x as u64))
                })
                .ok_or_else(|| format!("{}: bad count", at()))?;
            let entry = files
                .get_mut(file)
                .expect("SF inserted the file")
                .entry(number)
                .or_default();
            *entry = (*entry).max(count);
        } else if line == "end_of_record" {
            current = None;
        }
    }
    if files.is_empty() {
        return Err("the LCOV file names no source file".into());
    }
    Ok(files)
}

/// Covered and instrumented lines.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Counts {
    pub covered: usize,
    pub lines: usize,
}

impl Counts {
    fn of(lines: &LineCounts) -> Counts {
        Counts {
            covered: lines.values().filter(|&&c| c > 0).count(),
            lines: lines.len(),
        }
    }
    fn add(&mut self, other: Counts) {
        self.covered += other.covered;
        self.lines += other.lines;
    }
    /// Percent covered; 100 when nothing is instrumented.
    pub fn percent(self) -> f64 {
        if self.lines == 0 {
            100.0
        } else {
            100.0 * self.covered as f64 / self.lines as f64
        }
    }
}

/// A run of uncovered lines: `first..=last` with no covered line between,
/// `lines` of them instrumented (blank and comment lines are not).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Range {
    pub first: u32,
    pub last: u32,
    pub lines: usize,
}

impl std::fmt::Display for Range {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}

/// The uncovered lines of a file as ranges, in line order.
pub fn uncovered_ranges(lines: &LineCounts) -> Vec<Range> {
    let mut ranges: Vec<Range> = Vec::new();
    let mut open = false;
    for (&number, &count) in lines {
        if count > 0 {
            open = false;
        } else if open {
            let last = ranges.last_mut().expect("an open range exists");
            last.last = number;
            last.lines += 1;
        } else {
            ranges.push(Range {
                first: number,
                last: number,
                lines: 1,
            });
            open = true;
        }
    }
    ranges
}

/// Test code, which the numbers leave out.
fn is_test_file(path: &str) -> bool {
    path.ends_with("/tests.rs") || path.contains("/tests/")
}

struct FileReport {
    path: String,
    counts: Counts,
    uncovered: Vec<Range>,
}

struct DirectoryReport {
    name: &'static str,
    counts: Counts,
    files: Vec<FileReport>,
}

/// The coverage of [`DIRECTORIES`].
struct Report {
    directories: Vec<DirectoryReport>,
}

impl Report {
    fn new(files: &BTreeMap<String, LineCounts>) -> Report {
        let directories = DIRECTORIES
            .iter()
            .map(|&name| {
                let prefix = format!("{name}/");
                let mut counts = Counts::default();
                let files: Vec<FileReport> = files
                    .iter()
                    .filter(|(path, _)| path.starts_with(&prefix) && !is_test_file(path))
                    .map(|(path, lines)| {
                        let file = FileReport {
                            path: path.clone(),
                            counts: Counts::of(lines),
                            uncovered: uncovered_ranges(lines),
                        };
                        counts.add(file.counts);
                        file
                    })
                    .collect();
                DirectoryReport {
                    name,
                    counts,
                    files,
                }
            })
            .collect();
        Report { directories }
    }

    fn render(&self) -> String {
        let mut out =
            String::from("\nline coverage (host suites, --features sim; test code left out)\n");
        for dir in &self.directories {
            let _ = writeln!(
                out,
                "\n{:<34} {:>6.1}%  {:>5}/{}",
                dir.name,
                dir.counts.percent(),
                dir.counts.covered,
                dir.counts.lines
            );
            for file in &dir.files {
                let _ = writeln!(
                    out,
                    "  {:<32} {:>6.1}%  {:>5}/{}",
                    file.path,
                    file.counts.percent(),
                    file.counts.covered,
                    file.counts.lines
                );
                if !file.uncovered.is_empty() {
                    let ranges: Vec<String> =
                        file.uncovered.iter().map(ToString::to_string).collect();
                    let _ = writeln!(out, "      uncovered: {}", ranges.join(", "));
                }
            }
        }
        let mut largest: Vec<(&str, Range)> = self
            .directories
            .iter()
            .flat_map(|d| &d.files)
            .flat_map(|f| f.uncovered.iter().map(move |r| (f.path.as_str(), *r)))
            .collect();
        largest.sort_by(|a, b| b.1.lines.cmp(&a.1.lines).then(a.0.cmp(b.0)));
        if !largest.is_empty() {
            let _ = writeln!(out, "\nlargest uncovered ranges (instrumented lines):");
            for (path, range) in largest.iter().take(TOP_RANGES) {
                let _ = writeln!(out, "  {:>4}  {path}:{range}", range.lines);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn parses_options() {
        assert_eq!(Options::parse(&[]).unwrap(), Options::default());
        assert_eq!(
            Options::parse(&args("--fail-under 80")).unwrap().fail_under,
            Some(80.0)
        );
        assert_eq!(
            Options::parse(&args("--fail-under=72.5%"))
                .unwrap()
                .fail_under,
            Some(72.5)
        );
        for bad in [
            "--fail-under",
            "--fail-under x",
            "--fail-under 101",
            "--shard 0/2",
        ] {
            assert!(Options::parse(&args(bad)).is_err(), "{bad}");
        }
    }

    const LCOV: &str = "\
SF:/repo/src/mmu/keys.rs
FN:10,keys
DA:10,3
DA:11,0
DA:12,0
DA:15,0
DA:16,7
DA:20,0
LF:6
LH:2
end_of_record
SF:/repo/src/mmu/keys.rs
DA:11,1
end_of_record
SF:/repo/src/mm/space/tests.rs
DA:1,1
end_of_record
SF:/elsewhere/lib.rs
DA:1,0
end_of_record
";

    #[test]
    fn reads_lcov() {
        let files = parse_lcov(LCOV, Path::new("/repo")).unwrap();
        assert_eq!(
            files.keys().collect::<Vec<_>>(),
            [
                "/elsewhere/lib.rs",
                "src/mm/space/tests.rs",
                "src/mmu/keys.rs"
            ]
        );
        let keys = &files["src/mmu/keys.rs"];
        // Line 11 is listed twice: executed once.
        assert_eq!(keys[&11], 1);
        assert_eq!(
            Counts::of(keys),
            Counts {
                covered: 3,
                lines: 6
            }
        );
        assert_eq!(
            uncovered_ranges(keys),
            [
                // 12 and 15 join: lines 13 and 14 are not instrumented.
                Range {
                    first: 12,
                    last: 15,
                    lines: 2
                },
                Range {
                    first: 20,
                    last: 20,
                    lines: 1
                },
            ]
        );
        assert!(parse_lcov("DA:1,1\n", Path::new("/")).is_err());
        assert!(parse_lcov("SF:/a.rs\nDA:x,1\n", Path::new("/")).is_err());
        assert!(parse_lcov("", Path::new("/")).is_err());
    }

    #[test]
    fn reports_directories_without_tests() {
        let files = parse_lcov(LCOV, Path::new("/repo")).unwrap();
        let report = Report::new(&files);
        let mm = &report.directories[1];
        assert_eq!(mm.name, "src/mm");
        assert!(mm.files.is_empty(), "tests.rs is left out");
        assert_eq!(mm.counts.percent(), 100.0);
        let mmu = &report.directories[2];
        assert_eq!(
            mmu.counts,
            Counts {
                covered: 3,
                lines: 6
            }
        );
        let text = report.render();
        assert!(text.contains("uncovered: 12-15, 20\n"), "{text}");
        assert!(text.contains("     2  src/mmu/keys.rs:12-15\n"), "{text}");
        assert!(
            text.contains("src/mmu                              50.0%"),
            "{text}"
        );
    }
}
