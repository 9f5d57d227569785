//! Target `pure_cache`: MIDR and CTR decoding against a decoder written
//! from the register layout, geometry construction against its rules in
//! `u128`, set/way operands decoded back, and the cache model run on the
//! geometries construction accepts.
//!
//! The central property of issue 19: decoding and construction accept the
//! same geometries, so whatever decodes has set/way operands and a model.

use std::collections::HashMap;
use std::format;
use std::vec::Vec;

use arbitrary::Arbitrary;

use super::{Failure, ensure, ensure_eq};
use crate::cache::{
    CacheGeometry, CacheInfo, CacheKind, CacheType, CpuPart, CtrError, GeometryError,
    MAX_CACHE_BYTES, MainId, PAGE_SIZE,
};
use crate::sim::{
    Allocation, CacheConfig, CpuModel, Indexing, KERNEL, LineOp, MemType, ModelError, Replacement,
    Sim, WritePolicy,
};

/// Caches up to this size are also run on the model (larger ones cost
/// more to allocate than a run is worth).
const MODEL_LIMIT: usize = 64 << 10;
/// Memory the model gets, mapped VA = PA in the kernel's space.
const MODEL_MEMORY: u32 = 64 << 10;
/// At most this many set/way picks and model operations are checked.
pub const MAX_OPS: usize = 64;

/// A geometry dimension: a power of two (the usual case) or anything.
#[derive(Clone, Copy, Debug, Arbitrary)]
pub enum Dim {
    /// `1 << (shift % usize::BITS)`.
    Power(u8),
    /// Anything (truncated to `usize`).
    Raw(u64),
}

impl Dim {
    fn value(self) -> usize {
        match self {
            Dim::Power(shift) => 1 << (u32::from(shift) % usize::BITS),
            Dim::Raw(n) => n as usize,
        }
    }
}

/// A CTR value: mostly the pre-ARMv7 layout with chosen fields, sometimes
/// anything.
#[derive(Clone, Copy, Debug, Arbitrary)]
pub enum Ctr {
    /// `ctype`, S and the two 12-bit size fields.
    Fields {
        /// CTR\[28:25\].
        ctype: u8,
        /// CTR\[24\].
        separate: bool,
        /// CTR\[23:12\].
        dsize: u16,
        /// CTR\[11:0\].
        isize: u16,
    },
    /// Anything (ARMv7 format, CTR = MIDR...).
    Raw(u32),
}

impl Ctr {
    fn raw(self) -> u32 {
        match self {
            Ctr::Fields {
                ctype,
                separate,
                dsize,
                isize,
            } => {
                u32::from(ctype & 0xf) << 25
                    | u32::from(separate) << 24
                    | u32::from(dsize & 0xfff) << 12
                    | u32::from(isize & 0xfff)
            }
            Ctr::Raw(raw) => raw,
        }
    }
}

/// One operation on the model.
#[derive(Clone, Copy, Debug, Arbitrary)]
pub enum ModelOp {
    /// A word store at `offset` (word-aligned, modulo the memory).
    Store {
        /// Byte offset.
        offset: u32,
        /// Value.
        value: u32,
    },
    /// A word load, which must return the last word stored there.
    Load {
        /// Byte offset.
        offset: u32,
    },
    /// Clean (or clean and invalidate) by set/way.
    SetWay {
        /// Clean and invalidate rather than clean.
        invalidate: bool,
        /// The set (any value).
        set: u32,
        /// The way (any value).
        way: u32,
    },
}

/// The fuzzer's input.
#[derive(Clone, Debug, Arbitrary)]
pub struct Input {
    /// MIDR.
    pub midr: u32,
    /// CTR.
    pub ctr: Ctr,
    /// A geometry to construct: size, ways, line.
    pub geometry: (Dim, Dim, Dim),
    /// The model's indexing (modulo 4), allocation, replacement seed
    /// (0: round robin) and write-through choice.
    pub model: (u8, bool, u64, bool),
    /// Set/way picks for the constructed geometry (any values; taken
    /// modulo the geometry's sets and ways too).
    pub picks: Vec<(u32, u32)>,
    /// Operations on the model of the constructed geometry.
    pub ops: Vec<ModelOp>,
}

