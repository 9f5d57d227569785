//! On-target: every CP15 primitive the running CPU has executes (no
//! undefined-instruction exception), MIDR decodes to the CPU QEMU was given,
//! SCTLR round-trips, the whole-D-cache operations run to completion, and
//! what the CPU lacks is refused with a typed error before any instruction.
//!
//! QEMU models no cache, so these tests show that the instructions exist and
//! are encoded right — not that they keep data coherent; that is the cache
//! model's job.
#![no_std]
#![no_main]

use vacmm::addr::{RangeError, VirtAddr, VirtRange};
use vacmm::arch::regs::Sctlr;
use vacmm::arch::{AnyCpu, Arm926, Armv6, cp15};
use vacmm::cache::{
    CacheGeometry, CacheInfo, CacheMaintenance, CpuPart, MaintenanceError, RangeOutcome,
};
use vacmm_qemu::fault::{FaultKind, catch_fault};
use vacmm_qemu::harness::TestResult;
use vacmm_qemu::{QemuCpu, booted_cpu, check, check_eq, println};

/// 16 KiB, 4-way, 32-byte lines: what the real parts have (QEMU's CTR says 64 KiB).
fn info() -> CacheInfo {
    let geometry = CacheGeometry::new(16 << 10, 4, 32).expect("valid geometry");
    vacmm::arch::cache_info()
        .expect("QEMU has a CTR")
        .with_dcache(geometry)
}

fn backend() -> AnyCpu {
    AnyCpu::new(info()).expect("the backend matches the CPU")
}

/// Runs `op`; fails the case, naming `name`, if it raised an undefined-instruction exception.
fn executes(name: &str, op: impl FnOnce()) -> TestResult {
    let fault = catch_fault(FaultKind::Undefined, op);
    check!(fault.is_none(), "{name}: {}", fault.unwrap());
    Ok(())
}

/// A cache-line-aligned scratch buffer the invalidate operations may discard.
#[repr(C, align(32))]
struct Lines([u8; 128]);
static mut SCRATCH: Lines = Lines([0; 128]);

fn scratch() -> u32 {
    core::ptr::addr_of!(SCRATCH) as u32
}

fn midr_decodes_to_the_booted_cpu() -> TestResult {
    let midr = vacmm::arch::main_id();
    let booted = booted_cpu();
    println!("  booted {booted:?}, MIDR says {midr}");
    let expected = match booted {
        Some(QemuCpu::Arm926) => CpuPart::Arm926,
        Some(QemuCpu::Arm1136R2) => CpuPart::Arm1136R0,
        Some(QemuCpu::Arm1136) => CpuPart::Arm1136R1,
        Some(QemuCpu::Arm1176) => CpuPart::Arm1176,
        Some(QemuCpu::Arm11MpCore) => CpuPart::Arm11MpCore,
        None => {
            return Err(vacmm_qemu::harness::Failure::new(
                "no vacmm-cpu= on the semihosting command line".into(),
                file!(),
                line!(),
            ));
        }
    };
    check_eq!(midr.part(), expected);
    Ok(())
}

fn sctlr_modify_round_trips() -> TestResult {
    let before = Sctlr::read();
    // SAFETY: alignment checking and round-robin replacement change no
    // mapping; both are restored below.
    let written = unsafe { Sctlr::modify(|s| s ^ (Sctlr::A | Sctlr::RR)) };
    let read_back = Sctlr::read();
    // SAFETY: restores the value read above.
    unsafe { Sctlr::write(before) };
    check_eq!(read_back.bits(), written.bits());
    check_eq!(Sctlr::read().bits(), before.bits());
    check!(read_back.contains(Sctlr::A) != before.contains(Sctlr::A));
    Ok(())
}

