//! The `Range` header registries put on upload answers, in every form they send it.
//!
//! The distribution spec says `Range: 0-<last byte index>`, and `0-0` for an upload holding
//! nothing. Registries differ: distribution writes `0-N`; Quay (`endpoints/v2/blob.py`,
//! `_render_range`) writes `bytes=0-<count>` on POST and GET (`bytes=0--1` for a new upload),
//! `0-<count-1>` on PATCH, and `0-<count>` on a 416; ECR's `Range` can lag behind what it
//! stored (aws/containers-roadmap #2831). So a `Range` is only a claim: the offset the
//! registry takes in the next request is the truth (see `transfer::lane`'s negotiation).

/// The number of bytes an upload holds by `value` (`0-N` holds N+1 bytes; `0-0`, `0--1` and
/// an empty range hold none). The one registry that writes `bytes=` here is Quay, and in that
/// form (its POST and GET) N is the count itself, so it is read as such. `None`: not a range.
pub fn held_bytes(value: &str) -> Option<u64> {
    let value = value.trim();
    let counts = value.starts_with("bytes=");
    let value = value
        .strip_prefix("bytes=")
        .or_else(|| value.strip_prefix("bytes "))
        .unwrap_or(value)
        .trim();
    let (start, end) = value.split_once('-')?;
    if start.trim().parse::<u64>().ok()? != 0 {
        return None;
    }
    // `0--1`: Quay's empty upload; anything negative holds nothing.
    let end = end.trim();
    if let Some(negative) = end.strip_prefix('-') {
        return negative.parse::<u64>().ok().map(|_| 0);
    }
    // A length after a slash (`0-99/100`) is ignored: the range says what is held.
    let end = end.split('/').next()?.trim().parse::<u64>().ok()?;
    Some(if end == 0 || counts { end } else { end + 1 })
}

#[cfg(test)]
mod tests {
    use super::held_bytes;

    #[test]
    fn every_form_registries_send() {
        assert_eq!(held_bytes("0-99"), Some(100)); // distribution, the spec
        assert_eq!(held_bytes("bytes=0-99"), Some(99)); // Quay's GET: the count itself
        assert_eq!(held_bytes("bytes 0-99"), Some(100));
        assert_eq!(held_bytes(" 0-99 "), Some(100));
        assert_eq!(held_bytes("0-99/100"), Some(100));
        assert_eq!(held_bytes("0-0"), Some(0)); // an empty upload, as distribution says it
        assert_eq!(held_bytes("bytes=0--1"), Some(0)); // Quay's new upload
        assert_eq!(held_bytes("bytes=0-0"), Some(0));
    }

    #[test]
    fn anything_else_is_no_range() {
        for bad in ["", "-", "5-99", "0-x", "bytes=", "x-1", "0-1-2"] {
            assert_eq!(held_bytes(bad), None, "{bad:?}");
        }
    }
}
