//! The sha256 of a blob's first bytes, kept so that an upload can go on from the middle: a
//! digest is only ever over every byte, so resuming at byte N needs the hash state after N
//! bytes, either kept from the run that sent them or recomputed by reading them again.
//!
//! A blob whose digest is known before it is read (a copy from another registry) need not be
//! hashed here at all when the destination registry checks it on commit: its checkpoints only
//! count bytes, and an upload goes on from any byte.

use sha2::digest::common::hazmat::{SerializableState, SerializedState};
use sha2::{Digest, Sha256};

use crate::digest::{self, format_digest};

/// The hash of the first `offset` bytes of a blob (or only their count, when not hashing).
#[derive(Clone)]
pub struct Checkpoint {
    offset: u64,
    hasher: Option<Sha256>,
}

impl std::fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Checkpoint(at byte {})", self.offset)
    }
}

impl Checkpoint {
    /// Byte 0: nothing hashed yet.
    pub fn start() -> Self {
        Self {
            offset: 0,
            hasher: Some(Sha256::new()),
        }
    }

    /// Byte `offset` of a blob that is not hashed here: any byte is a point to go on from.
    pub fn unhashed(offset: u64) -> Self {
        Self {
            offset,
            hasher: None,
        }
    }

    pub fn is_hashed(&self) -> bool {
        self.hasher.is_some()
    }

    pub fn offset(&self) -> u64 {
        self.offset
    }

    pub fn update(&mut self, bytes: &[u8]) {
        if let Some(hasher) = &mut self.hasher {
            hasher.update(bytes);
        }
        self.offset += bytes.len() as u64;
    }

    /// `sha256:<hex>` of the bytes so far; `None` when they were not hashed.
    pub fn digest(self) -> Option<digest::Digest> {
        self.hasher.map(|h| format_digest(&h.finalize()))
    }

    /// The hash state as hex, for the uploads file (empty when not hashing).
    pub fn encode_state(&self) -> String {
        let Some(hasher) = &self.hasher else {
            return String::new();
        };
        hasher
            .serialize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// A checkpoint at `offset` from [`Checkpoint::encode_state`]'s output. `None` when the text
    /// is not a state, or is a state over a different number of bytes (the file was edited or
    /// mixed up): hashing from byte 0 is then the only safe way on.
    pub fn decode(offset: u64, state: &str) -> Option<Self> {
        let bytes = decode_hex(state)?;
        let serialized = SerializedState::<Sha256>::try_from(bytes.as_slice()).ok()?;
        let hasher = Sha256::deserialize(&serialized).ok()?;
        (hashed_bytes(&hasher) == offset).then_some(Self {
            offset,
            hasher: Some(hasher),
        })
    }
}

/// How many bytes a state covers, read back from it (sha2's layout: 32 bytes of state, the
/// block count as a little-endian u64, then the buffered tail's length and bytes).
fn hashed_bytes(hasher: &Sha256) -> u64 {
    let state = hasher.serialize();
    let blocks = u64::from_le_bytes(state[32..40].try_into().expect("8 bytes"));
    blocks * 64 + u64::from(state[40])
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::sha256_digest;

    #[test]
    fn a_decoded_state_goes_on_to_the_same_digest() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        for cut in [0, 1, 63, 64, 65, 4096, 9_999] {
            let mut first = Checkpoint::start();
            first.update(&data[..cut]);
            let mut resumed = Checkpoint::decode(cut as u64, &first.encode_state()).unwrap();
            resumed.update(&data[cut..]);
            assert_eq!(resumed.offset(), data.len() as u64);
            assert_eq!(
                resumed.digest().unwrap(),
                sha256_digest(&data),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn a_state_for_another_offset_or_garbage_is_refused() {
        let mut c = Checkpoint::start();
        c.update(&[7; 200]);
        let state = c.encode_state();
        assert!(Checkpoint::decode(200, &state).is_some());
        assert!(Checkpoint::decode(199, &state).is_none());
        assert!(Checkpoint::decode(200, "zz").is_none());
        assert!(Checkpoint::decode(200, &state[..state.len() - 2]).is_none());
        assert!(Checkpoint::decode(200, "").is_none());
    }

    #[test]
    fn an_unhashed_checkpoint_counts_bytes() {
        let mut c = Checkpoint::unhashed(5);
        c.update(b"abc");
        assert_eq!((c.offset(), c.encode_state().as_str()), (8, ""));
        assert_eq!(Checkpoint::unhashed(0).digest(), None);
    }
}
