//! Parsers of flag values every binary shares: sizes, `KEY=VALUE` pairs, secrets from files.

use super::exit::UsageError;

/// Parses a `KEY=VALUE` flag value (`--label`, `--annotation`, `--property`); the value may
/// contain `=`.
pub fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.into(), v.into())),
        _ => Err(format!("{s:?} is not KEY=VALUE")),
    }
}

/// A secret given as a file (`--creds-file`): its content, without the trailing newline.
/// Secrets come from files or env vars: a flag's value is in `/proc/PID/cmdline`, which every
/// process on the node can read.
pub fn read_secret_file(path: &std::path::Path, flag: &str) -> Result<String, UsageError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| UsageError(format!("{flag} {}: {e}", path.display())))?;
    let secret = text.trim_end_matches(['\n', '\r']);
    if secret.is_empty() {
        return Err(UsageError(format!("{flag} {} is empty", path.display())));
    }
    Ok(secret.to_string())
}

/// `123`, `16MiB`, `16M`, `1GiB`, `1.5G`: binary units, a bare number is bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a size such as 16MiB or 1073741824"))?;
    let shift = match unit
        .trim()
        .to_ascii_lowercase()
        .trim_end_matches('b')
        .trim_end_matches('i')
    {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        _ => {
            return Err(format!(
                "{s:?}: unknown unit {unit:?} (use K, M, G, T, with or without iB)"
            ))
        }
    };
    Ok((number * (1u64 << shift) as f64) as u64)
}

#[cfg(test)]
mod tests {
    #[test]
    fn key_values() {
        assert_eq!(
            super::parse_key_value("a=b=c").unwrap(),
            ("a".into(), "b=c".into())
        );
        assert!(super::parse_key_value("=x").is_err());
        assert!(super::parse_key_value("novalue").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(super::parse_size("16MiB").unwrap(), 16 << 20);
        assert_eq!(super::parse_size("16M").unwrap(), 16 << 20);
        assert_eq!(super::parse_size("1g").unwrap(), 1 << 30);
        assert_eq!(super::parse_size("4096").unwrap(), 4096);
        assert_eq!(super::parse_size("1.5KiB").unwrap(), 1536);
        assert!(super::parse_size("lots").is_err());
        assert!(super::parse_size("5X").is_err());
    }
}
