//! Model directories for tests: HF-like files plus the awkward cases build-push must carry
//! (spaces, unicode, nesting, an empty file, symlinks inside the model).

use std::fs;
use std::io::Write;
use std::os::unix::fs::symlink;
use std::path::Path;

/// Writes `len` pseudo-random bytes (incompressible, reproducible from `seed`).
pub fn write_random(path: &Path, len: u64, seed: u64) {
    let mut file = fs::File::create(path).expect("create model file");
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        for chunk in buf.chunks_mut(8) {
            // xorshift64*: fast, and enough to defeat compression.
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let v = state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        let n = left.min(buf.len() as u64) as usize;
        file.write_all(&buf[..n]).expect("write model file");
        left -= n as u64;
    }
}

/// A model with `shards` weight files of `shard_bytes` each, and every awkward case.
pub fn write_model(dir: &Path, shards: u32, shard_bytes: u64) {
    fs::create_dir_all(dir.join("dir with space/nested/deeper")).expect("mkdir");
    fs::create_dir_all(dir.join("empty-dir")).expect("mkdir");
    for i in 1..=shards {
        let name = format!("model-{i:05}-of-{shards:05}.safetensors");
        write_random(&dir.join(name), shard_bytes, u64::from(i));
    }
    fs::write(
        dir.join("config.json"),
        br#"{"architectures":["MistralForCausalLM"]}"#,
    )
    .expect("write");
    write_random(&dir.join("tokenizer.json"), 300_000, 99);
    fs::write(dir.join("dir with space/ünïcödé ✓.txt"), "unicode\n").expect("write");
    write_random(
        &dir.join("dir with space/nested/deeper/deep.bin"),
        70_000,
        7,
    );
    fs::write(dir.join("empty.txt"), b"").expect("write");
    symlink("config.json", dir.join("link.json")).expect("symlink");
    symlink(
        "../../config.json",
        dir.join("dir with space/nested/up.json"),
    )
    .expect("symlink");
}

/// A model of one generated weights file of `len` bytes and a small config, written only if
/// `dir` does not hold it already (big ones are kept between test runs, in cargo's temp dir).
pub fn one_file_model(dir: &Path, len: u64) {
    let weights = dir.join("model.safetensors");
    if fs::metadata(&weights).map(|m| m.len()).ok() == Some(len) {
        return;
    }
    fs::create_dir_all(dir).expect("mkdir");
    write_random(&weights, len, 7);
    fs::write(dir.join("config.json"), br#"{"architectures":["X"]}"#).expect("write");
}
