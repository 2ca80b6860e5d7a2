//! Durations as operators write them: "90s", "15m", "24h", "7d".

use std::time::Duration;

/// Parses a number with an optional unit (s, m, h or d; seconds without).
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = text
        .find(|c: char| !c.is_ascii_digit())
        .map_or((text, ""), |at| text.split_at(at));
    let number: u64 = number.parse().map_err(|_| {
        format!("expected a duration such as 90s, 15m, 24h or 7d, found \"{text}\"")
    })?;
    let unit_secs = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => {
            return Err(format!(
                "unknown unit \"{unit}\" in \"{text}\": use s, m, h or d"
            ));
        }
    };
    Ok(Duration::from_secs(number.saturating_mul(unit_secs)))
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
        assert!(parse("2 weeks").is_err());
        assert!(parse("h").is_err());
    }
}