fn common_line_and_tlb_primitives_execute() -> TestResult {
    let va = scratch();
    executes("clean D line (c7,c10,1)", || cp15::clean_dcache_line(va))?;
    executes("clean+invalidate D line (c7,c14,1)", || {
        cp15::clean_invalidate_dcache_line(va)
    })?;
    // SAFETY: the scratch line holds nothing worth keeping.
    executes("invalidate D line (c7,c6,1)", || unsafe {
        cp15::invalidate_dcache_line(va)
    })?;
    executes("invalidate I line (c7,c5,1)", || {
        cp15::invalidate_icache_line(va)
    })?;
    executes("invalidate I-cache (c7,c5,0)", || {
        cp15::invalidate_icache_all(0)
    })?;
    executes("drain write buffer (c7,c10,4)", || {
        cp15::drain_write_buffer(0)
    })?;
    executes("TLB invalidate all (c8,c7,0)", || {
        cp15::invalidate_tlb_all(0)
    })?;
    executes("TLB invalidate MVA (c8,c7,1)", || {
        cp15::invalidate_tlb_mva(va & !0xfff)
    })?;
    executes("I-TLB invalidate all (c8,c5,0)", || {
        cp15::invalidate_itlb_all(0)
    })?;
    executes("I-TLB invalidate MVA (c8,c5,1)", || {
        cp15::invalidate_itlb_mva(va & !0xfff)
    })?;
    executes("D-TLB invalidate all (c8,c6,0)", || {
        cp15::invalidate_dtlb_all(0)
    })?;
    executes("D-TLB invalidate MVA (c8,c6,1)", || {
        cp15::invalidate_dtlb_mva(va & !0xfff)
    })?;
    Ok(())
}

fn translation_registers_round_trip() -> TestResult {
    use vacmm::addr::PhysAddr;
    use vacmm::arch::regs::{Dacr, TableWalk, Ttbr, fcse_pid, set_ttbr0, ttbr0};
    let saved = ttbr0();
    let table = Ttbr::new(PhysAddr(0x0040_0000), 0, TableWalk::empty()).unwrap();
    // SAFETY: the MMU is off, so TTBR0 is not used; restored right after.
    unsafe { set_ttbr0(table) };
    let read_back = ttbr0();
    // SAFETY: restores the value read above.
    unsafe { set_ttbr0(saved) };
    check_eq!(read_back.base(), PhysAddr(0x0040_0000));
    let dacr = Dacr::read();
    Dacr::write(Dacr::new_with_raw_value(0x5555_5555));
    let written = Dacr::read().raw_value();
    Dacr::write(dacr);
    check_eq!(written, 0x5555_5555);
    // Only read: a non-zero PID would relocate this code, which runs below 32 MiB.
    check_eq!(fcse_pid().pid(), 0);
    Ok(())
}

fn set_way_operations_execute_and_check_bounds() -> TestResult {
    let info = info();
    let (sets, ways) = (info.dcache.sets(), info.dcache.ways);
    let result = match backend() {
        AnyCpu::Arm926(mut cpu) => {
            executes("clean by set/way (c7,c10,2)", || {
                cpu.clean_dcache_set_way(sets - 1, ways - 1).unwrap()
            })?;
            executes("clean+inv by set/way (c7,c14,2)", || {
                cpu.clean_invalidate_dcache_set_way(0, 0).unwrap()
            })?;
            cpu.clean_dcache_set_way(sets, 0)
        }
        AnyCpu::Armv6(mut cpu) => {
            executes("clean by set/way (c7,c10,2)", || {
                cpu.clean_dcache_set_way(sets - 1, ways - 1).unwrap()
            })?;
            executes("clean+inv by set/way (c7,c14,2)", || {
                cpu.clean_invalidate_dcache_set_way(0, 0).unwrap()
            })?;
            cpu.clean_dcache_set_way(0, ways)
        }
    };
    check!(
        matches!(result, Err(MaintenanceError::SetWayOutOfRange { .. })),
        "an out-of-range set/way gave {result:?}"
    );
    Ok(())
}

fn whole_dcache_operations_run_to_completion() -> TestResult {
    let mut cpu = backend();
    // On ARM926 these are the test-and-clean loops: they return only once
    // the CPU reports no dirty line left.
    executes("clean whole D-cache", || cpu.clean_dcache_all())?;
    executes("clean+invalidate whole D-cache", || {
        cpu.clean_invalidate_dcache_all()
    })?;
    executes("invalidate whole I-cache", || cpu.invalidate_icache_all())?;
    executes("TLB invalidate all", || cpu.invalidate_tlb_all())?;
    Ok(())
}

