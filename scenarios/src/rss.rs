//! Resident memory of this process, from `/proc/self/status` (Linux; elsewhere nothing).
//!
//! A live engine run reports its peak and final resident set size: the peak is reset before
//! the run (writing `5` to `/proc/self/clear_refs`) so each run's peak is its own, not an
//! earlier run's. Flat memory over a long run shows as a final RSS close to the peak.

/// The peak (`VmHWM`) and current (`VmRSS`) resident set size, bytes.
pub fn resident() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l[name.len()..].trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
    };
    Some((field("VmHWM:")?, field("VmRSS:")?))
}

/// Resets the peak resident set size to the current one (where the kernel allows).
pub fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_os = "linux")]
    fn reads_peak_and_current_resident_memory_on_linux() {
        let (peak, now) = resident().expect("/proc/self/status has VmHWM and VmRSS");
        assert!(peak >= now && now > 0, "{peak} {now}");
    }
}
