//! Durations, sizes and signals as other tools write them, in herder's forms.

use crate::manifest::model::Signal;
use crate::manifest::units::{ByteSize, Duration};

/// A Go duration as compose writes it (`1m30s`, `1.5s`, `100ms`, `2h`) in herder's form.
pub fn go_duration(text: &str) -> Option<String> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let mut nanos: f64 = 0.0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        nanos += number * factor;
    }
    if !nanos.is_finite() || !(0.0..=1e18).contains(&nanos) {
        return None;
    }
    // Whole nanoseconds; f64 is exact to well below a microsecond at these magnitudes.
    let nanos = nanos.round() as u64;
    Some(Duration(std::time::Duration::from_nanos(nanos)).to_string())
}

/// Whole seconds (process-compose) in herder's form.
pub fn seconds(secs: u64) -> String {
    Duration::from_secs(secs).to_string()
}

/// A compose byte value (`512`, `64k`, `50M`, `1.5gb`; units are powers of 1024) in
/// herder's form.
pub fn compose_bytes(text: &str) -> Option<String> {
    let lower = text.trim().to_ascii_lowercase();
    let digits = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let number: f64 = lower[..digits].parse().ok()?;
    let factor: u64 = match &lower[digits..] {
        "" | "b" => 1,
        "k" | "kb" => 1 << 10,
        "m" | "mb" => 1 << 20,
        "g" | "gb" => 1 << 30,
        _ => return None,
    };
    let bytes = number * factor as f64;
    if !bytes.is_finite() || !(0.0..1e18).contains(&bytes) {
        return None;
    }
    Some(ByteSize(bytes.round() as u64).to_string())
}

/// A signal by name (`SIGTERM`, `TERM`) or number (`15`), if herder knows it.
pub fn signal(text: &str) -> Option<Signal> {
    if let Ok(number) = text.trim().parse::<i32>() {
        return Signal::ALL.into_iter().find(|s| s.number() == number);
    }
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(go_duration("1m30s").as_deref(), Some("1m30s"));
        assert_eq!(go_duration("1.5s").as_deref(), Some("1s500ms"));
        assert_eq!(go_duration("100ms").as_deref(), Some("100ms"));
        assert_eq!(go_duration("2h").as_deref(), Some("2h"));
        assert_eq!(go_duration("10"), None);
        assert_eq!(go_duration("5x"), None);
        assert_eq!(seconds(90), "1m30s");
    }

    #[test]
    fn sizes_and_signals() {
        assert_eq!(compose_bytes("50M").as_deref(), Some("50Mi"));
        assert_eq!(compose_bytes("1.5gb").as_deref(), Some("1536Mi"));
        assert_eq!(compose_bytes("512").as_deref(), Some("512"));
        assert_eq!(compose_bytes("3 apples"), None);
        assert_eq!(signal("15"), Some(Signal::Sigterm));
        assert_eq!(signal("SIGINT"), Some(Signal::Sigint));
        assert_eq!(signal("quit"), Some(Signal::Sigquit));
        assert_eq!(signal("SIGRTMIN"), None);
    }
}
