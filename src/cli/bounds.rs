//! Value parsers for flags that size allocations or loops: every count and float read from
//! the command line is checked against a sane range before anything uses it, and clap's error
//! names the flag (`invalid value '100000000' for '--batch-size <N>': ...`).

/// A whole number in `MIN..=MAX`.
pub fn count_in<const MIN: usize, const MAX: usize>(s: &str) -> Result<usize, String> {
    let value: usize = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a whole number from {MIN} to {MAX}"))?;
    if (MIN..=MAX).contains(&value) {
        Ok(value)
    } else {
        Err(format!("{value} is out of range; expected {MIN} to {MAX}"))
    }
}

/// A finite number greater than zero (no NaN, no infinity).
pub fn positive_f32(s: &str) -> Result<f32, String> {
    match s.trim().parse::<f32>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("{s:?} is not a finite number greater than 0")),
    }
}

/// A finite number from 0 to 1.
pub fn unit_f32(s: &str) -> Result<f32, String> {
    match s.trim().parse::<f32>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!("{s:?} is not a number from 0 to 1")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_floats_outside_their_range_are_refused() {
        assert_eq!(count_in::<1, 10>("10"), Ok(10));
        assert!(count_in::<1, 10>("0").is_err());
        assert!(count_in::<1, 10>("18446744073709551615").is_err());
        assert!(count_in::<1, 10>("99999999999999999999999").is_err());
        assert!(count_in::<1, 10>("-1").is_err());
        assert_eq!(positive_f32("0.5"), Ok(0.5));
        for bad in ["0", "-1", "nan", "inf", "1e39"] {
            assert!(positive_f32(bad).is_err(), "{bad}");
        }
        assert!(unit_f32("nan").is_err());
        assert_eq!(unit_f32("0.25"), Ok(0.25));
    }
}
