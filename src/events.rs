//! Events an embedder may want to see, through the `log` crate when the
//! `log` feature is on, and compiled away when it is off: whole-cache
//! fallbacks, pages made uncached and restored, errors a fallback handled.

/// `event!(level, "format", args…)`: `log::<level>!` with the `log`
/// feature, nothing (the arguments unevaluated) without.
// Used by the modules behind `alloc` only.
#[allow(unused_macros)]
macro_rules! event {
    ($level:ident, $($arg:tt)+) => {{
        #[cfg(feature = "log")]
        log::$level!(target: "vacmm", $($arg)+);
    }};
}
