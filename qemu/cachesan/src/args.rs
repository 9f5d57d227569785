//! The plugin's arguments (`-plugin libvacmm_cachesan.so,cpu=arm1136,...`):
//! which cache to model and where reports go. QEMU splits the option at
//! commas, so values never contain one (geometry uses `:`).

use std::fmt;
use std::path::PathBuf;

use vacmm::cache::{CacheGeometry, MainId};
use vacmm::sim::{CpuModel, Indexing};

/// The architecture whose CP15 and descriptor formats the guest uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuestArch {
    /// ARMv5 (ARM926EJ-S): one TTBR, FCSE, no ASIDs.
    V5,
    /// ARMv6 (ARM1136, ARM1176): TTBR0/TTBR1/TTBCR, ASIDs, SCTLR.XP.
    V6,
}

/// Everything the arguments say.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// The modelled caches.
    pub model: CpuModel,
    /// A short name of the model for reports ("arm1136 64 KiB VIPT").
    pub model_name: String,
    /// The guest's architecture.
    pub arch: GuestArch,
    /// Bytes of RAM modelled from `ram_base` (the guest's `-m`).
    pub ram_bytes: u32,
    /// The physical address of the modelled RAM's first byte.
    pub ram_base: u32,
    /// The guest's images (kernel, user programs), for symbols.
    pub elves: Vec<PathBuf>,
    /// Where reports go (standard error otherwise).
    pub log: Option<PathBuf>,
    /// Exit QEMU with [`VIOLATION_EXIT_STATUS`] if anything was found.
    pub fail_on_violation: bool,
    /// Functions whose cache maintenance is ignored, with everything they
    /// call (`omit=SYMBOL`, repeatable): the control "what if this flush
    /// were missing?" without patching the guest.
    pub omit: Vec<String>,
    /// Report a discarded dirty line only when a lost byte is read before
    /// it is overwritten (`discards=deferred`, the default), or at the
    /// discard (`discards=immediate`).
    pub defer_discards: bool,
    /// Report [`LiveAlias`](vacmm::sim::ViolationKind::LiveAlias) too.
    pub live_alias: bool,
    /// Sites (kind × PC) reported in full as they are found; later ones are
    /// only counted.
    pub max_reports: usize,
}

/// QEMU's exit status under `fail-on-violation=on` when the oracle found
/// something (the guest's own status otherwise).
pub const VIOLATION_EXIT_STATUS: i32 = 86;

/// An argument the plugin cannot use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArgError {
    /// Not `key=value`, or a key the plugin does not know.
    Unknown(String),
    /// A value that does not parse.
    BadValue {
        /// The key.
        key: String,
        /// The value.
        value: String,
        /// What was expected.
        expected: &'static str,
    },
}

impl fmt::Display for ArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArgError::Unknown(arg) => write!(f, "unknown argument `{arg}`\n{USAGE}"),
            ArgError::BadValue {
                key,
                value,
                expected,
            } => write!(f, "{key}={value}: expected {expected}"),
        }
    }
}

impl std::error::Error for ArgError {}

