//! Everything about pixels, and nothing about HTTP: format sniffing, header probing and limits,
//! decoding (orientation, colour), encoders (one file each), the pipeline that chains them, and
//! the bounded pool that runs it off the network threads.

pub mod animation;
pub mod auto_quality;
pub mod codec;
pub mod config;
pub mod copyright;
pub mod cost;
pub mod decode;
pub mod effects;
pub mod fit;
pub mod format;
pub(crate) mod heif;
pub mod info;
pub mod marks;
pub mod max_bytes;
pub mod metadata;
pub mod pipeline;
pub mod plan;
pub mod pool;
pub mod probe;
pub mod resize;
pub mod shrink;
pub mod steps;
pub mod watermark;

/// Why an image was answered with its original bytes (or refused). A closed set: each value is
/// a metric label and appears in the `X-Pixgate` debug header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// The encoded result was not smaller than the source.
    NotSmaller,
    /// The body is cut short (e.g. a JPEG without its end marker).
    Truncated,
    /// The decoder rejected the data.
    Undecodable,
    /// Width × height or one dimension is over the limit (checked from the header).
    TooManyPixels,
    /// The body is larger than `limits.max_source_bytes`.
    TooLarge,
    /// Animated GIF / WebP / APNG: passed through rather than flattened to one frame.
    Animated,
    /// A format pixgate detects but does not decode (AVIF sources).
    UnsupportedSource,
    /// The client's family format is disabled in `images.formats`.
    FormatDisabled,
    /// The transform ran past `limits.transform_timeout`.
    Timeout,
    /// No transform slot became free within `limits.queue_timeout`.
    QueueTimeout,
    /// The encoder failed (including a caught codec panic).
    EncodeFailed,
    /// The body was empty.
    Empty,
    /// The origin sent `Cache-Control: no-transform` (RFC 9110 §7.7: a proxy must not change it).
    NoTransform,
    /// A rule for this source's format says `bypass`.
    RuleBypass,
    /// The transform queue was full (`limits.max_queued_transforms`).
    Overloaded,
    /// Holding this source would pass `limits.max_buffered_bytes` (all requests together).
    BufferBudget,
    /// A progressive JPEG with more scans than [`probe::MAX_JPEG_SCANS`].
    TooManyScans,
    /// A crop's origin lies outside the image (the upload service's `crop`).
    CropOutside,
    /// An animation with more frames than `images.animation.max_frames`.
    TooManyFrames,
    /// The watermark the variant names is not loaded (`images.watermarks`). Never answered
    /// with the original: a watermark is a promise (`proxy::outcome`).
    WatermarkMissing,
    /// The URL asked for this source format to be sent as it is (`skip_processing`, `raw`).
    SkipProcessing,
}

impl Reason {
    /// Every reason, for metric pre-registration and docs.
    pub const ALL: [Reason; 21] = [
        Reason::NotSmaller,
        Reason::Truncated,
        Reason::Undecodable,
        Reason::TooManyPixels,
        Reason::TooLarge,
        Reason::Animated,
        Reason::UnsupportedSource,
        Reason::FormatDisabled,
        Reason::Timeout,
        Reason::QueueTimeout,
        Reason::EncodeFailed,
        Reason::Empty,
        Reason::NoTransform,
        Reason::RuleBypass,
        Reason::Overloaded,
        Reason::BufferBudget,
        Reason::TooManyScans,
        Reason::CropOutside,
        Reason::TooManyFrames,
        Reason::WatermarkMissing,
        Reason::SkipProcessing,
    ];
    /// The label used in metrics and headers.
    pub fn label(self) -> &'static str {
        match self {
            Reason::NotSmaller => "not_smaller",
            Reason::Truncated => "truncated",
            Reason::Undecodable => "undecodable",
            Reason::TooManyPixels => "too_many_pixels",
            Reason::TooLarge => "too_large",
            Reason::Animated => "animated",
            Reason::UnsupportedSource => "unsupported_source",
            Reason::FormatDisabled => "format_disabled",
            Reason::Timeout => "timeout",
            Reason::QueueTimeout => "queue_timeout",
            Reason::EncodeFailed => "encode_failed",
            Reason::Empty => "empty",
            Reason::NoTransform => "no_transform",
            Reason::RuleBypass => "rule_bypass",
            Reason::Overloaded => "overloaded",
            Reason::BufferBudget => "buffer_budget",
            Reason::TooManyScans => "too_many_scans",
            Reason::CropOutside => "crop_outside",
            Reason::TooManyFrames => "too_many_frames",
            Reason::WatermarkMissing => "watermark_missing",
            Reason::SkipProcessing => "skip_processing",
        }
    }
}
