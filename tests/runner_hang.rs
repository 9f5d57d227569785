//! Not a test of vacmm: a guest that never ends. `cargo xtask test` runs it
//! with a short `VACMM_QEMU_TIMEOUT` and checks that `qemu/runner` kills it
//! and reports a failure naming the CPU and the binary.
#![no_std]
#![no_main]

fn spin_forever() -> ! {
    vacmm_qemu::println!("runner_hang: looping until the runner's timeout kills QEMU");
    loop {
        core::hint::spin_loop();
    }
}

vacmm_qemu::entry!(spin_forever);
