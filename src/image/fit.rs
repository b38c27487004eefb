//! Fit modes and gravities: the geometry vocabulary of a resize, with the names sharp, imgix,
//! Cloudflare and imgproxy give them (parsed here so every URL style agrees).

/// How the image fits the requested box (sharp's vocabulary).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Fit {
    /// Fit inside the box, keep the aspect ratio (the default; one side may be smaller).
    #[default]
    Inside,
    /// Cover the box, keep the aspect ratio, crop the overflow (exact box).
    Cover,
    /// Fit inside, then pad to the exact box with the background colour.
    Contain,
    /// Stretch to the exact box (aspect ratio not kept).
    Fill,
    /// Cover the box without cropping (one side may be larger).
    Outside,
}

impl Fit {
    /// The canonical name (the one variant keys hold).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Fit::Inside => "inside",
            Fit::Cover => "cover",
            Fit::Contain => "contain",
            Fit::Fill => "fill",
            Fit::Outside => "outside",
        }
    }
    /// Parses the names sharp, imgix, Cloudflare and imgproxy use.
    pub(crate) fn parse(v: &str) -> Option<Fit> {
        Some(match v {
            "inside" | "clip" | "max" | "scale-down" => Fit::Inside,
            "cover" | "crop" => Fit::Cover,
            "contain" | "pad" | "fill-max" => Fit::Contain,
            "fill" | "scale" | "force" => Fit::Fill,
            "outside" | "min" => Fit::Outside,
            _ => return None,
        })
    }
}

/// Where a crop keeps the image.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Gravity {
    /// The middle.
    #[default]
    Center,
    /// Top edge.
    North,
    /// Bottom edge.
    South,
    /// Right edge.
    East,
    /// Left edge.
    West,
    /// Top right.
    NorthEast,
    /// Top left.
    NorthWest,
    /// Bottom right.
    SouthEast,
    /// Bottom left.
    SouthWest,
    /// The most detailed region (edge energy), see [`super::resize`].
    Smart,
    /// A focal point, as fractions of width and height (0–1).
    Focus(f32, f32),
}

impl Gravity {
    /// Short name (imgproxy's), or `fp:x:y`.
    pub(crate) fn name(self) -> String {
        match self {
            Gravity::Center => "ce".into(),
            Gravity::North => "no".into(),
            Gravity::South => "so".into(),
            Gravity::East => "ea".into(),
            Gravity::West => "we".into(),
            Gravity::NorthEast => "noea".into(),
            Gravity::NorthWest => "nowe".into(),
            Gravity::SouthEast => "soea".into(),
            Gravity::SouthWest => "sowe".into(),
            Gravity::Smart => "sm".into(),
            Gravity::Focus(x, y) => format!("fp:{x}:{y}"),
        }
    }

    /// Parses imgproxy's short names, their long forms, `smart`/`auto`, or `fp:x:y`.
    pub(crate) fn parse(v: &str) -> Option<Gravity> {
        Some(match v {
            "ce" | "center" | "centre" | "c" => Gravity::Center,
            "no" | "north" | "top" | "n" | "t" => Gravity::North,
            "so" | "south" | "bottom" | "s" | "b" => Gravity::South,
            "ea" | "east" | "right" | "e" | "r" => Gravity::East,
            "we" | "west" | "left" | "w" | "l" => Gravity::West,
            "noea" | "northeast" | "top-right" | "ne" => Gravity::NorthEast,
            "nowe" | "northwest" | "top-left" | "nw" => Gravity::NorthWest,
            "soea" | "southeast" | "bottom-right" | "se" => Gravity::SouthEast,
            "sowe" | "southwest" | "bottom-left" | "sw" => Gravity::SouthWest,
            "sm" | "smart" | "auto" | "entropy" | "attention" => Gravity::Smart,
            _ => {
                let rest = v.strip_prefix("fp:")?;
                let (x, y) = rest.split_once(':')?;
                let (x, y) = (x.parse::<f32>().ok()?, y.parse::<f32>().ok()?);
                if !(0.0..=1.0).contains(&x) || !(0.0..=1.0).contains(&y) {
                    return None;
                }
                Gravity::Focus(x, y)
            }
        })
    }
}
