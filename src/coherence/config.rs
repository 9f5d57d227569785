//! What an engine is built for, checked when it is built: the policy's
//! answers × the context switch the kernel makes × the cache, and the
//! address spaces it will serve.
//!
//! The refusals and their reasons are listed on [`check_configuration`].

use core::fmt;

use super::*;
use crate::mm::config::{ConfigError, KernelRange};
use crate::mm::space::SpaceConfig;
use crate::mmu::{Arch, PageTable, SwitchPolicy};

/// A policy answer some switcher and cache cannot honour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PolicyAnswer {
    /// [`Policy::tracks_live_spaces`] answers `false`.
    DoesNotTrackLiveSpaces,
}

impl fmt::Display for PolicyAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PolicyAnswer::DoesNotTrackLiveSpaces => "tracks_live_spaces() = false",
        })
    }
}

/// Why an engine was not built: a combination of policy, context switch
/// and cache that cannot be kept coherent ([`check_configuration`] lists
/// each with its reason).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EngineConfigError {
    /// The switcher cannot serve this cache (whatever the policy).
    Switcher {
        /// The switch the kernel makes.
        switcher: SwitchPolicy,
        /// The cache.
        cache: CacheKind,
        /// The architecture the CPU's MIDR names.
        arch: Arch,
    },
    /// A policy answer this switcher and cache cannot honour.
    Policy {
        /// The policy's name.
        policy: &'static str,
        /// The answer.
        answer: PolicyAnswer,
        /// The switch the kernel makes.
        switcher: SwitchPolicy,
        /// The cache.
        cache: CacheKind,
    },
}

pub(super) fn switcher_name(s: SwitchPolicy) -> &'static str {
    match s {
        SwitchPolicy::VivtFlush => "the flushing switcher (SwitchPolicy::VivtFlush)",
        SwitchPolicy::VivtFcse => "the FCSE switcher (SwitchPolicy::VivtFcse)",
        SwitchPolicy::Asid => "the ASID switcher (SwitchPolicy::Asid)",
    }
}

/// A cache kind in a sentence ("an aliasing VIPT cache of 4 colours").
struct CacheName(CacheKind);

impl fmt::Display for CacheName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            CacheKind::Vivt => f.write_str("a VIVT cache"),
            CacheKind::VipAliasing { colours } => {
                write!(f, "an aliasing VIPT cache of {colours} colours")
            }
            CacheKind::VipNonAliasing => f.write_str("a non-aliasing VIPT cache"),
            CacheKind::Pipt => f.write_str("a PIPT cache"),
        }
    }
}

fn cache_name(c: CacheKind) -> CacheName {
    CacheName(c)
}

impl fmt::Display for EngineConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            EngineConfigError::Switcher {
                switcher: switcher @ SwitchPolicy::Asid,
                cache,
                arch,
            } => write!(
                f,
                "{} cannot serve {} ({arch}): it flushes nothing at a switch, and \
                 there are no ASIDs to tell the spaces' lines and TLB entries apart",
                switcher_name(switcher),
                cache_name(cache)
            ),
            EngineConfigError::Switcher {
                switcher,
                cache,
                arch,
            } => write!(
                f,
                "{} cannot serve {} ({arch}): ARMv6 tables flush the TLB entries of \
                 their changes only once a switcher has given them an ASID, and this one \
                 gives none (use the ASID switcher)",
                switcher_name(switcher),
                cache_name(cache)
            ),
            EngineConfigError::Policy {
                policy,
                answer,
                switcher,
                cache,
            } => write!(
                f,
                "policy {policy} answers {answer}, which {} on {} cannot honour: its \
                 switches flush nothing, so other spaces' lines stay in the cache where \
                 the policy never maintains them",
                switcher_name(switcher),
                cache_name(cache)
            ),
        }
    }
}

impl core::error::Error for EngineConfigError {}

