//! The preemption tick: the board's timer through its interrupt
//! controller (`vacmm_qemu::board::TICK`; on versatilepb SP804 timer 0 on
//! line 4 of the PL190 VIC).

use vacmm_qemu::board::TICK;

/// Starts a periodic interrupt every `period_us` microseconds.
pub fn start(period_us: u32) {
    TICK.start(period_us);
}

/// Stops the tick.
pub fn stop() {
    TICK.stop();
}

/// Acknowledges a pending tick; false if the interrupt was not the timer's.
pub fn acknowledge() -> bool {
    TICK.acknowledge()
}