impl Input {
    /// Checks the decoders, the construction and the model.
    pub fn check(&self) -> Result<(), Failure> {
        let midr = MainId::from_raw(self.midr);
        check_midr(midr)?;
        let ctr = self.ctr.raw();
        check_ctr(ctr, midr).map_err(|e| format!("CTR {ctr:#010x}, MIDR {midr}: {e}"))?;
        let (size, ways, line) = (
            self.geometry.0.value(),
            self.geometry.1.value(),
            self.geometry.2.value(),
        );
        let what = format!("geometry {size} bytes, {ways} ways, {line}-byte lines");
        let built = check_construction(size, ways, line).map_err(|e| format!("{what}: {e}"))?;
        check_hand_built(size, ways, line).map_err(|e| format!("hand-built {what}: {e}"))?;
        if let Some(g) = built {
            check_operands(g, &self.picks).map_err(|e| format!("{what}: {e}"))?;
            check_model(g, self.model, &self.ops, midr)
                .map_err(|e| format!("{what}, model {:?}: {e}", self.model))?;
        }
        Ok(())
    }
}

fn check_midr(midr: MainId) -> Result<(), Failure> {
    let raw = midr.raw();
    ensure_eq!(
        (
            midr.implementer(),
            midr.variant(),
            midr.architecture(),
            midr.part_number(),
            midr.revision()
        ),
        (
            (raw >> 24) as u8,
            (raw >> 20 & 0xf) as u8,
            (raw >> 16 & 0xf) as u8,
            (raw >> 4 & 0xfff) as u16,
            (raw & 0xf) as u8
        ),
        "MIDR fields"
    );
    let arm = raw >> 24 == 0x41;
    let expected = match raw >> 4 & 0xfff {
        0x926 if arm => CpuPart::Arm926,
        0xb36 if arm && raw >> 20 & 0xf == 0 => CpuPart::Arm1136R0,
        0xb36 if arm => CpuPart::Arm1136R1,
        0xb76 if arm => CpuPart::Arm1176,
        0xb02 if arm => CpuPart::Arm11MpCore,
        part => CpuPart::Other {
            implementer: (raw >> 24) as u8,
            part: part as u16,
        },
    };
    ensure_eq!(midr.part(), expected, "part");
    ensure_eq!(
        midr.is_armv6_or_later(),
        matches!(raw >> 16 & 0xf, 7 | 0xf),
        "ARMv6 or later"
    );
    ensure!(!format!("{midr}").is_empty(), "empty Display");
    Ok(())
}

/// What a 12-bit size field says, by the formulas of the TRMs (in u128):
/// `None` for "no cache", else size, ways, line and the P bit.
fn field_formula(field: u32) -> Option<(u128, u128, u128, bool)> {
    let (p, size, assoc, m, len) = (
        field >> 11 & 1 == 1,
        field >> 6 & 0xf,
        field >> 3 & 7,
        field >> 2 & 1,
        field & 3,
    );
    if m == 1 && assoc == 0 {
        return None;
    }
    let multiplier = 2 + u128::from(m);
    let ways = if assoc == 0 {
        1
    } else {
        multiplier << assoc >> 1
    };
    Some((multiplier << (8 + size), ways, 8 << len, p))
}

