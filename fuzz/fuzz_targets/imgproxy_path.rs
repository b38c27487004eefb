//! `cargo +nightly fuzz run imgproxy_path`: see fuzz/README.md and `pixgate::fuzz_entry::imgproxy_path`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = pixgate::fuzz_entry::imgproxy_path(data);
});
