//! `cargo +nightly fuzz run rules_loader`: see fuzz/README.md and `pixgate::fuzz_entry::rules_loader`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = pixgate::fuzz_entry::rules_loader(data);
});