fn range_operations_keep_data_and_report_what_they_did() -> TestResult {
    let mut cpu = backend();
    let mut data = [0u32; 64];
    for (i, word) in data.iter_mut().enumerate() {
        *word = 0xc0de_0000 | i as u32;
    }
    let range = VirtRange::new(VirtAddr(data.as_ptr() as u32 + 4), 200).unwrap();
    let outcome = cpu.clean_dcache_range(range);
    let expected_lines = if cpu.info().is_armv6() {
        RangeOutcome::Block
    } else {
        RangeOutcome::Lines(7)
    };
    check!(
        matches!(outcome, RangeOutcome::Block | RangeOutcome::Lines(7 | 8)),
        "clean range gave {outcome:?}, expected like {expected_lines:?}"
    );
    cpu.clean_invalidate_dcache_range(range);
    cpu.invalidate_icache_range(range);
    let huge = VirtRange::new(VirtAddr(0x10_0000), 1 << 20).unwrap();
    check_eq!(cpu.clean_dcache_range(huge), RangeOutcome::WholeCache);
    for (i, word) in data.iter().enumerate() {
        // SAFETY: reading our own initialised array.
        check_eq!(
            unsafe { core::ptr::read_volatile(word) },
            0xc0de_0000 | i as u32
        );
    }
    // SAFETY: the scratch lines hold nothing worth keeping.
    let outcome = unsafe {
        cpu.invalidate_dcache_range(VirtRange::new(VirtAddr(scratch() + 8), 80).unwrap())
    };
    check!(outcome != RangeOutcome::WholeCache && outcome != RangeOutcome::Nothing);
    Ok(())
}

fn bad_ranges_are_typed_errors() -> TestResult {
    check_eq!(
        VirtRange::from_bounds(VirtAddr(0x2000), VirtAddr(0x1000)),
        Err(RangeError::EndBeforeStart {
            start: 0x2000,
            end: 0x1000
        })
    );
    check_eq!(
        VirtRange::new(VirtAddr(0xffff_ff00), 0x200),
        Err(RangeError::WrapsPast4GiB {
            start: 0xffff_ff00,
            len: 0x200
        })
    );
    Ok(())
}

fn wait_for_interrupt_wakes_on_a_timer_interrupt() -> TestResult {
    // The board's timer raises its interrupt line after ~1 ms. WFI wakes
    // on a pending interrupt even with IRQs masked in CPSR, so no handler
    // runs.
    let tick = &vacmm_qemu::board::TICK;
    tick.start(1000);
    let fault = catch_fault(FaultKind::Undefined, cp15::wait_for_interrupt);
    let raised = tick.raised();
    tick.stop();
    check!(fault.is_none(), "WFI (c7,c0,4): {}", fault.unwrap());
    check!(
        raised,
        "woke without the timer interrupt raised on {}",
        vacmm_qemu::board::NAME
    );
    Ok(())
}