/// What `-plugin ...,help=on` (or a bad argument) prints.
pub const USAGE: &str = "\
cachesan arguments (comma-separated after the plugin path):
  cpu=NAME                     preset (default arm926), QEMU's -cpu names:
                               arm926 16 KiB VIVT; arm1136, arm1136-r2 64 KiB
                               VIPT (4 colours); arm1176 16 KiB VIPT;
                               arm11mpcore 32 KiB, D physically indexed
  geometry=SIZE[:WAYS[:LINE]]  D- and I-cache geometry, e.g. 32k or 32k:4:32
  indexing=vivt|vipt|pipt      override the preset's indexing
  arch=v5|v6                   override the guest architecture the preset implies
  write-buffer=N               write-buffer entries (ARM926 preset: 4, ARM11: 0)
  ram=SIZE                     modelled RAM (default 128M), from ram-base
  ram-base=ADDRESS             its physical address (default 0; the i.MX31's
                               RAM, QEMU's kzm, is at 0x80000000); accesses
                               outside are counted (outside-ram=), not modelled
  elf=PATH                     a guest image (kernel, user program), for the
                               function names of reports; repeatable: names
                               from the second on carry their file name
                               (init:main)
  log=PATH                     write reports there instead of standard error
  fail-on-violation=on|off     exit 86 when anything was found (default off)
  reports=N                    sites reported in full (default 20)
  omit=SYMBOL                  ignore the cache maintenance the guest runs
                               inside SYMBOL and what it calls (from its entry
                               to its return to the caller); repeatable; needs
                               elf= images that name SYMBOL
  discards=deferred|immediate  a dirty line invalidated with live data is
                               reported when a lost byte is read before it is
                               overwritten (default), or at the invalidate
  live-alias=on|off            also report (LiveAlias) each time a physical line
                               is in the D-cache under two virtual addresses
                               with one of them dirty, whether or not a read
                               later shows it (default off; a scan of the
                               D-cache per fill)";

fn bad(key: &str, value: &str, expected: &'static str) -> ArgError {
    ArgError::BadValue {
        key: key.into(),
        value: value.into(),
        expected,
    }
}

/// "64k", "1M", "4096" → bytes.
fn parse_size(text: &str) -> Option<usize> {
    let lower = text.to_ascii_lowercase();
    let (digits, shift) = match lower.strip_suffix(['k', 'm']) {
        Some(d) if lower.ends_with('k') => (d, 10),
        Some(d) => (d, 20),
        None => (lower.as_str(), 0),
    };
    digits.parse::<usize>().ok()?.checked_mul(1 << shift)
}

fn parse_geometry(text: &str) -> Option<CacheGeometry> {
    let mut parts = text.split(':');
    let size = parse_size(parts.next()?)?;
    let ways = parts.next().map_or(Some(4), |w| w.parse().ok())?;
    let line = parts.next().map_or(Some(32), |l| l.parse().ok())?;
    if parts.next().is_some() {
        return None;
    }
    CacheGeometry::new(size, ways, line)
}

fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "on" | "yes" | "true" | "1" => Some(true),
        "off" | "no" | "false" | "0" => Some(false),
        _ => None,
    }
}

