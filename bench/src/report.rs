//! The writers: a text table for the terminal, the same as Markdown, the
//! targets checked against the numbers, and an SVG chart written by hand.

use std::fmt::Write;

use crate::policies::Contender;
use crate::run::Measurement;
use crate::workloads::{Size, Workload};

/// The measurements of one workload on one preset.
#[derive(Clone, Debug)]
pub struct Row {
    /// The preset's name.
    pub preset: &'static str,
    /// The workload.
    pub workload: Workload,
    /// The PIPT limit.
    pub pipt: Measurement,
    /// Each contender's, in [`Contender::ALL`] order.
    pub by: Vec<(Contender, Measurement)>,
}

impl Row {
    fn of(&self, who: Contender) -> Option<&Measurement> {
        self.by.iter().find(|(c, _)| *c == who).map(|(_, m)| m)
    }
}

/// `value / base`, or `None` when the base is zero.
fn ratio(value: u64, base: u64) -> Option<f64> {
    (base > 0).then(|| value as f64 / base as f64)
}

/// A ratio for a table cell: `1.02×`, `—` for 0 of 0, `+N` where the
/// limit has none at all.
fn ratio_cell(value: u64, base: u64) -> String {
    match ratio(value, base) {
        Some(r) if r >= 100.0 => format!("{r:.0}×"),
        Some(r) => format!("{r:.2}×"),
        None if value == 0 => "—".into(),
        None => "(PIPT 0)".into(),
    }
}

fn metrics(m: &Measurement) -> [u64; 4] {
    [m.cycles, m.maintenance, m.write_backs, m.uncached]
}

const HEADERS: [&str; 4] = [
    "cycles",
    "maintenance ops",
    "lines written back",
    "uncached",
];

/// The table for the terminal.
pub fn text(rows: &[Row], title: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{title}");
    let mut preset = "";
    for row in rows {
        if row.preset != preset {
            preset = row.preset;
            let _ = writeln!(out, "\n== {preset}");
            let _ = writeln!(
                out,
                "{:<28} {:<17} {:>11} {:>7} {:>7} {:>9} {:>7} {:>9} {:>7} {:>9} {:>4}",
                "workload",
                "policy",
                "cycles",
                "×PIPT",
                "maint",
                "×PIPT",
                "wback",
                "×PIPT",
                "uncached",
                "×PIPT",
                "viol"
            );
        }
        let lines = std::iter::once(("PIPT limit", &row.pipt))
            .chain(row.by.iter().map(|(c, m)| (c.name(), m)));
        for (i, (name, m)) in lines.enumerate() {
            let label = if i == 0 {
                row.workload.label()
            } else {
                String::new()
            };
            let base = metrics(&row.pipt);
            let v = metrics(m);
            let _ = writeln!(
                out,
                "{:<28} {:<17} {:>11} {:>7} {:>7} {:>9} {:>7} {:>9} {:>7} {:>9} {:>4}",
                label,
                name,
                v[0],
                ratio_cell(v[0], base[0]),
                v[1],
                ratio_cell(v[1], base[1]),
                v[2],
                ratio_cell(v[2], base[2]),
                v[3],
                ratio_cell(v[3], base[3]),
                m.violations
            );
        }
    }
    out
}

/// The cheaper of the Linux-like and NetBSD-like runs.
fn best_baseline(row: &Row) -> Option<(Contender, &Measurement)> {
    [Contender::Linux, Contender::Netbsd]
        .into_iter()
        .filter_map(|c| row.of(c).map(|m| (c, m)))
        .min_by_key(|(_, m)| m.cycles)
}

/// vacmm's saving against the cheaper baseline, in percent (negative: it
/// costs more).
fn saving(row: &Row) -> Option<f64> {
    let vacmm = row.of(Contender::Vacmm)?;
    let (_, best) = best_baseline(row)?;
    ratio(vacmm.cycles, best.cycles).map(|r| (1.0 - r) * 100.0)
}