fn armv6_primitives_or_typed_refusal() -> TestResult {
    let midr = vacmm::arch::main_id();
    if !midr.is_armv6_or_later() {
        // ARM926: the ARMv6 backend and registers are refused before any
        // ARMv6 instruction runs, and ASID operations are typed errors.
        check!(matches!(
            Armv6::new(info()),
            Err(MaintenanceError::WrongCpu { .. })
        ));
        check!(vacmm::arch::regs::Armv6Registers::new().is_err());
        let mut cpu = Arm926::new(info()).unwrap();
        check_eq!(
            cpu.invalidate_tlb_asid(1),
            Err(MaintenanceError::NotOnThisCpu {
                operation: "TLB invalidate by ASID",
                cpu: CpuPart::Arm926
            })
        );
        return Ok(());
    }
    check!(matches!(
        Arm926::new(info()),
        Err(MaintenanceError::WrongCpu { .. })
    ));
    let mut cpu = Armv6::new(info()).unwrap();
    let profile = *cpu.profile();
    println!("  {profile:?}");
    let va = scratch();
    // SAFETY (whole block): ARMv6 checked above; the scratch lines may be discarded.
    unsafe {
        executes("clean D-cache (c7,c10,0)", || cp15::v6_clean_dcache_all(0))?;
        executes("clean+inv D-cache (c7,c14,0)", || {
            cp15::v6_clean_invalidate_dcache_all(0)
        })?;
        executes("invalidate D by set/way (c7,c6,2)", || {
            cpu.invalidate_dcache_set_way(0, 0).unwrap()
        })?;
        executes("erratum 411920 I-invalidate", || {
            cp15::v6_invalidate_icache_all_erratum_411920()
        })?;
        executes("I-TLB invalidate ASID (c8,c5,2)", || {
            cp15::v6_invalidate_itlb_asid(3)
        })?;
        executes("D-TLB invalidate ASID (c8,c6,2)", || {
            cp15::v6_invalidate_dtlb_asid(3)
        })?;
    }
    // The block operations: present where the profile uses them, and
    // undefined where it does not (the MPCore has none, QEMU neither).
    // SAFETY (whole block): as above.
    let block_faults = unsafe {
        [
            catch_fault(FaultKind::Undefined, || {
                cp15::v6_clean_dcache_block(va, va + 96)
            }),
            catch_fault(FaultKind::Undefined, || {
                cp15::v6_clean_invalidate_dcache_block(va, va + 96)
            }),
            catch_fault(FaultKind::Undefined, || {
                cp15::v6_invalidate_dcache_block(va, va + 96)
            }),
            catch_fault(FaultKind::Undefined, || {
                cp15::v6_invalidate_icache_block_erratum_371025(va, va + 96)
            }),
        ]
    };
    for fault in &block_faults {
        check_eq!(fault.is_none(), profile.uses_block_operations());
    }
    executes("DMB (c7,c10,5)", || cpu.data_memory_barrier())?;
    executes("ISB (c7,c5,4)", || cpu.instruction_barrier())?;
    executes("BTC flush (c7,c5,6)", || cpu.flush_branch_target_cache())?;
    let mut by_asid = Ok(());
    executes("TLB invalidate MVA+ASID", || {
        by_asid = cpu.invalidate_tlb_page_asid(VirtAddr(va), 3)
    })?;
    check_eq!(by_asid, Ok(()));
    check_eq!(cpu.invalidate_tlb_asid(3), Ok(()));

    let regs = vacmm::arch::regs::Armv6Registers::new().unwrap();
    let context = regs.context_id();
    // SAFETY: MMU off: the ASID tags nothing yet; restored right after.
    unsafe { regs.set_context_id(vacmm::arch::regs::ContextId::new(0x42, 7)) };
    let read_back = regs.context_id();
    // SAFETY: restores the value read above.
    unsafe { regs.set_context_id(context) };
    check_eq!((read_back.procid(), read_back.asid()), (0x42, 7));
    let ttbcr = regs.ttbcr();
    // SAFETY: MMU off: the split is not used; restored right after.
    unsafe { regs.set_ttbcr(vacmm::arch::regs::Ttbcr::with_split(2)) };
    let split = regs.ttbcr().n();
    // SAFETY: restores the value read above.
    unsafe { regs.set_ttbcr(ttbcr) };
    check_eq!(split, 2);
    println!(
        "  TTBR1 {:#x}, WFAR {:#x}, ACTLR {:?}",
        regs.ttbr1().0,
        regs.watchpoint_fault_address(),
        regs.actlr()
    );
    Ok(())
}

vacmm_qemu::test_main!(
    midr_decodes_to_the_booted_cpu,
    sctlr_modify_round_trips,
    translation_registers_round_trip,
    common_line_and_tlb_primitives_execute,
    set_way_operations_execute_and_check_bounds,
    whole_dcache_operations_run_to_completion,
    range_operations_keep_data_and_report_what_they_did,
    bad_ranges_are_typed_errors,
    wait_for_interrupt_wakes_on_a_timer_interrupt,
    armv6_primitives_or_typed_refusal,
);
