//! `cargo xtask bench`: the coherence benchmark (`vacmm-bench`, release),
//! the criterion benchmarks, with their targets reported as ratios read
//! from criterion's own estimates, and the cache sanitizer's overhead (every
//! on-target suite and the demo without and with the plugin, side by side).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

use serde_json::Value;

use crate::cargo;
use crate::sanitize;

/// Runs of each guest with and without the cache sanitizer; the fastest of
/// each is compared, which keeps a burst of load elsewhere out of the ratio.
const SANITIZER_REPEATS: u32 = 3;

/// Criterion's timing, shortened so that the whole command stays well
/// under ten minutes on two cores (its defaults are 3 s and 5 s per bench).
const CRITERION_ARGS: [&str; 4] = ["--warm-up-time", "1", "--measurement-time", "3"];

/// One criterion result: mean time per iteration and elements per iteration.
struct Estimate {
    mean_ns: f64,
    elements: Option<f64>,
}

impl Estimate {
    fn per_second(&self) -> Option<f64> {
        self.elements.map(|n| n / self.mean_ns * 1e9)
    }
}

pub fn run() -> Result<(), String> {
    let started = SystemTime::now();
    println!("==== coherence benchmark (vacmm-bench, release)");
    let status = cargo::cargo()
        .args(["run", "--release", "-p", "vacmm-bench"])
        .status()
        .map_err(|e| format!("cannot run vacmm-bench: {e}"))?;
    let coherence = if status.success() {
        Ok(())
    } else {
        Err(format!("vacmm-bench failed ({status})"))
    };

    println!("\n==== criterion benchmarks");
    let mut bench = cargo::cargo();
    bench.args(["bench", "--features", "vacmm/sim"]);
    for name in cargo::bench_names()? {
        bench.args(["--bench", &name]);
    }
    bench.arg("--").args(CRITERION_ARGS);
    let status = bench
        .status()
        .map_err(|e| format!("cannot run cargo bench: {e}"))?;
    let criterion = if status.success() {
        let dir = cargo::target_directory()?.join("criterion");
        let estimates = read_estimates(&dir, started)?;
        println!("\n==== criterion summary");
        for line in summary(&estimates) {
            println!("{line}");
        }
        Ok(())
    } else {
        Err(format!("cargo bench failed ({status})"))
    };
    println!(
        "\n==== cache sanitizer overhead (on-target suites and demo, without and with the plugin)"
    );
    let sanitizer = sanitizer_overhead();
    // The sanitizer on a real kernel, beside QEMU's own cache plugin.
    let linux = crate::linux::bench::run();
    coherence.and(criterion).and(sanitizer).and(linux)
}

/// Every on-target suite and the demo, side by side without and with the
/// cachesan plugin, on each CPU and geometry `cargo xtask test` checks.
fn sanitizer_overhead() -> Result<(), String> {
    let rows = sanitize::sanitize(&sanitize::Options::checked(SANITIZER_REPEATS))?;
    println!("\n==== cache sanitizer summary (fastest of {SANITIZER_REPEATS} runs each)");
    for line in sanitize::table(&rows) {
        println!("{line}");
    }
    sanitize::failures(&rows)
}

/// Every estimate criterion wrote under `dir` since `since`, by full id.
fn read_estimates(dir: &Path, since: SystemTime) -> Result<BTreeMap<String, Estimate>, String> {
    let mut found = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let entries =
            std::fs::read_dir(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n == "new") {
                    if let Some((id, estimate)) = read_one(&path, since) {
                        found.insert(id, estimate);
                    }
                } else {
                    stack.push(path);
                }
            }
        }
    }
    Ok(found)
}

/// One `new/` directory: its benchmark.json (id, throughput) and
/// estimates.json (mean), if written since `since`.
fn read_one(dir: &Path, since: SystemTime) -> Option<(String, Estimate)> {
    let estimates = dir.join("estimates.json");
    let fresh = std::fs::metadata(&estimates)
        .and_then(|m| m.modified())
        .is_ok_and(|t| t >= since);
    if !fresh {
        return None;
    }
    let json = |name: &str| -> Option<Value> {
        serde_json::from_slice(&std::fs::read(dir.join(name)).ok()?).ok()
    };
    let benchmark = json("benchmark.json")?;
    let mean_ns = json("estimates.json")?["mean"]["point_estimate"].as_f64()?;
    let id = benchmark["full_id"].as_str()?.to_string();
    let elements = benchmark["throughput"]["Elements"].as_f64();
    Some((id, Estimate { mean_ns, elements }))
}

fn summary(estimates: &BTreeMap<String, Estimate>) -> Vec<String> {
    let mut lines = Vec::new();
    let get = |id: &str| estimates.get(id).map(|e| e.mean_ns);
    if let (Some(small), Some(large), Some(linear)) = (
        get("get_unmapped_area/tree/1000"),
        get("get_unmapped_area/tree/100000"),
        get("get_unmapped_area/linear/100000"),
    ) {
        lines.push(format!(
            "get_unmapped_area: tree {small:.0} ns → {large:.0} ns from 1,000 to 100,000 \
             mappings (×{:.2}, target ≤ 3×); linear scan at 100,000: {linear:.0} ns \
             ({:.0}× the tree, target ≥ 50×)",
            large / small,
            linear / large
        ));
    }
    for (id, estimate) in estimates {
        // get_unmapped_area is reported as ratios above.
        let Some(rate) = estimate
            .per_second()
            .filter(|_| !id.starts_with("get_unmapped_area/"))
        else {
            continue;
        };
        let what = if id.starts_with("sim/") {
            // benches/sim_throughput.rs: fast enough for property tests.
            let verdict = if rate >= 30e6 { "meets" } else { "below" };
            format!("simulated accesses/s ({verdict} the 30 M/s target)")
        } else if id.starts_with("frame_alloc/") {
            "allocate + free pairs/s".into()
        } else {
            "elements/s".into()
        };
        lines.push(format!("{id}: {:.1} M {what}", rate / 1e6));
    }
    if lines.is_empty() {
        lines.push("no criterion estimates were written".into());
    }
    lines
}
