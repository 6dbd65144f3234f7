//! What the pictures evaluation and training draw share (plotters' SVG backend): the font
//! list of their text and the shortening of long labels.

/// Font families of a picture's text, CJK first: labels and titles are often Chinese.
pub const CJK_FONTS: &str =
    "Noto Sans CJK SC, Source Han Sans SC, PingFang SC, Microsoft YaHei, sans-serif";

/// A label cut to 12 characters (the last an ellipsis) for an axis or a cell.
pub fn short(label: &str) -> String {
    if label.chars().count() > 12 {
        format!("{}…", label.chars().take(11).collect::<String>())
    } else {
        label.to_string()
    }
}
