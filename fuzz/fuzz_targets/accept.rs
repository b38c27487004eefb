//! `cargo +nightly fuzz run accept`: see fuzz/README.md and `pixgate::fuzz_entry::accept`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = pixgate::fuzz_entry::accept(data);
});