/// The geometry rules in u128: `None` where construction must refuse.
fn rules(size: u128, ways: u128, line: u128) -> Option<GeometryError> {
    let [s, w, l] = [size, ways, line].map(|v| v as usize);
    for (what, value, full) in [
        ("size", s, size),
        ("ways", w, ways),
        ("line length", l, line),
    ] {
        if !full.is_power_of_two() || value as u128 != full {
            return Some(GeometryError::NotPowerOfTwo { what, value });
        }
    }
    if !(8..=256).contains(&line) {
        return Some(GeometryError::LineOutOfRange { line_bytes: l });
    }
    if size > MAX_CACHE_BYTES as u128 {
        return Some(GeometryError::TooLarge { size_bytes: s });
    }
    if ways * line > size {
        return Some(GeometryError::NoSets {
            size_bytes: s,
            ways: w,
            line_bytes: l,
        });
    }
    None
}

fn check_ctr(ctr: u32, midr: MainId) -> Result<(), Failure> {
    let decoded = CacheType::decode(ctr, midr);
    if ctr == midr.raw() {
        ensure_eq!(
            decoded,
            Err(CtrError::NotImplemented { raw: ctr }),
            "CTR = MIDR"
        );
        return Ok(());
    }
    if ctr >> 29 == 0b100 {
        ensure_eq!(
            decoded,
            Err(CtrError::Armv7Format { raw: ctr }),
            "ARMv7 format"
        );
        return Ok(());
    }
    let separate = ctr >> 24 & 1 == 1;
    let mut fields = vec![("data", ctr >> 12 & 0xfff)];
    if separate {
        fields.push(("instruction", ctr & 0xfff));
    }
    let mut geometries = Vec::new();
    for (cache, field) in fields {
        let Some((size, ways, line, p)) = field_formula(field) else {
            geometries.push(None);
            continue;
        };
        if let Some(error) = rules(size, ways, line) {
            let expected = CtrError::Geometry {
                raw: ctr,
                cache,
                field: field as u16,
                error,
            };
            ensure_eq!(decoded, Err(expected), "{cache} field {field:#05x} refused");
            ensure!(!expected.to_string().is_empty(), "empty message");
            return Ok(());
        }
        geometries.push(Some(CacheGeometry {
            size_bytes: size as usize,
            ways: ways as usize,
            line_bytes: line as usize,
            colour_restricted: p,
        }));
    }
    let ctr_type = decoded.map_err(|e| format!("refused: {e}"))?;
    let dcache = geometries[0];
    let icache = if separate { geometries[1] } else { dcache };
    ensure_eq!(
        (ctr_type.dcache, ctr_type.icache, ctr_type.separate),
        (dcache, icache, separate),
        "decoded geometries"
    );
    ensure_eq!(ctr_type.ctype, (ctr >> 25 & 0xf) as u8, "ctype");
    for g in [dcache, icache].into_iter().flatten() {
        // Decoded, so constructible, so it has every set/way operand.
        ensure!(g.validate().is_ok(), "{g:?} decoded but does not validate");
        ensure!(
            g.set_way_operand(g.sets() - 1, g.ways - 1).is_some(),
            "{g:?} decoded but has no operand for its last line"
        );
    }
    check_info(ctr, midr, &ctr_type)
}

fn check_info(ctr: u32, midr: MainId, ctr_type: &CacheType) -> Result<(), Failure> {
    let info = CacheInfo::from_registers(midr, ctr);
    let Some(d) = ctr_type.dcache else {
        ensure!(info.is_err(), "no data cache, but {info:?}");
        return Ok(());
    };
    let info = info.map_err(|e| format!("info refused: {e}"))?;
    ensure_eq!(info.kind, CacheKind::classify(midr, ctr_type), "kind");
    ensure_eq!(info.dcache, d, "D-cache");
    ensure_eq!(info.icache, ctr_type.icache.unwrap_or(d), "I-cache");
    ensure_eq!(
        info.whole_cache_threshold(),
        d.size_bytes as u64,
        "threshold"
    );
    let colours = info.colours();
    ensure!(colours >= 1, "{colours} colours");
    ensure_eq!(
        info.colour_alignment(),
        colours * PAGE_SIZE,
        "colour alignment"
    );
    for va in [0, 0x1000, 0x7fff_f000, 0xffff_f000, midr.raw()] {
        let c = info.colour_of(crate::addr::VirtAddr(va));
        ensure_eq!(c, (va as usize / PAGE_SIZE) % colours, "colour of {va:#x}");
    }
    ensure_eq!(info.is_armv6(), midr.is_armv6_or_later(), "is_armv6");
    Ok(())
}