/// The targets of issue 9, checked against `rows`: one line each, with
/// every miss and by how much.
pub fn targets(rows: &[Row], size: Size) -> Vec<String> {
    let mut lines = Vec::new();
    let mut over = Vec::new();
    let mut reasons = Vec::new();
    for row in rows {
        if let Some(r) = row
            .of(Contender::Vacmm)
            .and_then(|m| ratio(m.cycles, row.pipt.cycles))
            && r > 1.10
        {
            over.push(format!("{} {} {r:.2}×", row.preset, row.workload.tag()));
            let why = floor(row.preset, row.workload).unwrap_or("OPEN (issue 24)");
            reasons.push(format!("{} {}: {why}", row.preset, row.workload.tag()));
        }
    }
    lines.push(format!(
        "vacmm ≤ 1.10× PIPT in cycles: {} of {} met{}",
        rows.len() - over.len(),
        rows.len(),
        if over.is_empty() {
            String::new()
        } else {
            format!("; over: {}", over.join(", "))
        }
    ));
    for reason in reasons {
        lines.push(format!("  over 1.10×, {reason}"));
    }
    let mut dearer = Vec::new();
    for row in rows {
        if let Some(s) = saving(row)
            && s < 0.0
        {
            dearer.push(format!("{} {} {:+.1}%", row.preset, row.workload.tag(), -s));
        }
    }
    lines.push(format!(
        "vacmm ≤ cheaper of Linux-like / NetBSD-like: {} of {} met{}",
        rows.len() - dearer.len(),
        rows.len(),
        if dearer.is_empty() {
            String::new()
        } else {
            format!("; dearer: {}", dearer.join(", "))
        }
    ));
    let arm926: Vec<String> = rows
        .iter()
        .filter(|r| {
            r.preset.starts_with("ARM926")
                && matches!(
                    r.workload,
                    Workload::Ring | Workload::TwoAddresses | Workload::PingPong(_)
                )
        })
        .filter_map(|r| {
            let s = saving(r)?;
            let mark = if s >= 20.0 { "met" } else { "MISSED" };
            Some(format!("{} {:.1}% ({mark})", r.workload.tag(), s))
        })
        .collect();
    lines.push(format!(
        "vacmm ≥ 20% cheaper than the cheaper baseline on ARM926 W2, W4, W5: {}",
        arm926.join(", ")
    ));
    let floors: Vec<String> = rows
        .iter()
        .filter(|r| r.preset.starts_with("ARM926"))
        .filter_map(|r| {
            let switches = r.workload.switches(size)?;
            let vacmm = r.of(Contender::Vacmm)?;
            let (_, best) = best_baseline(r)?;
            Some(format!(
                "{} {:.0}",
                r.workload.tag(),
                (best.cycles as f64 - vacmm.cycles as f64) / switches as f64
            ))
        })
        .collect();
    if !floors.is_empty() {
        lines.push(format!(
            "ARM926: what a full flush at a switch between keyless spaces costs beyond \
             vacmm's FCSE switch, cycles per switch: {}",
            floors.join(", ")
        ));
    }
    let violations: usize = rows
        .iter()
        .map(|r| r.pipt.violations + r.by.iter().map(|(_, m)| m.violations).sum::<usize>())
        .sum();
    lines.push(format!("oracle violations, all runs: {violations}"));
    lines
}

/// The summary: cycles as a ratio to the PIPT limit, one row per preset
/// and workload, one column per policy.
pub fn summary_markdown(rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = write!(out, "| preset | workload |");
    for c in Contender::ALL {
        let _ = write!(out, " {} |", c.name());
    }
    let _ = writeln!(out, " vacmm vs cheaper of Linux/NetBSD |");
    let _ = write!(out, "|---|---|");
    for _ in Contender::ALL {
        let _ = write!(out, "---:|");
    }
    let _ = writeln!(out, "---:|");
    for row in rows {
        let _ = write!(out, "| {} | {} |", row.preset, row.workload.label());
        for c in Contender::ALL {
            let cell = row
                .of(c)
                .map(|m| ratio_cell(m.cycles, row.pipt.cycles))
                .unwrap_or_default();
            let _ = write!(out, " {cell} |");
        }
        // One decimal below 1%, so that a small difference shows which way.
        let cell = match saving(row) {
            Some(s) if s.abs() < 1.0 && s >= 0.0 => format!("{s:.1}% cheaper"),
            Some(s) if s.abs() < 1.0 => format!("{:.1}% dearer", -s),
            Some(s) if s >= 0.0 => format!("{s:.0}% cheaper"),
            Some(s) => format!("{:.0}% dearer", -s),
            None => String::new(),
        };
        let _ = writeln!(out, " {cell} |");
    }
    out
}

