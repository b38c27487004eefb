//! Shrink-on-load (`images.shrink_on_load`): how far a decoder may reduce an image that a
//! resize will shrink anyway. libjpeg decodes at 1/8, 2/8 or 4/8 scale; libwebp's chroma is
//! upsampled simply when the resize at least halves the image.

use super::probe::Probe;
use super::resize::{self, ResizeSpec};
use image::metadata::Orientation;

/// A resize the decoder may shrink towards (shrink-on-load, `images.shrink_on_load`): the
/// decoded image stays at least `margin` times the size the resize needs.
#[derive(Debug, Clone, Copy)]
pub struct ShrinkTo<'a> {
    /// The resize that follows the decode.
    pub spec: &'a ResizeSpec,
    /// At least 1: 1 decodes at the smallest scale that still covers the output (libvips',
    /// and Pillow's draft mode), 2 keeps twice the output's size for the resize to work with.
    pub margin: f64,
}

/// The DCT scale numerator (1–7, of 8) for a JPEG about to be resized by `spec`, or `None`
/// when a full decode is needed (little or no shrinking).
pub(super) fn dct_numerator(probe: &Probe, o: Orientation, to: ShrinkTo<'_>) -> Option<u8> {
    let swap = matches!(
        o,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    );
    let (w, h) = if swap {
        (probe.height, probe.width)
    } else {
        (probe.width, probe.height)
    };
    let scale = resize::geometry(w, h, to.spec).scale();
    numerator_for(scale, to.margin)
}

/// Whether the resize after the decode at least halves both sides (WebP's simple chroma
/// upsampling is then invisible).
pub(super) fn halved(probe: &Probe, to: ShrinkTo<'_>) -> bool {
    resize::geometry(probe.width, probe.height, to.spec).scale() <= 0.5
}

/// The DCT numerator for a resize by `scale`: keep at least `margin` times the pixels the
/// resize needs (for Lanczos to work with), and use only 1/8, 2/8 and 4/8. libjpeg's other
/// scales use slower IDCTs: measured on the 2 MP demo photo, 6/8 took 9.5 ms against 5.7 ms
/// for a full decode and 3.8 ms for 4/8 (docs/benchmarks.md).
fn numerator_for(scale: f64, margin: f64) -> Option<u8> {
    let need = (8.0 * scale * margin.max(1.0)).ceil();
    [1u8, 2, 4].into_iter().find(|&n| f64::from(n) >= need)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dct_scales_are_powers_of_two_and_keep_the_margin() {
        let n = |scale| numerator_for(scale, 2.0);
        assert_eq!(n(0.05), Some(1));
        assert_eq!(n(1.0 / 16.0), Some(1));
        assert_eq!(n(0.1), Some(2));
        assert_eq!(n(0.25), Some(4));
        assert_eq!(n(0.3), None, "6/8 would be slower than a whole decode");
        assert_eq!(n(0.363), None);
        assert_eq!(n(1.0), None);
        // Margin 1 (libvips' rule): the smallest scale that still covers the output.
        assert_eq!(numerator_for(0.2, 1.0), Some(2));
        assert_eq!(numerator_for(0.2, 2.0), Some(4));
        assert_eq!(numerator_for(0.45, 1.0), Some(4));
        assert_eq!(numerator_for(0.2, 0.5), Some(2), "below 1 counts as 1");
        for margin in [1.0, 1.5, 2.0, 3.0] {
            for i in 1..100 {
                let scale = f64::from(i) / 100.0;
                if let Some(n) = numerator_for(scale, margin) {
                    assert!(f64::from(n) / 8.0 >= margin * scale, "{scale}: {n}/8");
                }
            }
        }
    }
}
