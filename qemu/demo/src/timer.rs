//! The preemption tick: SP804 timer 0 on versatilepb, through the PL190
//! vectored interrupt controller (timers 0/1 raise VIC line 4).

const VIC_BASE: usize = 0x1014_0000;
const VIC_IRQ_STATUS: usize = 0x000;
const VIC_INT_ENABLE: usize = 0x010;
const TIMER0_BASE: usize = 0x101e_2000;
const TIMER_LOAD: usize = 0x00;
const TIMER_CONTROL: usize = 0x08;
const TIMER_INT_CLR: usize = 0x0c;
const TIMER_MIS: usize = 0x14;
/// VIC line of timers 0 and 1.
const TIMER01_IRQ: u32 = 4;
/// The timers count a 1 MHz reference clock.
const TIMER_HZ: u32 = 1_000_000;

// Control register: enable, periodic, interrupt enable, 32-bit counter.
const CONTROL_ENABLE: u32 = 1 << 7;
const CONTROL_PERIODIC: u32 = 1 << 6;
const CONTROL_INT_ENABLE: u32 = 1 << 5;
const CONTROL_32BIT: u32 = 1 << 1;

fn write(base: usize, offset: usize, value: u32) {
    // SAFETY: a device register of versatilepb, mapped VA = PA as Device
    // memory by every table the kernel builds.
    unsafe { ((base + offset) as *mut u32).write_volatile(value) }
}

fn read(base: usize, offset: usize) -> u32 {
    // SAFETY: as `write`.
    unsafe { ((base + offset) as *const u32).read_volatile() }
}

/// Starts a periodic interrupt every `period_us` microseconds.
pub fn start(period_us: u32) {
    write(TIMER0_BASE, TIMER_CONTROL, 0);
    write(
        TIMER0_BASE,
        TIMER_LOAD,
        period_us.max(1) * (TIMER_HZ / 1_000_000),
    );
    write(TIMER0_BASE, TIMER_INT_CLR, 1);
    write(
        TIMER0_BASE,
        TIMER_CONTROL,
        CONTROL_ENABLE | CONTROL_PERIODIC | CONTROL_INT_ENABLE | CONTROL_32BIT,
    );
    write(VIC_BASE, VIC_INT_ENABLE, 1 << TIMER01_IRQ);
}

/// Stops the tick.
pub fn stop() {
    write(TIMER0_BASE, TIMER_CONTROL, 0);
    write(TIMER0_BASE, TIMER_INT_CLR, 1);
}

/// Acknowledges a pending tick; false if the interrupt was not the timer's.
pub fn acknowledge() -> bool {
    let pending = read(VIC_BASE, VIC_IRQ_STATUS) & (1 << TIMER01_IRQ) != 0
        && read(TIMER0_BASE, TIMER_MIS) & 1 != 0;
    if pending {
        write(TIMER0_BASE, TIMER_INT_CLR, 1);
    }
    pending
}
