//! A small on-target test harness: runs named cases, prints one line per
//! case, and closes with exactly `N passed, N failed` (the line `cargo xtask
//! test` reads). The exit status is non-zero if any case failed.
//!
//! A case returns `Err` through [`check!`](crate::check) /
//! [`check_eq!`](crate::check_eq) and the run goes on with the next case. A
//! panic or an unexpected fault cannot be resumed (no unwinding on these
//! targets): it fails the running case, reports how many cases did not run,
//! prints the summary line and exits.

use alloc::string::String;
use core::fmt;

use spin::Mutex;

use crate::println;

/// One named case.
pub struct TestCase {
    /// The name printed in the report (the function's path).
    pub name: &'static str,
    /// The case itself.
    pub run: fn() -> TestResult,
}

/// What a case returns.
pub type TestResult = Result<(), Failure>;

/// Why a case failed, and where.
#[derive(Debug)]
pub struct Failure {
    message: String,
    file: &'static str,
    line: u32,
}

impl Failure {
    /// A failure at `file:line` (the [`check!`](crate::check) macros fill these in).
    pub fn new(message: String, file: &'static str, line: u32) -> Self {
        Self {
            message,
            file,
            line,
        }
    }
}

/// vacmm's errors fail a case through `?`, at the caller's location.
macro_rules! failure_from {
    ($($error:ty),+) => {$(
        impl From<$error> for Failure {
            #[track_caller]
            fn from(error: $error) -> Self {
                let at = core::panic::Location::caller();
                Failure::new(alloc::format!("{error}"), at.file(), at.line())
            }
        }
    )+};
}
failure_from!(
    vacmm::mmu::TableError,
    vacmm::mmu::SwitchError,
    vacmm::mmu::DescriptorError,
    vacmm::cache::MaintenanceError,
    vacmm::coherence::CoherenceError,
    vacmm::mm::space::SpaceError,
    vacmm::mm::frames::FrameError,
    vacmm::mm::object::ObjectError,
    vacmm::coherence::dma::DmaError,
    vacmm::coherence::WindowError,
    vacmm::coherence::EngineConfigError,
    vacmm::coherence::shared::DestroyRefused
);

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {}:{}", self.message, self.file, self.line)
    }
}

/// Fails the case with a message unless `cond` holds.
#[macro_export]
macro_rules! check {
    ($cond:expr $(,)?) => {
        $crate::check!($cond, "check failed: {}", stringify!($cond))
    };
    ($cond:expr, $($arg:tt)+) => {
        if !$cond {
            return Err($crate::harness::Failure::new(
                $crate::__alloc::format!($($arg)+), file!(), line!()));
        }
    };
}

/// Fails the case unless the two values are equal, printing both.
#[macro_export]
macro_rules! check_eq {
    ($left:expr, $right:expr $(,)?) => {
        match (&$left, &$right) {
            (left, right) => $crate::check!(
                *left == *right,
                "{} == {} failed: left {:#x?}, right {:#x?}",
                stringify!($left),
                stringify!($right),
                left,
                right
            ),
        }
    };
}

/// Defines the kernel entry point of a test binary: runs the listed cases.
///
/// ```ignore
/// #![no_std]
/// #![no_main]
/// use vacmm_qemu::{check, harness::TestResult};
/// fn reads_midr() -> TestResult { check!(vacmm::arch::main_id().raw() != 0); Ok(()) }
/// vacmm_qemu::test_main!(reads_midr);
/// ```
#[macro_export]
macro_rules! test_main {
    ($($case:path),+ $(,)?) => {
        fn __vacmm_test_main() -> ! {
            $crate::harness::run(&[
                $($crate::harness::TestCase { name: stringify!($case), run: $case }),+
            ])
        }
        $crate::entry!(__vacmm_test_main);
    };
}

struct Progress {
    total: usize,
    passed: usize,
    failed: usize,
    running: Option<&'static str>,
}

static PROGRESS: Mutex<Progress> = Mutex::new(Progress {
    total: 0,
    passed: 0,
    failed: 0,
    running: None,
});

/// The test filters on the semihosting command line: the words after the
/// runner's marker `vacmm-filters` (so that the kernel's path, which QEMU
/// puts first and which may hold spaces, is never one), libtest flags
/// (`--…`) left out, which this harness does not take.
fn filters() -> alloc::vec::Vec<alloc::string::String> {
    crate::boot_words()
        .into_iter()
        .skip_while(|arg| *arg != "vacmm-filters")
        .skip(1)
        .filter(|arg| !arg.starts_with('-'))
        .collect()
}

/// Runs every case whose name contains one of the command line's filters
/// (every case without filters), prints the summary and exits (status 0
/// only if all that ran passed).
pub fn run(cases: &[TestCase]) -> ! {
    let filters = filters();
    let selected = |case: &&TestCase| {
        filters.is_empty() || filters.iter().any(|f| case.name.contains(f.as_str()))
    };
    let chosen = cases.iter().filter(selected).count();
    println!(
        "running {chosen} cases on {}{}",
        vacmm::arch::main_id(),
        if chosen < cases.len() {
            alloc::format!(" ({} filtered out by {filters:?})", cases.len() - chosen)
        } else {
            alloc::string::String::new()
        }
    );
    PROGRESS.lock().total = chosen;
    for case in cases.iter().filter(selected) {
        PROGRESS.lock().running = Some(case.name);
        let result = (case.run)();
        let mut progress = PROGRESS.lock();
        progress.running = None;
        match result {
            Ok(()) => {
                progress.passed += 1;
                println!("test {} ... ok", case.name);
            }
            Err(failure) => {
                progress.failed += 1;
                println!("test {} ... FAILED: {failure}", case.name);
            }
        }
    }
    let (passed, failed) = {
        let progress = PROGRESS.lock();
        (progress.passed, progress.failed)
    };
    println!("{passed} passed, {failed} failed");
    crate::exit(if failed == 0 { 0 } else { 1 })
}

/// The end of a run that cannot continue (panic, unexpected fault): prints
/// `why`, fails the running case if there is one, prints the summary line and
/// exits with status 101.
pub fn fatal(why: fmt::Arguments) -> ! {
    println!("{why}");
    // try_lock: the panic may have happened while the harness held the lock.
    if let Some(mut progress) = PROGRESS.try_lock()
        && let Some(name) = progress.running.take()
    {
        progress.failed += 1;
        println!("test {name} ... FAILED: {why}");
        let not_run = progress.total - progress.passed - progress.failed;
        println!("{not_run} cases not run");
        println!("{} passed, {} failed", progress.passed, progress.failed);
    }
    crate::exit(101)
}
