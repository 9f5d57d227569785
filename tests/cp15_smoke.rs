//! First on-target test: the CPU identifies itself, the basic CP15 cache
//! operations execute, and the board's console, fault and exit paths work.
#![no_std]
#![no_main]

use vacmm::arch::regs::Sctlr;
use vacmm::cache::{CacheKind, CacheType, CpuPart};
use vacmm_qemu::fault::{FaultKind, catch_fault};
use vacmm_qemu::harness::TestResult;
use vacmm_qemu::{check, check_eq, println};

fn midr_names_an_arm926_or_arm11() -> TestResult {
    let midr = vacmm::arch::main_id();
    println!("  {midr}");
    check_eq!(midr.implementer(), 0x41);
    check!(
        matches!(
            midr.part(),
            CpuPart::Arm926
                | CpuPart::Arm1136R0
                | CpuPart::Arm1136R1
                | CpuPart::Arm1176
                | CpuPart::Arm11MpCore
        ),
        "unexpected part {}",
        midr.part()
    );
    // An armv6 image runs on ARM11 only; an armv5te one on the ARM926 and
    // on the ARM1136 r0, which lacks the v6K instructions armv6 code uses.
    if cfg!(target_feature = "v6") {
        check!(midr.is_armv6_or_later());
    } else {
        check!(matches!(midr.part(), CpuPart::Arm926 | CpuPart::Arm1136R0));
    }
    Ok(())
}

fn ctr_decodes_to_a_harvard_cache() -> TestResult {
    let raw = vacmm::arch::cache_type_raw();
    let ctr = CacheType::decode(raw, vacmm::arch::main_id());
    check!(ctr.is_ok(), "CTR {raw:#010x}: {:?}", ctr);
    let ctr = ctr.unwrap();
    let d = ctr.dcache;
    check!(d.is_some(), "CTR {raw:#010x} reports no D-cache");
    let d = d.unwrap();
    println!(
        "  CTR {raw:#010x}: D {} KiB {}-way {}-byte lines, {}",
        d.size_bytes / 1024,
        d.ways,
        d.line_bytes,
        CacheKind::classify(vacmm::arch::main_id(), &ctr)
    );
    check!(ctr.separate);
    check!(d.line_bytes == 32 && d.ways == 4, "D geometry {d:?}");
    Ok(())
}

fn dcache_clean_by_mva_and_drain_keep_data() -> TestResult {
    let mut buffer = [0u32; 16];
    for (i, word) in buffer.iter_mut().enumerate() {
        *word = 0x5a5a_0000 | i as u32;
    }
    let start = buffer.as_ptr() as usize;
    for line in (start & !31..start + core::mem::size_of_val(&buffer)).step_by(32) {
        vacmm::arch::cp15::clean_dcache_line(line as u32);
    }
    vacmm::arch::cp15::drain_write_buffer(0);
    for (i, word) in buffer.iter().enumerate() {
        // SAFETY: reading our own initialised stack buffer.
        let value = unsafe { core::ptr::read_volatile(word) };
        check_eq!(value, 0x5a5a_0000 | i as u32);
    }
    Ok(())
}

fn undefined_instruction_is_caught_when_expected() -> TestResult {
    let fault = catch_fault(FaultKind::Undefined, || {
        // SAFETY: a permanently undefined encoding (UDF #0 in the ARM
        // encoding space); the handler resumes at the next instruction.
        unsafe { core::arch::asm!(".word 0xe7f000f0") }
    });
    check!(
        fault.is_some(),
        "no undefined-instruction exception was taken"
    );
    check_eq!(fault.unwrap().kind, FaultKind::Undefined);
    Ok(())
}

fn alignment_fault_is_caught_as_data_abort() -> TestResult {
    let words = [0u32; 2];
    let misaligned = words.as_ptr() as usize + 1;
    // SCTLR.A: alignment checking, so the unaligned load aborts even with
    // the MMU off.
    // SAFETY: only alignment checking changes; the case restores it below.
    let saved = unsafe { Sctlr::modify(|s| s | Sctlr::A) } - Sctlr::A;
    let fault = catch_fault(FaultKind::DataAbort, || {
        // SAFETY: an unaligned load from our own array; with SCTLR.A set it
        // aborts before reading, and the handler skips it.
        unsafe {
            core::arch::asm!("ldr {v}, [{a}]", a = in(reg) misaligned, v = out(reg) _);
        }
    });
    // SAFETY: restores the value read above.
    unsafe { Sctlr::write(saved) };
    check!(fault.is_some(), "the unaligned load did not abort");
    let fault = fault.unwrap();
    check_eq!(fault.address, misaligned);
    // Alignment fault: FS 0b0001 (or 0b0011 on ARMv5).
    check!(
        matches!(fault.status & 0xf, 0b0001 | 0b0011),
        "DFSR {:#x}",
        fault.status
    );
    Ok(())
}

vacmm_qemu::test_main!(
    midr_names_an_arm926_or_arm11,
    ctr_decodes_to_a_harvard_cache,
    dcache_clean_by_mva_and_drain_keep_data,
    undefined_instruction_is_caught_when_expected,
    alignment_fault_is_caught_as_data_abort,
);