fn check_construction(
    size: usize,
    ways: usize,
    line: usize,
) -> Result<Option<CacheGeometry>, Failure> {
    let built = CacheGeometry::try_new(size, ways, line);
    ensure_eq!(
        CacheGeometry::new(size, ways, line),
        built.ok(),
        "new and try_new"
    );
    if let Some(error) = rules(size as u128, ways as u128, line as u128) {
        ensure_eq!(built, Err(error), "refused");
        ensure!(!error.to_string().is_empty(), "empty message");
        return Ok(None);
    }
    let g = built.map_err(|e| format!("refused: {e}"))?;
    ensure_eq!(
        (g.size_bytes, g.ways, g.line_bytes),
        (size, ways, line),
        "fields"
    );
    ensure_eq!(g.way_bytes() * ways, size, "way bytes");
    ensure_eq!(g.sets() * line, g.way_bytes(), "sets");
    ensure_eq!(g.colours(), (g.way_bytes() / PAGE_SIZE).max(1), "colours");
    ensure_eq!(g.colour_restricted, g.way_bytes() > PAGE_SIZE, "P bit");
    Ok(Some(g))
}

/// The same values as public fields: methods total, and operands only
/// for what construction accepts.
fn check_hand_built(size: usize, ways: usize, line: usize) -> Result<(), Failure> {
    let g = CacheGeometry {
        size_bytes: size,
        ways,
        line_bytes: line,
        colour_restricted: false,
    };
    let valid = CacheGeometry::try_new(size, ways, line);
    ensure_eq!(g.validate(), valid.map(|_| ()), "validate and try_new");
    let (way_bytes, sets, colours) = (g.way_bytes(), g.sets(), g.colours());
    ensure!(colours >= 1, "{colours} colours");
    let _ = CacheKind::vipt(g);
    for (set, way) in [
        (0, 0),
        (sets.saturating_sub(1), ways.saturating_sub(1)),
        (1, 1),
    ] {
        if g.set_way_operand(set, way).is_some() {
            ensure!(
                valid.is_ok(),
                "an operand for ({set}, {way}) of an invalid geometry"
            );
        }
    }
    let _ = way_bytes;
    Ok(())
}

/// Operands of the picks decode back to their set and way, and differ for
/// different lines.
fn check_operands(g: CacheGeometry, picks: &[(u32, u32)]) -> Result<(), Failure> {
    let (sets, ways) = (g.sets(), g.ways);
    let line_shift = g.line_bytes.trailing_zeros();
    let way_bits = ways.trailing_zeros();
    let mut seen: HashMap<u32, (usize, usize)> = HashMap::new();
    let modulo = picks
        .iter()
        .map(|&(s, w)| (s as usize % sets, w as usize % ways));
    let raw = picks.iter().map(|&(s, w)| (s as usize, w as usize));
    let corners = [(0, 0), (sets - 1, ways - 1), (sets, 0), (0, ways)];
    for (set, way) in modulo.chain(raw).chain(corners).take(3 * MAX_OPS) {
        let operand = g.set_way_operand(set, way);
        if set >= sets || way >= ways {
            ensure_eq!(operand, None, "operand of ({set}, {way})");
            continue;
        }
        let op = operand.ok_or_else(|| format!("no operand for ({set}, {way})"))?;
        ensure_eq!(
            op & ((1 << line_shift) - 1),
            0,
            "low bits of ({set}, {way})"
        );
        let back_way = if way_bits == 0 {
            0
        } else {
            (op >> (32 - way_bits)) as usize
        };
        let back_set = (op >> line_shift) as usize & (sets - 1);
        ensure_eq!(
            (back_set, back_way),
            (set, way),
            "operand {op:#010x} decoded"
        );
        if let Some(&other) = seen.get(&op) {
            ensure_eq!(other, (set, way), "operand {op:#010x} shared");
        }
        seen.insert(op, (set, way));
    }
    Ok(())
}

