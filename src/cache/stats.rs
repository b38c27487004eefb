//! The usage figures `/cache/stats` serves and the sweeper publishes as gauges.

/// Usage figures for `/cache/stats` and gauges.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Entries in memory.
    pub memory_entries: u64,
    /// Bytes in memory (weighted).
    pub memory_bytes: u64,
    /// The memory limit.
    pub memory_max_bytes: u64,
    /// Whether the disk tier is on.
    pub disk_enabled: bool,
    /// Files on disk.
    pub disk_entries: u64,
    /// Bytes on disk.
    pub disk_bytes: u64,
    /// The disk limit.
    pub disk_max_bytes: u64,
    /// Age in seconds of the oldest entry in either tier.
    pub oldest_age_seconds: Option<u64>,
    /// AVIF encodes running in the background.
    pub background: u64,
}

impl Stats {
    /// The JSON served at `/cache/stats`.
    pub fn to_json(&self) -> String {
        let oldest = self
            .oldest_age_seconds
            .map_or("null".to_string(), |a| a.to_string());
        format!(
            "{{\"memory\":{{\"entries\":{},\"bytes\":{},\"max_bytes\":{}}},\"disk\":{{\"enabled\":{},\"entries\":{},\"bytes\":{},\"max_bytes\":{}}},\"oldest_entry_age_seconds\":{},\"background_encodes\":{}}}",
            self.memory_entries,
            self.memory_bytes,
            self.memory_max_bytes,
            self.disk_enabled,
            self.disk_entries,
            self.disk_bytes,
            self.disk_max_bytes,
            oldest,
            self.background
        )
    }
}
