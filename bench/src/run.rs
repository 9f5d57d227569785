//! One measurement: a fresh machine, one workload, the model's counters
//! before and after, and the oracle's verdict.

use vacmm::coherence::{Policy, Vacmm};
use vacmm::sim::{Counters, CpuModel};

use crate::policies::{AllUncached, Contender, FlushEverything, LinuxLike, NetbsdLike};
use crate::workloads::{Size, Workload};
use crate::world::{BenchError, World};

/// A CPU configuration of the table.
#[derive(Clone, Copy, Debug)]
pub struct Preset {
    /// Its name in reports.
    pub name: &'static str,
    /// The modelled CPU.
    pub model: CpuModel,
}

/// The presets, in table order. The ARM926 is modelled with its FCSE:
/// spaces without a PID (every baseline's) see a plain VIVT cache.
pub fn presets() -> [Preset; 4] {
    [
        Preset {
            name: "ARM926 VIVT",
            model: CpuModel::arm926_keyed(),
        },
        Preset {
            name: "ARM1136 32K",
            model: CpuModel::arm1136_32k(),
        },
        Preset {
            name: "ARM1136 64K",
            model: CpuModel::arm1136_64k(),
        },
        Preset {
            name: "ARM1176 16K",
            model: CpuModel::arm1176_16k(),
        },
    ]
}

/// The physical limit for `model`: a PIPT cache of the same geometry, and
/// otherwise the same (allocation on read misses only, write buffer), so
/// that only the indexing differs.
pub fn pipt_of(model: &CpuModel) -> CpuModel {
    let mut pipt = CpuModel::pipt(model.dcache.geometry);
    pipt.icache.geometry = model.icache.geometry;
    pipt.dcache.allocation = model.dcache.allocation;
    pipt.icache.allocation = model.icache.allocation;
    pipt.write_buffer_entries = model.write_buffer_entries;
    pipt
}

/// What one run cost, from the model's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Measurement {
    /// Simulated cycles (`vacmm::sim::Costs::DEFAULT`).
    pub cycles: u64,
    /// Cache maintenance operations: D and I lines by MVA, and whole-cache
    /// operations (each counted once; their cost is in `cycles`).
    pub maintenance: u64,
    /// Dirty lines written back.
    pub write_backs: u64,
    /// Accesses that bypassed the cache.
    pub uncached: u64,
    /// Incoherences the oracle found.
    pub violations: usize,
}

fn delta(before: &Counters, after: &Counters, violations: usize) -> Measurement {
    let ops = |c: &Counters| {
        c.clean_line
            + c.clean_invalidate_line
            + c.invalidate_line
            + c.clean_all
            + c.clean_invalidate_all
            + c.icache_line
            + c.icache_all
    };
    Measurement {
        cycles: after.cycles - before.cycles,
        maintenance: ops(after) - ops(before),
        write_backs: after.write_backs - before.write_backs,
        uncached: after.uncached - before.uncached,
        violations,
    }
}

fn measure_with<P: Policy>(
    model: CpuModel,
    policy: P,
    who: Contender,
    workload: Workload,
    size: Size,
) -> Result<(Measurement, Option<String>), BenchError> {
    let mut world = World::new(model, policy, who.setup())?;
    // Building the machine is not part of the workload.
    let before = *world.sys.mem.counters();
    let setup_violations = world.sys.mem.take_violations();
    workload.run(&mut world, who, size)?;
    let before = world.mark().unwrap_or(before);
    let after = *world.sys.mem.counters();
    let mut violations = setup_violations;
    violations.extend(world.sys.mem.take_violations());
    let first = violations.first().map(|v| v.to_string());
    Ok((delta(&before, &after, violations.len()), first))
}

/// Runs `workload` on `model` with `who`'s policy and kernel (`None`: the
/// PIPT limit, which runs vacmm's engine on [`pipt_of`] the model). Returns
/// the measurement and the first violation, described, if any.
pub fn measure(
    model: &CpuModel,
    who: Option<Contender>,
    workload: Workload,
    size: Size,
) -> Result<(Measurement, Option<String>), BenchError> {
    match who {
        None => measure_with(pipt_of(model), Vacmm, Contender::Vacmm, workload, size),
        Some(who @ Contender::Vacmm) => measure_with(*model, Vacmm, who, workload, size),
        Some(who @ Contender::Linux) => measure_with(*model, LinuxLike, who, workload, size),
        Some(who @ Contender::Netbsd) => measure_with(*model, NetbsdLike, who, workload, size),
        Some(who @ Contender::FlushEverything) => {
            measure_with(*model, FlushEverything, who, workload, size)
        }
        Some(who @ Contender::AllUncached) => {
            measure_with(*model, AllUncached, who, workload, size)
        }
    }
}
