//! The `pattern`s of KServe's CRDs checked without a regex engine.

/// Checks a string against one `pattern` without a regex engine.
pub(super) type Matcher = fn(&str) -> bool;

/// The patterns of KServe's CRDs worth checking (resource.Quantity's is on every value of
/// requests and limits; the others on a few names and paths), each with what a match is.
pub(super) const PATTERNS: [(&str, &str, Matcher); 4] = [
    (QUANTITY, "a quantity such as 1, 500m or 96Gi", is_quantity),
    ("^/.*", "an absolute path", |s| s.starts_with('/')),
    ("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "a DNS-1123 label", |s| {
        is_label(s, false)
    }),
    ("^[a-z]([-a-z0-9]*[a-z0-9])?$", "a DNS-1035 label", |s| {
        is_label(s, true)
    }),
];

const QUANTITY: &str = r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$";
const QUANTITY_SUFFIXES: [&str; 16] = [
    "", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "n", "u", "m", "k", "M", "G", "T", "P", "E",
];

/// A sign, a decimal, then a binary (Ki..Ei) or decimal (n..E) suffix or an exponent.
pub(super) fn is_quantity(s: &str) -> bool {
    let exponent = |e| decimal(unsigned(e)) == Some("");
    let suffix_ok =
        |s| QUANTITY_SUFFIXES.contains(&s) || s.strip_prefix(['e', 'E']).is_some_and(exponent);
    decimal(unsigned(s)).is_some_and(suffix_ok)
}

fn unsigned(s: &str) -> &str {
    s.strip_prefix(['+', '-']).unwrap_or(s)
}

/// Strips `[0-9]+(\.[0-9]*)?|\.[0-9]+` from the front of `s`; None if `s` does not start with one.
fn decimal(s: &str) -> Option<&str> {
    let digits = |s: &str| s.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let after_int = &s[s.len() - digits(s)..];
    match after_int.strip_prefix('.') {
        Some(fraction) => {
            let rest = &fraction[fraction.len() - digits(fraction)..];
            (after_int.len() < s.len() || rest.len() < fraction.len()).then_some(rest)
        }
        None => (after_int.len() < s.len()).then_some(after_int),
    }
}

/// Lower-case letters, digits and '-', starting and ending alphanumeric (DNS-1035: starting
/// with a letter).
fn is_label(s: &str, letter_first: bool) -> bool {
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    s.starts_with(|c: char| allowed(c) && !(letter_first && c.is_ascii_digit()))
        && s.ends_with(allowed)
        && s.chars().all(|c| allowed(c) || c == '-')
}
