//! The sha256 of a blob's first bytes, kept so that an upload can go on from the middle: a
//! digest is only ever over every byte, so resuming at byte N needs the hash state after N
//! bytes, either kept from the run that sent them or recomputed by reading them again.

use sha2::digest::common::hazmat::{SerializableState, SerializedState};
use sha2::{Digest, Sha256};

use crate::digest::format_digest;

/// The hash of the first `offset` bytes of a blob.
#[derive(Clone)]
pub struct Checkpoint {
    offset: u64,
    hasher: Sha256,
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
            hasher: Sha256::new(),
        }
    }

    pub fn offset(&self) -> u64 {
        self.offset
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.hasher.update(bytes);
        self.offset += bytes.len() as u64;
    }

    /// `sha256:<hex>` of the bytes so far.
    pub fn digest(self) -> String {
        format_digest(&self.hasher.finalize())
    }

    /// The hash state as hex, for the uploads file.
    pub fn encode_state(&self) -> String {
        self.hasher
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
        let checkpoint = Self { offset, hasher };
        (checkpoint.hashed_bytes() == offset).then_some(checkpoint)
    }

    /// How many bytes the state covers, read back from it (sha2's layout: 32 bytes of state,
    /// the block count as a little-endian u64, then the buffered tail's length and bytes).
    fn hashed_bytes(&self) -> u64 {
        let state = self.hasher.serialize();
        let blocks = u64::from_le_bytes(state[32..40].try_into().expect("8 bytes"));
        blocks * 64 + u64::from(state[40])
    }
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
            assert_eq!(resumed.digest(), sha256_digest(&data), "cut at {cut}");
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
    }
}