/// The model on `g`: one mapping per page, so every load returns the last
/// store and the oracle stays silent, whatever set/way cleaning happens.
fn check_model(
    g: CacheGeometry,
    (indexing, allocate_writes, seed, write_through): (u8, bool, u64, bool),
    ops: &[ModelOp],
    midr: MainId,
) -> Result<(), Failure> {
    let config = CacheConfig {
        geometry: g,
        indexing: [
            Indexing::Vivt,
            Indexing::VivtKeyed,
            Indexing::Vipt,
            Indexing::Pipt,
        ][usize::from(indexing % 4)],
        write: if write_through {
            WritePolicy::WriteThrough
        } else {
            WritePolicy::WriteBack
        },
        allocation: if allocate_writes {
            Allocation::ReadWrite
        } else {
            Allocation::ReadOnly
        },
        replacement: if seed == 0 {
            Replacement::RoundRobin
        } else {
            Replacement::PseudoRandom { seed }
        },
    };
    let model = CpuModel {
        midr,
        dcache: config,
        icache: config,
        write_buffer_entries: (seed % 5) as usize,
    };
    let valid = model.validate();
    if g.line_bytes > crate::sim::MAX_MODEL_LINE {
        ensure_eq!(
            valid,
            Err(ModelError::LineTooLong {
                line_bytes: g.line_bytes
            }),
            "model"
        );
        return Ok(());
    }
    ensure_eq!(valid, Ok(()), "model of a valid geometry");
    if g.size_bytes > MODEL_LIMIT {
        return Ok(());
    }
    let mut sim = Sim::try_new(model, MODEL_MEMORY as usize).map_err(|e| format!("{e}"))?;
    for page in 0..MODEL_MEMORY / 4096 {
        let pa = page * 4096;
        sim.map(KERNEL, pa, pa, MemType::WriteBack, true)
            .map_err(|e| format!("map {pa:#x}: {e}"))?;
    }
    let mut stored: HashMap<u32, u32> = HashMap::new();
    for (i, op) in ops.iter().take(MAX_OPS).enumerate() {
        match *op {
            ModelOp::Store { offset, value } => {
                let va = (offset % MODEL_MEMORY) & !3;
                sim.store(va, 4, value)
                    .map_err(|e| format!("op {i}: store at {va:#x}: {e}"))?;
                stored.insert(va, value);
            }
            ModelOp::Load { offset } => {
                let va = (offset % MODEL_MEMORY) & !3;
                let got = sim
                    .load(va, 4)
                    .map_err(|e| format!("op {i}: load at {va:#x}: {e}"))?;
                let expected = stored.get(&va).copied().unwrap_or(0);
                ensure_eq!(got, expected, "op {i}: load at {va:#x}");
            }
            ModelOp::SetWay {
                invalidate,
                set,
                way,
            } => {
                let op = if invalidate {
                    LineOp::CleanInvalidate
                } else {
                    LineOp::Clean
                };
                let (set, way) = (set as usize, way as usize);
                let done = sim.maintain_set_way(op, set, way);
                ensure_eq!(
                    done.is_ok(),
                    set < g.sets() && way < g.ways,
                    "op {i}: set/way ({set}, {way})"
                );
            }
        }
    }
    ensure!(
        sim.violations().is_empty(),
        "the oracle reports {:?}",
        sim.violations().first()
    );
    Ok(())
}
