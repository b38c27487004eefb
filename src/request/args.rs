//! Argument parsing shared by the query options, the imgproxy path grammar and the step
//! options: every bad value is an [`OptionError`] naming the option as written.

use super::options::OptionError;

/// An error for option `param`.
pub(super) fn err(param: &str, message: impl Into<String>) -> OptionError {
    OptionError {
        param: param.to_string(),
        message: message.into(),
    }
}

/// A whole number from `lo` to `hi`.
pub(super) fn int(param: &str, v: &str, lo: i64, hi: i64) -> Result<i64, OptionError> {
    match v.parse::<i64>() {
        Ok(n) if (lo..=hi).contains(&n) => Ok(n),
        _ => Err(err(
            param,
            format!("`{v}` must be a whole number from {lo} to {hi}"),
        )),
    }
}

/// A finite number from `lo` to `hi`.
pub(super) fn float(param: &str, v: &str, lo: f32, hi: f32) -> Result<f32, OptionError> {
    match v.parse::<f32>() {
        Ok(n) if n.is_finite() && (lo..=hi).contains(&n) => Ok(n),
        _ => Err(err(
            param,
            format!("`{v}` must be a number from {lo} to {hi}"),
        )),
    }
}

/// `1`/`true`/`t` or `0`/`false`/`f`; with `empty_is_false`, an empty value is `false`
/// (imgproxy's arguments).
pub(super) fn flag(param: &str, v: &str, empty_is_false: bool) -> Result<bool, OptionError> {
    match v {
        "1" | "true" | "t" => Ok(true),
        "0" | "false" | "f" => Ok(false),
        "" if empty_is_false => Ok(false),
        _ => Err(err(param, format!("`{v}` must be 1/0, t/f or true/false"))),
    }
}