/// The whole report as Markdown: summary, targets, and every metric.
pub fn markdown(rows: &[Row], size: Size, title: &str, notes: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# {title}\n");
    let _ = writeln!(out, "{notes}\n");
    let _ = writeln!(out, "## Cycles, as a multiple of the PIPT limit\n");
    out.push_str(&summary_markdown(rows));
    let _ = writeln!(out, "\n## Targets\n");
    for line in targets(rows, size) {
        let _ = writeln!(out, "- {line}");
    }
    let _ = writeln!(out, "\n## Every metric\n");
    let _ = writeln!(
        out,
        "Each cell: the count, and its multiple of the PIPT limit's (— when both are 0, \
         \"PIPT 0\" when the limit has none).\n"
    );
    let mut preset = "";
    for row in rows {
        if row.preset != preset {
            preset = row.preset;
            let _ = writeln!(out, "\n### {preset}\n");
            let _ = write!(out, "| workload | policy |");
            for h in HEADERS {
                let _ = write!(out, " {h} |");
            }
            let _ = writeln!(out, " violations |");
            let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|");
        }
        let base = metrics(&row.pipt);
        let lines = std::iter::once(("PIPT limit", &row.pipt))
            .chain(row.by.iter().map(|(c, m)| (c.name(), m)));
        for (i, (name, m)) in lines.enumerate() {
            let label = if i == 0 {
                row.workload.label()
            } else {
                String::new()
            };
            let _ = write!(out, "| {label} | {name} |");
            for (v, b) in metrics(m).into_iter().zip(base) {
                let _ = write!(out, " {v} ({}) |", ratio_cell(v, b));
            }
            let _ = writeln!(out, " {} |", m.violations);
        }
    }
    out
}

/// Bar colours, in [`Contender::ALL`] order (colour-blind-safe pairs).
const COLOURS: [&str; 5] = ["#1b9e77", "#2c7fb8", "#d95f02", "#969696", "#e6ab02"];

/// Escapes text for SVG.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The chart: one panel per preset, a group of bars per workload, one bar
/// per policy, height = cycles as a multiple of the PIPT limit on a log
/// scale (the dashed line is the limit itself).
pub fn svg(rows: &[Row], title: &str) -> String {
    let presets: Vec<&str> = {
        let mut p: Vec<&str> = rows.iter().map(|r| r.preset).collect();
        p.dedup();
        p
    };
    let workloads = rows
        .iter()
        .filter(|r| r.preset == presets[0])
        .count()
        .max(1);
    let ratios: Vec<f64> = rows
        .iter()
        .flat_map(|r| {
            r.by.iter()
                .filter_map(|(_, m)| ratio(m.cycles, r.pipt.cycles))
        })
        // A failed run measures nothing (0 cycles): no bar, and no log of
        // zero for the scale (the gridline loop would never end).
        .filter(|&ratio| ratio > 0.0)
        .collect();
    let max = ratios.iter().copied().fold(1.0f64, f64::max);
    let min = ratios.iter().copied().fold(1.0f64, f64::min);
    // Gridlines at 1, 2, 5 × 10^k, from the last one below the smallest
    // bar (so that every bar shows) to the first above the largest.
    let mut ticks: Vec<f64> = Vec::new();
    let mut decade = 10f64.powf((min * 0.95).log10().floor());
    while decade <= max {
        for step in [1.0, 2.0, 5.0] {
            ticks.push(decade * step);
        }
        decade *= 10.0;
    }
    let below = ticks.iter().rposition(|&t| t < min * 0.95).unwrap_or(0);
    ticks.drain(..below);
    ticks.retain(|&t| t <= max * 1.5);
    let lo = ticks.first().copied().unwrap_or(min).log10();
    let hi = (max * 1.15).log10();
    let (width, left, right) = (1180.0, 70.0, 20.0);
    let (panel_h, panel_gap, top) = (230.0, 60.0, 90.0);
    let plot_w = width - left - right;
    let height = top + presets.len() as f64 * (panel_h + panel_gap) + 10.0;
    let group_w = plot_w / workloads as f64;
    let bar_w = group_w * 0.8 / Contender::ALL.len() as f64;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="DejaVu Sans, Arial, sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        s,
        r#"<rect x="0" y="0" width="{width}" height="{height}" fill="white"/>"#
    );
    let _ = writeln!(
        s,
        r#"<text x="{left}" y="24" font-size="17" font-weight="bold">{}</text>"#,
        esc(title)
    );
    let _ = writeln!(
        s,
        r##"<text x="{left}" y="44" fill="#444">Simulated cycles as a multiple of a PIPT cache of the same geometry (log scale; dashed: the PIPT limit, 1×). Lower is better.</text>"##
    );
    for (i, c) in Contender::ALL.iter().enumerate() {
        let x = left + i as f64 * 170.0;
        let _ = writeln!(
            s,
            r#"<rect x="{x}" y="58" width="14" height="14" fill="{}"/><text x="{}" y="70">{}</text>"#,
            COLOURS[i],
            x + 20.0,
            esc(c.name())
        );
    }
    for (p, preset) in presets.iter().enumerate() {
        let y0 = top + p as f64 * (panel_h + panel_gap) + 20.0;
        let y_of =
            |r: f64| y0 + panel_h - (r.max(10f64.powf(lo)).log10() - lo) / (hi - lo) * panel_h;
        let _ = writeln!(
            s,
            r#"<text x="{left}" y="{}" font-size="14" font-weight="bold">{}</text>"#,
            y0 - 8.0,
            esc(preset)
        );
        for &t in &ticks {
            let y = y_of(t);
            let label = if t >= 10.0 {
                format!("{t:.0}×")
            } else {
                format!("{t}×")
            };
            let _ = writeln!(
                s,
                r##"<line x1="{left}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end" fill="#444">{label}</text>"##,
                width - right,
                left - 6.0,
                y + 4.0
            );
        }
        let y1 = y_of(1.0);
        let _ = writeln!(
            s,
            r##"<line x1="{left}" y1="{y1:.1}" x2="{}" y2="{y1:.1}" stroke="#000" stroke-dasharray="6,4"/>"##,
            width - right
        );
        for (g, row) in rows.iter().filter(|r| r.preset == *preset).enumerate() {
            let gx = left + g as f64 * group_w + group_w * 0.1;
            for (i, (c, m)) in row.by.iter().enumerate() {
                let Some(r) = ratio(m.cycles, row.pipt.cycles) else {
                    continue;
                };
                let x = gx + i as f64 * bar_w;
                let y = y_of(r);
                let colour = COLOURS[Contender::ALL.iter().position(|k| k == c).unwrap_or(0)];
                if *c == Contender::Vacmm {
                    // vacmm's own figure, written over its bar.
                    let _ = writeln!(
                        s,
                        r#"<text x="{:.1}" y="{:.1}" font-size="9" text-anchor="middle" fill="{colour}">{r:.2}</text>"#,
                        x + bar_w * 0.46,
                        y.min(y0 + panel_h) - 3.0
                    );
                }
                let _ = writeln!(
                    s,
                    r#"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{colour}"><title>{} {} {}: {r:.2}×</title></rect>"#,
                    y.min(y0 + panel_h),
                    bar_w * 0.92,
                    (y0 + panel_h - y).max(0.5),
                    esc(preset),
                    esc(&row.workload.tag()),
                    esc(c.name())
                );
            }
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                gx + group_w * 0.4,
                y0 + panel_h + 16.0,
                esc(&row.workload.tag())
            );
        }
        let _ = writeln!(
            s,
            r##"<line x1="{left}" y1="{:.1}" x2="{}" y2="{:.1}" stroke="#000"/>"##,
            y0 + panel_h,
            width - right,
            y0 + panel_h
        );
    }
    s.push_str("</svg>\n");
    s
}

