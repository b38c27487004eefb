//! JPEG XL via libjxl (Debian's `libjxl0.7`, BSD-3), called through a few hand-written
//! declarations: the Rust bindings (`jpegxl-rs`/`jpegxl-sys`) are GPL-3, which an Apache-2.0
//! proxy does not take in. Behind the `jxl` cargo feature; the format is chosen only when it
//! is listed in `images.formats` and the client names `image/jxl` (Safari 17+).
//!
//! The declarations follow libjxl 0.7's headers (`jxl/encode.h`, `codestream_header.h`,
//! `types.h`, `color_encoding.h`); every struct is initialised by libjxl's own functions.

use crate::image::config::JxlConfig;
use image::DynamicImage;
use std::ffi::c_void;

#[allow(non_camel_case_types, dead_code)]
mod sys {
    use std::ffi::c_void;

    pub type JXL_BOOL = i32;
    pub const JXL_ENC_SUCCESS: i32 = 0;
    pub const JXL_ENC_NEED_MORE_OUTPUT: i32 = 2;
    pub const JXL_TYPE_UINT8: i32 = 2;
    pub const JXL_NATIVE_ENDIAN: i32 = 0;
    pub const JXL_ENC_FRAME_SETTING_EFFORT: i32 = 0;

    #[repr(C)]
    pub struct JxlPixelFormat {
        pub num_channels: u32,
        pub data_type: i32,
        pub endianness: i32,
        pub align: usize,
    }

    #[repr(C)]
    pub struct JxlBasicInfo {
        pub have_container: JXL_BOOL,
        pub xsize: u32,
        pub ysize: u32,
        pub bits_per_sample: u32,
        pub exponent_bits_per_sample: u32,
        pub intensity_target: f32,
        pub min_nits: f32,
        pub relative_to_max_display: JXL_BOOL,
        pub linear_below: f32,
        pub uses_original_profile: JXL_BOOL,
        pub have_preview: JXL_BOOL,
        pub have_animation: JXL_BOOL,
        pub orientation: i32,
        pub num_color_channels: u32,
        pub num_extra_channels: u32,
        pub alpha_bits: u32,
        pub alpha_exponent_bits: u32,
        pub alpha_premultiplied: JXL_BOOL,
        pub preview: [u32; 2],
        pub animation: [u32; 4],
        pub intrinsic_xsize: u32,
        pub intrinsic_ysize: u32,
        pub padding: [u8; 100],
    }

    #[repr(C)]
    pub struct JxlColorEncoding {
        pub color_space: i32,
        pub white_point: i32,
        pub white_point_xy: [f64; 2],
        pub primaries: i32,
        pub primaries_red_xy: [f64; 2],
        pub primaries_green_xy: [f64; 2],
        pub primaries_blue_xy: [f64; 2],
        pub transfer_function: i32,
        pub gamma: f64,
        pub rendering_intent: i32,
    }

    #[link(name = "jxl")]
    extern "C" {
        pub fn JxlEncoderCreate(memory_manager: *const c_void) -> *mut c_void;
        pub fn JxlEncoderDestroy(enc: *mut c_void);
        pub fn JxlEncoderInitBasicInfo(info: *mut JxlBasicInfo);
        pub fn JxlEncoderSetBasicInfo(enc: *mut c_void, info: *const JxlBasicInfo) -> i32;
        pub fn JxlColorEncodingSetToSRGB(color: *mut JxlColorEncoding, is_gray: JXL_BOOL);
        pub fn JxlEncoderSetColorEncoding(enc: *mut c_void, color: *const JxlColorEncoding) -> i32;
        pub fn JxlEncoderFrameSettingsCreate(
            enc: *mut c_void,
            source: *const c_void,
        ) -> *mut c_void;
        pub fn JxlEncoderFrameSettingsSetOption(
            settings: *mut c_void,
            option: i32,
            value: i64,
        ) -> i32;
        pub fn JxlEncoderSetFrameDistance(settings: *mut c_void, distance: f32) -> i32;
        pub fn JxlEncoderSetFrameLossless(settings: *mut c_void, lossless: JXL_BOOL) -> i32;
        pub fn JxlEncoderAddImageFrame(
            settings: *const c_void,
            format: *const JxlPixelFormat,
            buffer: *const c_void,
            size: usize,
        ) -> i32;
        pub fn JxlEncoderCloseInput(enc: *mut c_void);
        pub fn JxlEncoderProcessOutput(
            enc: *mut c_void,
            next_out: *mut *mut u8,
            avail_out: *mut usize,
        ) -> i32;
    }
}

