//! Raw latency exports in HdrHistogram's percentile-distribution text format (`.hgrm`).
//!
//! The format is the one Java's `AbstractHistogram.outputPercentileDistribution` prints (and
//! HdrHistogram_c's `hdr_percentiles_print` in its classic mode), because HdrHistogram's
//! plotter tools consume it: a header, one row per percentile tick (five ticks per half
//! distance to 100%), and a footer with mean, standard deviation, max, count and the
//! histogram's geometry. Rows are produced by [`Histogram::iter_quantiles`], which walks the
//! same percentile ladder as Java's `PercentileIterator`.
//!
//! Numbers are formatted as Java's `Formatter` does: the shortest decimal that round-trips
//! the `f64`, rounded half-up to the printed precision. The value column has as many decimals
//! as the histogram has significant digits (3 for the usual histogram), as in Java.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use hdrhistogram::Histogram;

use crate::error::{Error, Result};

/// Percentile ticks per half distance to 100%, as HdrHistogram's own tools use by default.
pub const TICKS_PER_HALF_DISTANCE: u32 = 5;

/// Writes `hist`'s percentile distribution in HdrHistogram's text format.
///
/// Values (which this project records in nanoseconds) are divided by `value_unit_ratio`
/// before printing: pass [`crate::NANOS_PER_MILLI`] to print milliseconds.
///
/// # Examples
///
/// ```
/// use hdrhistogram::Histogram;
/// let mut hist = Histogram::<u64>::new(3).unwrap();
/// hist.record(1_500_000).unwrap(); // 1.5 ms
/// let mut out = Vec::new();
/// streamlab_reports::hgrm::write_percentile_distribution(&hist, 1e6, &mut out).unwrap();
/// let text = String::from_utf8(out).unwrap();
/// assert!(text.starts_with("       Value     Percentile TotalCount 1/(1-Percentile)\n\n"));
/// assert!(text.contains("#[Max     =        1.500, Total count    =            1]"));
/// ```
pub fn write_percentile_distribution(
    hist: &Histogram<u64>,
    value_unit_ratio: f64,
    out: &mut impl Write,
) -> io::Result<()> {
    let decimals = usize::from(hist.sigfig());
    writeln!(
        out,
        "{:>12} {:>14} {:>10} {:>14}\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    )?;

    let mut total_count: u64 = 0;
    for step in hist.iter_quantiles(TICKS_PER_HALF_DISTANCE) {
        total_count += step.count_since_last_iteration();
        let value = java_fixed(step.value_iterated_to() as f64 / value_unit_ratio, decimals);
        let quantile = step.quantile_iterated_to();
        if quantile < 1.0 {
            let inverse = java_fixed(1.0 / (1.0 - quantile), 2);
            writeln!(
                out,
                "{value:>12} {:>2} {total_count:>10} {inverse:>14}",
                java_fixed(quantile, 12)
            )?;
        } else {
            writeln!(out, "{value:>12} {:>2} {total_count:>10}", java_fixed(quantile, 12))?;
        }
    }

    writeln!(
        out,
        "#[Mean    = {:>12}, StdDeviation   = {:>12}]",
        java_fixed(hist.mean() / value_unit_ratio, decimals),
        java_fixed(hist.stdev() / value_unit_ratio, decimals)
    )?;
    writeln!(
        out,
        "#[Max     = {:>12}, Total count    = {:>12}]",
        java_fixed(hist.max() as f64 / value_unit_ratio, decimals),
        hist.len()
    )?;
    writeln!(
        out,
        "#[Buckets = {:>12}, SubBuckets     = {:>12}]",
        hist.buckets(),
        sub_bucket_count(hist.sigfig())
    )
}

/// Writes `hist`'s percentile distribution to the file at `path` (see
/// [`write_percentile_distribution`]).
pub fn write_hgrm_file(path: &Path, hist: &Histogram<u64>, value_unit_ratio: f64) -> Result<()> {
    let io_error = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut out = BufWriter::new(File::create(path).map_err(io_error)?);
    write_percentile_distribution(hist, value_unit_ratio, &mut out).map_err(io_error)?;
    out.flush().map_err(io_error)
}

/// The number of sub-buckets per bucket of a histogram with `sigfig` significant digits,
/// computed as HdrHistogram does (the `hdrhistogram` crate does not expose it).
fn sub_bucket_count(sigfig: u8) -> u64 {
    let largest_single_unit = 2.0 * 10f64.powi(i32::from(sigfig));
    let magnitude = largest_single_unit.log2().ceil() as u32;
    1 << magnitude
}

/// Formats `x` as Java's `String.format("%.{decimals}f", x)` does: Java rounds the shortest
/// round-trip decimal representation half-up (so `0.0625` prints as `0.063` where C would
/// print `0.062`).
fn java_fixed(x: f64, decimals: usize) -> String {
    if !x.is_finite() {
        return if x.is_nan() {
            "NaN".to_string()
        } else if x > 0.0 {
            "Infinity".to_string()
        } else {
            "-Infinity".to_string()
        };
    }
    // `Display` for f64 prints the shortest round-trip digits, never in exponent form.
    let shortest = format!("{}", x.abs());
    let (int_part, frac_part) = shortest.split_once('.').unwrap_or((&shortest, ""));
    let mut digits: Vec<u8> = int_part.bytes().map(|b| b - b'0').collect();
    let frac: Vec<u8> = frac_part.bytes().map(|b| b - b'0').collect();
    digits.extend((0..decimals).map(|i| frac.get(i).copied().unwrap_or(0)));
    if frac.get(decimals).is_some_and(|&d| d >= 5) {
        // Propagate the carry from the last kept digit.
        let mut i = digits.len();
        loop {
            if i == 0 {
                digits.insert(0, 1);
                break;
            }
            i -= 1;
            if digits[i] == 9 {
                digits[i] = 0;
            } else {
                digits[i] += 1;
                break;
            }
        }
    }
    let int_len = digits.len() - decimals;
    let mut text = String::with_capacity(digits.len() + 2);
    if x.is_sign_negative() && digits.iter().any(|&d| d != 0) {
        text.push('-');
    }
    for (i, d) in digits.iter().enumerate() {
        if i == int_len {
            text.push('.');
        }
        text.push(char::from(b'0' + d));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(hist: &Histogram<u64>) -> String {
        let mut out = Vec::new();
        write_percentile_distribution(hist, crate::NANOS_PER_MILLI, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// A parsed `.hgrm` file, read the way HdrHistogram's plotter reads it.
    struct Parsed {
        rows: Vec<(f64, f64, u64, Option<f64>)>,
        max: f64,
        total_count: u64,
    }

    fn footer_numbers(line: &str) -> (String, String) {
        let inner = line.trim_start_matches("#[").trim_end_matches(']');
        let (first, second) = inner.split_once(',').unwrap();
        let number = |s: &str| s.split_once('=').unwrap().1.trim().to_string();
        (number(first), number(second))
    }

    fn parse(text: &str) -> Parsed {
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some("       Value     Percentile TotalCount 1/(1-Percentile)")
        );
        assert_eq!(lines.next(), Some(""));
        let mut parsed = Parsed {
            rows: Vec::new(),
            max: f64::NAN,
            total_count: u64::MAX,
        };
        for line in lines {
            if line.starts_with("#[Max") {
                let (max, count) = footer_numbers(line);
                parsed.max = max.parse().unwrap();
                parsed.total_count = count.parse().unwrap();
            } else if !line.starts_with('#') {
                let fields: Vec<&str> = line.split_whitespace().collect();
                parsed.rows.push((
                    fields[0].parse().unwrap(),
                    fields[1].parse().unwrap(),
                    fields[2].parse().unwrap(),
                    fields.get(3).map(|f| f.parse().unwrap()),
                ));
            }
        }
        parsed
    }

    #[test]
    fn output_parses_back_to_the_histograms_max_and_count() {
        let mut hist = Histogram::<u64>::new(3).unwrap();
        for ms in 1..=1000u64 {
            hist.record(ms * 1_000_000).unwrap();
        }
        let text = render(&hist);
        let parsed = parse(&text);

        assert_eq!(parsed.total_count, 1000);
        assert!((parsed.max - 1000.0).abs() < 1.0, "max {}", parsed.max);
        assert!(text.contains("#[Buckets =           20, SubBuckets     =         2048]"));

        let last = parsed.rows.last().unwrap();
        assert_eq!(last.1, 1.0);
        assert_eq!(last.2, 1000);
        assert_eq!(last.3, None, "the 100% row has no 1/(1-p) column");
        let first = parsed.rows[0];
        assert_eq!((first.0, first.1, first.2), (1.0, 0.0, 1));
        let median = parsed.rows.iter().find(|r| r.1 == 0.5).unwrap();
        assert!((median.0 - 500.0).abs() < 1.0);
        assert_eq!(median.3, Some(2.0));
        // Cumulative counts never decrease, percentiles strictly increase.
        assert!(parsed.rows.windows(2).all(|w| w[0].2 <= w[1].2 && w[0].1 < w[1].1));
    }

    #[test]
    fn rows_use_javas_column_widths() {
        let mut hist = Histogram::<u64>::new(3).unwrap();
        hist.record(1_000_000).unwrap();
        let text = render(&hist);
        let rows: Vec<&str> = text.lines().skip(2).take(2).collect();
        assert_eq!(
            rows,
            [
                "       1.000 0.000000000000          1           1.00",
                "       1.000 1.000000000000          1",
            ]
        );
    }

    #[test]
    fn empty_histogram_has_header_and_zero_footer_only() {
        let hist = Histogram::<u64>::new(3).unwrap();
        assert_eq!(
            render(&hist),
            "       Value     Percentile TotalCount 1/(1-Percentile)\n\n\
             #[Mean    =        0.000, StdDeviation   =        0.000]\n\
             #[Max     =        0.000, Total count    =            0]\n\
             #[Buckets =            1, SubBuckets     =         2048]\n"
        );
    }

    #[test]
    fn numbers_round_half_up_like_java() {
        assert_eq!(java_fixed(0.0625, 3), "0.063");
        assert_eq!(java_fixed(0.15, 1), "0.2");
        assert_eq!(java_fixed(9.9996, 3), "10.000");
        assert_eq!(java_fixed(999.9996, 3), "1000.000");
        assert_eq!(java_fixed(0.0, 3), "0.000");
        assert_eq!(java_fixed(12.0, 2), "12.00");
        assert_eq!(java_fixed(0.999877929688, 12), "0.999877929688");
        assert_eq!(java_fixed(1e-7, 3), "0.000");
        assert_eq!(java_fixed(1.5e20, 1), "150000000000000000000.0");
    }
}