/// Why vacmm stays above 1.10× the PIPT limit on a workload, where the
/// reason is the hardware rather than the policy (every baseline pays it
/// too, or no policy could avoid it). `None`: not explained (yet).
fn floor(preset: &str, workload: Workload) -> Option<&'static str> {
    const VIVT_HANDOVER: &str = "floor: on VIVT the kernel's and the user's addresses (or two user \
        addresses) are separate lines, so each hand-over writes one back and refills the other, \
        where a PIPT cache shares the line";
    let vivt = preset.starts_with("ARM926");
    Some(match workload {
        Workload::PageCache | Workload::Ring | Workload::SharedAcrossSpaces if vivt => {
            VIVT_HANDOVER
        }
        Workload::TwoAddresses if vivt => {
            "floor: two writable aliases of one page live in one VIVT cache must be uncached \
             while both are mapped (nothing cheaper keeps them coherent)"
        }
        Workload::PingPong(_) if vivt => {
            "floor: the ARM926's TLB is untagged, so every switch flushes it and the next \
             accesses walk the tables (the PIPT limit keeps its entries under ASIDs)"
        }
        Workload::ExitNotRunning if vivt => {
            "floor: a live FCSE space's dirty lines must leave before its frames are reused; \
             one whole-cache clean visits every line"
        }
        Workload::ShortBuffers if vivt => {
            "floor: the ARM926 allocates on reads only; a fresh page zeroed through the \
             kernel's address leaves no line at the user's, so the user's stores go to memory"
        }
        Workload::Mix if vivt => "floor: the sum of the ARM926 floors above",
        Workload::PingPong(8) if preset.starts_with("ARM1136") => {
            "floor, not maintenance (every policy pays it): eight processes use the same \
             virtual address, which indexes the same sets of a virtually indexed 4-way cache \
             (a PIPT cache spreads them by frame)"
        }
        _ => return None,
    })
}