impl Config {
    /// Parses QEMU's plugin arguments.
    pub fn parse<'a>(args: impl IntoIterator<Item = &'a str>) -> Result<Config, ArgError> {
        let mut cpu = "arm926".to_string();
        let mut geometry = None;
        let mut indexing = None;
        let mut arch = None;
        let mut write_buffer = None;
        let mut config = Config {
            model: CpuModel::arm926(),
            model_name: String::new(),
            arch: GuestArch::V5,
            ram_bytes: 128 << 20,
            ram_base: 0,
            elves: Vec::new(),
            log: None,
            fail_on_violation: false,
            defer_discards: true,
            live_alias: false,
            omit: Vec::new(),
            max_reports: 20,
        };
        for arg in args {
            let Some((key, value)) = arg.split_once('=') else {
                return Err(ArgError::Unknown(arg.into()));
            };
            match key {
                "cpu" => {
                    if !matches!(
                        value,
                        "arm926" | "arm1136" | "arm1136-r2" | "arm1176" | "arm11mpcore"
                    ) {
                        return Err(bad(
                            key,
                            value,
                            "arm926, arm1136, arm1136-r2, arm1176 or arm11mpcore",
                        ));
                    }
                    cpu = value.into();
                }
                "geometry" => {
                    geometry = Some(parse_geometry(value).ok_or_else(|| {
                        bad(
                            key,
                            value,
                            "SIZE[:WAYS[:LINE]] of a valid cache, e.g. 32k:4:32",
                        )
                    })?);
                }
                "indexing" => {
                    indexing = Some(match value {
                        "vivt" => Indexing::Vivt,
                        "vipt" => Indexing::Vipt,
                        "pipt" => Indexing::Pipt,
                        _ => return Err(bad(key, value, "vivt, vipt or pipt")),
                    });
                }
                "arch" => {
                    arch = Some(match value {
                        "v5" => GuestArch::V5,
                        "v6" => GuestArch::V6,
                        _ => return Err(bad(key, value, "v5 or v6")),
                    });
                }
                "write-buffer" => {
                    write_buffer = Some(
                        value
                            .parse()
                            .map_err(|_| bad(key, value, "a number of entries"))?,
                    );
                }
                "ram" => {
                    config.ram_bytes = parse_size(value)
                        .and_then(|b| u32::try_from(b).ok())
                        .filter(|&b| b > 0 && b % 4096 == 0)
                        .ok_or_else(|| bad(key, value, "a size of whole pages below 4 GiB"))?;
                }
                "ram-base" => {
                    let hex = value
                        .strip_prefix("0x")
                        .or_else(|| value.strip_prefix("0X"));
                    config.ram_base = match hex {
                        Some(digits) => u32::from_str_radix(digits, 16).ok(),
                        None => value.parse().ok(),
                    }
                    .filter(|&a| a % 4096 == 0)
                    .ok_or_else(|| {
                        bad(
                            key,
                            value,
                            "a page-aligned physical address, e.g. 0x80000000",
                        )
                    })?;
                }
                "elf" => config.elves.push(value.into()),
                "log" => config.log = Some(value.into()),
                "fail-on-violation" => {
                    config.fail_on_violation =
                        parse_bool(value).ok_or_else(|| bad(key, value, "on or off"))?;
                }
                "omit" => {
                    if value.is_empty() {
                        return Err(bad(key, value, "a function name"));
                    }
                    config.omit.push(value.into());
                }
                "discards" => {
                    config.defer_discards = match value {
                        "deferred" => true,
                        "immediate" => false,
                        _ => return Err(bad(key, value, "deferred or immediate")),
                    };
                }
                "live-alias" => {
                    config.live_alias =
                        parse_bool(value).ok_or_else(|| bad(key, value, "on or off"))?;
                }
                "reports" => {
                    config.max_reports = value.parse().map_err(|_| bad(key, value, "a number"))?;
                }
                _ => return Err(ArgError::Unknown(arg.into())),
            }
        }
        let (mut model, preset_arch) = match cpu.as_str() {
            "arm1136" => (
                match geometry {
                    Some(g) if g.size_bytes == 32 << 10 => CpuModel::arm1136_32k(),
                    _ => CpuModel::arm1136_64k(),
                },
                GuestArch::V6,
            ),
            "arm1136-r2" => (
                match geometry {
                    Some(g) if g.size_bytes == 32 << 10 => CpuModel::arm1136_32k(),
                    _ => CpuModel::arm1136_64k(),
                }
                .with_midr(MainId::from_raw(0x4107_b362)),
                GuestArch::V6,
            ),
            "arm1176" => (CpuModel::arm1176_16k(), GuestArch::V6),
            "arm11mpcore" => (CpuModel::arm11mpcore(), GuestArch::V6),
            _ => (CpuModel::arm926(), GuestArch::V5),
        };
        if let Some(g) = geometry {
            model.dcache.geometry = g;
            model.icache.geometry = g;
        }
        if let Some(i) = indexing {
            model.dcache.indexing = i;
            model.icache.indexing = i;
        }
        if let Some(entries) = write_buffer {
            model = model.with_write_buffer(entries);
        }
        config.model = model;
        config.arch = arch.unwrap_or(preset_arch);
        let g = model.dcache.geometry;
        config.model_name = format!(
            "{cpu}: {} KiB {}-way {}-byte lines, {:?}",
            g.size_bytes >> 10,
            g.ways,
            g.line_bytes,
            model.dcache.indexing
        );
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_and_overrides() {
        let c = Config::parse([]).unwrap();
        assert_eq!(c.model, CpuModel::arm926());
        assert_eq!(c.arch, GuestArch::V5);
        assert_eq!(c.ram_bytes, 128 << 20);

        let c = Config::parse(["cpu=arm1136"]).unwrap();
        assert_eq!(c.model, CpuModel::arm1136_64k());
        assert_eq!(c.arch, GuestArch::V6);
        let c = Config::parse(["cpu=arm1136", "geometry=32k"]).unwrap();
        assert_eq!(c.model, CpuModel::arm1136_32k());
        let c = Config::parse(["cpu=arm1176"]).unwrap();
        assert_eq!(c.model, CpuModel::arm1176_16k());
        let c = Config::parse(["cpu=arm1136-r2"]).unwrap();
        assert_eq!(c.model.dcache, CpuModel::arm1136_64k().dcache);
        assert_eq!(c.model.midr.part(), vacmm::cache::CpuPart::Arm1136R0);
        assert_eq!(c.arch, GuestArch::V6);
        let c = Config::parse(["cpu=arm11mpcore"]).unwrap();
        assert_eq!(c.model, CpuModel::arm11mpcore());
        assert_eq!(c.arch, GuestArch::V6);

        let c = Config::parse([
            "cpu=arm926",
            "geometry=8k:2:16",
            "indexing=pipt",
            "write-buffer=0",
            "ram=64M",
            "elf=/tmp/k.elf",
            "log=/tmp/log",
            "fail-on-violation=on",
            "reports=3",
        ])
        .unwrap();
        assert_eq!(
            c.model.dcache.geometry,
            CacheGeometry::new(8 << 10, 2, 16).unwrap()
        );
        assert_eq!(c.model.icache.indexing, Indexing::Pipt);
        assert_eq!(c.model.write_buffer_entries, 0);
        assert_eq!(c.ram_bytes, 64 << 20);
        assert!(c.fail_on_violation);
        assert_eq!(c.max_reports, 3);
        assert!(c.defer_discards);
        assert!(
            !Config::parse(["discards=immediate"])
                .unwrap()
                .defer_discards
        );
        assert!(Config::parse(["discards=later"]).is_err());
        let omitted = Config::parse(["omit=flush_dcache_page", "omit=clean_pte"]).unwrap();
        assert_eq!(omitted.omit, ["flush_dcache_page", "clean_pte"]);
        assert!(Config::parse(["omit="]).is_err());
        assert_eq!(c.elves, [std::path::PathBuf::from("/tmp/k.elf")]);
        let c = Config::parse(["elf=/k.elf", "elf=/init"]).unwrap();
        assert_eq!(c.elves.len(), 2);
    }

    #[test]
    fn bad_arguments_are_typed_errors() {
        assert!(matches!(
            Config::parse(["cpu=arm7"]),
            Err(ArgError::BadValue { .. })
        ));
        assert!(matches!(
            Config::parse(["geometry=48k:3"]),
            Err(ArgError::BadValue { .. })
        ));
        assert!(matches!(
            Config::parse(["ram=12345"]),
            Err(ArgError::BadValue { .. })
        ));
        for bad_base in [
            "ram-base=0x80000800",
            "ram-base=0x1_0000_0000",
            "ram-base=ram",
        ] {
            assert!(
                matches!(Config::parse([bad_base]), Err(ArgError::BadValue { .. })),
                "{bad_base}"
            );
        }
        assert_eq!(
            Config::parse(["ram-base=0x80000000"]).unwrap().ram_base,
            0x8000_0000
        );
        assert_eq!(
            Config::parse(["ram-base=1048576"]).unwrap().ram_base,
            1 << 20
        );
        assert!(matches!(
            Config::parse(["verbose"]),
            Err(ArgError::Unknown(_))
        ));
        assert!(matches!(
            Config::parse(["colour=red"]),
            Err(ArgError::Unknown(_))
        ));
    }
}
