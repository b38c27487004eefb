//! `cargo +nightly fuzz run url_options`: see fuzz/README.md and `pixgate::fuzz_entry::url_options`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = pixgate::fuzz_entry::url_options(data);
});
