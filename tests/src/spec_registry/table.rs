//! The registry's table of open uploads, shared by every connection and kept across a
//! restart (the bytes are in files beside it).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sha2::Sha256;

/// One upload's record (the bytes are in a file beside it).
#[derive(Clone)]
pub(super) struct Upload {
    /// What the registry's record says it holds.
    pub(super) count: u64,
    /// Quay's stored sha256 state: the bytes it hashed, in the order it took them.
    pub(super) sha: Sha256,
    /// Artifactory HA: the node whose disk holds the bytes.
    pub(super) node: Option<u64>,
    /// ECR: where its `Range` answers stay (the end of the first part).
    pub(super) first_part_end: Option<u64>,
    /// ECR: a part under 5 MiB came before another part.
    pub(super) small_part: bool,
    /// ECR: the size of the last part stored.
    pub(super) last_part: Option<u64>,
    pub(super) patches: u32,
}

pub(super) type Table = Arc<Mutex<HashMap<String, Upload>>>;