/// Checks that `policy` with the `switch` the kernel makes can keep
/// `info`'s caches coherent: [`Engine::with_policy`] refuses what fails
/// here.
///
/// Every combination of [`Policy`] answers, [`SwitchPolicy`] and cache
/// kind was run on the cache model (`coherence::tests::config`: every
/// yes/no answer set, vacmm's and the bench's baselines, × the three
/// switchers × the five presets, random programs judged by the oracle and
/// the content reference). What failed is refused here:
///
/// | switcher | cache | answer | refused because |
/// |---|---|---|---|
/// | `Asid` | VIVT (ARMv5) | any | ARMv5 has no ASIDs (the key it writes is the FCSE PID) and VIVT lines carry none: the ASID switch flushes nothing, so the next space hits the last one's lines and TLB entries |
/// | `VivtFlush` | VIPT, PIPT (ARMv6) | any | an ARMv6 table skips the TLB flush of a changed entry while it holds no ASID (with the ASID switcher no entry of it can be cached before it gets one); the flushing switch assigns none, so a changed mapping (an `mprotect`, a write fault) keeps its stale TLB entry |
/// | `VivtFcse` | VIVT | `tracks_live_spaces() == false` | FCSE switches flush nothing: other spaces' lines stay cached at PID-modified addresses, which a policy that assumes every switch flushed never maintains (and it maintains the running space at unmodified addresses) |
///
/// Everything else runs clean, `uncaches_shared()` included on every
/// cache (its users read memory, so the kernel's lines of their pages are
/// dropped when a mapping goes uncached, before and after each kernel
/// access, and at each hand-over of a shared buffer), and `VivtFcse` on
/// ARMv6 (the PIDs serve as ASIDs; the TLB is flushed at every switch).
pub fn check_configuration<P: Policy + ?Sized>(
    info: &CacheInfo,
    switch: SwitchPolicy,
    policy: &P,
) -> Result<(), EngineConfigError> {
    let arch = Arch::of(info);
    let cache = info.kind;
    let switcher_fits = match switch {
        SwitchPolicy::Asid => arch == Arch::Armv6 && cache != CacheKind::Vivt,
        SwitchPolicy::VivtFlush => arch == Arch::Armv5,
        SwitchPolicy::VivtFcse => true,
    };
    if !switcher_fits {
        return Err(EngineConfigError::Switcher {
            switcher: switch,
            cache,
            arch,
        });
    }
    if switch == SwitchPolicy::VivtFcse && cache == CacheKind::Vivt && !policy.tracks_live_spaces()
    {
        return Err(EngineConfigError::Policy {
            policy: policy.name(),
            answer: PolicyAnswer::DoesNotTrackLiveSpaces,
            switcher: switch,
            cache,
        });
    }
    Ok(())
}

impl<P: Policy> Engine<P> {
    /// Checks `config` for a space this engine will serve: its own rules
    /// ([`SpaceConfig::check`]), the colour span against the engine's cache
    /// ([`SpaceConfig::check_for_cache`]), and user space clear of the
    /// kernel's linear map of `sys`'s frames and of the engine's windows.
    ///
    /// The engine is where these meet: it alone knows the cache it serves
    /// (a kernel may override what the CPU reports, as under QEMU), its
    /// windows and its linear map.
    pub fn check_space_config<M: TableMemory, F>(
        &self,
        sys: &MemorySystem<M, F>,
        config: &SpaceConfig,
    ) -> Result<(), ConfigError> {
        config.check_for_cache(&self.info)?;
        // The linear offset is given twice (here and by the kernel's
        // TableMemory): the two must agree, or the engine maintains
        // addresses the kernel's own accesses do not use.
        for pa in [sys.frames.first(), sys.frames.last()] {
            let (engine, memory) = (self.kernel_va(pa), sys.mem.kernel_va(pa));
            if engine != memory {
                return Err(ConfigError::LinearMapMismatch {
                    pa: pa.as_u32(),
                    engine: engine.as_u32(),
                    memory: memory.as_u32(),
                });
            }
        }
        let layout = &config.layout;
        let first = self.kernel_va(sys.frames.first()).as_u32();
        let len = u64::from(sys.frames.frames()) * u64::from(PAGE);
        layout.check_clear_of(KernelRange::LinearMap, first, u64::from(first) + len)?;
        if let Some(windows) = &self.windows {
            let start = windows.va(0).as_u32();
            let count = windows.colours() as u64 * u64::from(windows::SLOTS_PER_COLOUR);
            layout.check_clear_of(
                KernelRange::Windows,
                start,
                u64::from(start) + count * u64::from(PAGE),
            )?;
        }
        Ok(())
    }

    /// A new, empty address space over `table` (a fresh user
    /// table sharing the kernel's entries), its configuration checked
    /// first ([`check_space_config`](Self::check_space_config), then what
    /// [`AddressSpace::new`] checks). The way to build spaces this engine
    /// serves.
    pub fn create_space<M: TableMemory, F>(
        &self,
        sys: &mut MemorySystem<M, F>,
        config: SpaceConfig,
        table: PageTable,
    ) -> Result<AddressSpace, CoherenceError> {
        self.check_space_config(sys, &config)
            .map_err(SpaceError::Config)?;
        Ok(AddressSpace::new(sys, config, table)?)
    }
}