/// cjxl's mapping from a 1–100 quality to a Butteraugli distance (100 is lossless).
pub fn distance(quality: u8) -> f32 {
    let q = f32::from(quality.clamp(1, 100));
    if q >= 100.0 {
        0.0
    } else if q >= 30.0 {
        0.1 + (100.0 - q) * 0.09
    } else {
        6.4 + 2.5f32.powf((30.0 - q) / 5.0) / 6.25
    }
}

/// Owns a `JxlEncoder` and destroys it however the encode ends.
struct Encoder(*mut c_void);

impl Drop for Encoder {
    fn drop(&mut self) {
        // SAFETY: the pointer came from JxlEncoderCreate and is destroyed once (with the
        // frame settings it owns).
        unsafe { sys::JxlEncoderDestroy(self.0) }
    }
}

/// Encodes RGB or RGBA pixels (Luma is expanded to RGB); `lossless` keeps every pixel.
pub fn encode(img: &DynamicImage, c: JxlConfig, lossless: bool) -> Result<Vec<u8>, String> {
    let (pixels, channels) = match img {
        DynamicImage::ImageRgba8(p) => (p.as_raw().clone(), 4u32),
        DynamicImage::ImageRgb8(p) => (p.as_raw().clone(), 3),
        other => (other.to_rgb8().into_raw(), 3),
    };
    let fail = |what: &str| Err(format!("libjxl: {what} failed"));
    // SAFETY: the encoder is created here and destroyed by `Encoder`'s drop; the basic info
    // and colour encoding are initialised by libjxl before fields are set; libjxl copies the
    // pixel buffer during AddImageFrame; the output pointer always points into `out` with
    // `avail` bytes left, and `out` is resized only between calls.
    unsafe {
        let enc = sys::JxlEncoderCreate(std::ptr::null());
        if enc.is_null() {
            return fail("JxlEncoderCreate");
        }
        let enc = Encoder(enc);
        let mut info = std::mem::MaybeUninit::<sys::JxlBasicInfo>::zeroed();
        sys::JxlEncoderInitBasicInfo(info.as_mut_ptr());
        let mut info = info.assume_init();
        info.xsize = img.width();
        info.ysize = img.height();
        info.bits_per_sample = 8;
        info.num_color_channels = 3;
        info.uses_original_profile = i32::from(lossless);
        if channels == 4 {
            info.num_extra_channels = 1;
            info.alpha_bits = 8;
        }
        if sys::JxlEncoderSetBasicInfo(enc.0, &info) != sys::JXL_ENC_SUCCESS {
            return fail("JxlEncoderSetBasicInfo");
        }
        let mut colour = std::mem::MaybeUninit::<sys::JxlColorEncoding>::zeroed();
        sys::JxlColorEncodingSetToSRGB(colour.as_mut_ptr(), 0);
        if sys::JxlEncoderSetColorEncoding(enc.0, colour.as_ptr()) != sys::JXL_ENC_SUCCESS {
            return fail("JxlEncoderSetColorEncoding");
        }
        let settings = sys::JxlEncoderFrameSettingsCreate(enc.0, std::ptr::null());
        if settings.is_null()
            || sys::JxlEncoderFrameSettingsSetOption(
                settings,
                sys::JXL_ENC_FRAME_SETTING_EFFORT,
                i64::from(c.effort),
            ) != sys::JXL_ENC_SUCCESS
        {
            return fail("frame settings");
        }
        let set = if lossless {
            sys::JxlEncoderSetFrameLossless(settings, 1)
        } else {
            sys::JxlEncoderSetFrameDistance(settings, distance(c.quality))
        };
        if set != sys::JXL_ENC_SUCCESS {
            return fail("distance");
        }
        let format = sys::JxlPixelFormat {
            num_channels: channels,
            data_type: sys::JXL_TYPE_UINT8,
            endianness: sys::JXL_NATIVE_ENDIAN,
            align: 0,
        };
        if sys::JxlEncoderAddImageFrame(
            settings,
            &format,
            pixels.as_ptr().cast::<c_void>(),
            pixels.len(),
        ) != sys::JXL_ENC_SUCCESS
        {
            return fail("JxlEncoderAddImageFrame");
        }
        sys::JxlEncoderCloseInput(enc.0);
        let mut out = vec![0u8; 64 * 1024];
        let mut written = 0usize;
        loop {
            let mut next = out.as_mut_ptr().add(written);
            let mut avail = out.len() - written;
            let status = sys::JxlEncoderProcessOutput(enc.0, &mut next, &mut avail);
            written = out.len() - avail;
            match status {
                sys::JXL_ENC_SUCCESS => break,
                sys::JXL_ENC_NEED_MORE_OUTPUT => out.resize(out.len() * 2, 0),
                _ => return fail("JxlEncoderProcessOutput"),
            }
        }
        out.truncate(written);
        Ok(out)
    }
}
