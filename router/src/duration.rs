//! Durations as operators write them: "100ms", "90s", "15m", "24h", "7d".

use std::time::Duration;

/// Parses a number with an optional unit (ms, s, m, h or d; seconds
/// without).
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = text
        .find(|c: char| !c.is_ascii_digit())
        .map_or((text, ""), |at| text.split_at(at));
    let number: u64 = number.parse().map_err(|_| {
        format!("expected a duration such as 100ms, 90s, 15m, 24h or 7d, found \"{text}\"")
    })?;
    let unit_ms = match unit {
        "ms" => 1,
        "" | "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => {
            return Err(format!(
                "unknown unit \"{unit}\" in \"{text}\": use ms, s, m, h or d"
            ));
        }
    };
    Ok(Duration::from_millis(number.saturating_mul(unit_ms)))
}

#[cfg(test)]
mod tests {
    use super::parse;
    use std::time::Duration;

    #[test]
    fn durations_parse() {
        assert_eq!(parse("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("45"), Ok(Duration::from_secs(45)));
        assert_eq!(parse("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse("100ms"), Ok(Duration::from_millis(100)));
        assert!(parse("2 weeks").is_err());
        assert!(parse("h").is_err());
    }
}
