//! The `log` feature: what an embedder sees through the `log` crate.

extern crate std;

use std::string::{String, ToString};
use std::sync::{Mutex, OnceLock};
use std::thread::ThreadId;

use super::*;

/// Collects every record with the thread that logged it (tests run in
/// threads of one process, and the logger is global).
struct Collect(Mutex<Vec<(ThreadId, log::Level, String)>>);

impl log::Log for Collect {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, record: &log::Record) {
        if record.target() == "vacmm" {
            let entry = (
                std::thread::current().id(),
                record.level(),
                record.args().to_string(),
            );
            self.0.lock().unwrap().push(entry);
        }
    }
    fn flush(&self) {}
}

/// This thread's records so far.
fn records() -> Vec<(log::Level, String)> {
    static LOGGER: OnceLock<&'static Collect> = OnceLock::new();
    let logger = LOGGER.get_or_init(|| {
        let logger: &'static Collect =
            std::boxed::Box::leak(std::boxed::Box::new(Collect(Mutex::new(Vec::new()))));
        log::set_logger(logger).expect("the only logger");
        log::set_max_level(log::LevelFilter::Trace);
        logger
    });
    let me = std::thread::current().id();
    logger
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|(t, ..)| *t == me)
        .map(|(_, level, text)| (*level, text.clone()))
        .collect()
}

#[test]
fn uncaching_and_restoring_an_alias_conflict_are_logged() {
    records();
    let (_, counters, _) = two_shared_mappings(CpuModel::arm1136_32k(), Faults::Engine, false);
    assert_eq!((counters.made_uncached, counters.restored), (1, 1));
    let seen = records();
    let info: Vec<&String> = seen
        .iter()
        .filter(|(level, _)| *level == log::Level::Info)
        .map(|(_, text)| text)
        .collect();
    assert_eq!(info.len(), 2, "{seen:#?}");
    assert!(info[0].contains("made uncached"), "{}", info[0]);
    assert!(info[1].contains("cached again"), "{}", info[1]);
}
