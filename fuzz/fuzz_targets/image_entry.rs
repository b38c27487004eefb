//! `cargo +nightly fuzz run image_entry`: see fuzz/README.md and `pixgate::fuzz_entry::image_entry`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = pixgate::fuzz_entry::image_entry(data);
});
