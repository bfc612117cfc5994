//! The upload method a destination is given, driven straight through `send_blob` against each
//! registry personality (see the testkit's `spec_registry::personality` for where each one's
//! rules come from): chunks where the registry takes them, and the fall-back to one request
//! per blob, for the rest of the run, where it refuses ranged requests.

use bytes::Bytes;
use modelcar_shared::digest::sha256_digest;
use modelcar_shared::oci::Descriptor;
use modelcar_shared::progress::Progress;
use modelcar_shared::registry::{ConnectOptions, Reference, RegistryClient};
use modelcar_shared::transfer::{
    send_blob, Blob, Destination, DigestCheck, RemoteBlob, Sending, UploadLog, UploadMethod,
};
use modelcar_testkit::spec_registry::{Personality, SpecRegistry};
use modelcar_testkit::Registry;

/// Over GHCR's 4 MiB cap on a ranged request and ECR's 5 MiB floor on a part.
const CHUNK: u64 = 6 << 20;

async fn client(host: &str, repo: &str) -> RegistryClient {
    let reference = Reference::parse(&format!("{host}/{repo}:t")).unwrap();
    RegistryClient::for_push(&reference, &[], &ConnectOptions::default())
        .await
        .unwrap()
}

/// Bytes no registry could guess or compress away: three chunks and a bit.
fn blob_bytes() -> Bytes {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let bytes: Vec<u8> = (0..(3 * CHUNK + 12345))
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    Bytes::from(bytes)
}

/// The method `personality`'s destination is left with after a chunked upload of one blob,
/// which must have arrived whole.
async fn method_after_one_blob(personality: Personality, source: &RegistryClient) -> UploadMethod {
    let data = blob_bytes();
    let digest = sha256_digest(&data);
    source
        .upload_bytes(data.clone(), &digest)
        .await
        .expect("the source takes the blob");
    let descriptor = Descriptor::new(
        "application/octet-stream",
        digest.clone(),
        data.len() as u64,
    );
    let registry = SpecRegistry::start_as(personality);
    let dest = Destination::registry(
        client(&registry.host(), "org/model").await,
        UploadMethod::Chunked(CHUNK),
    );
    let producer = RemoteBlob {
        client: source,
        descriptor: &descriptor,
        check: DigestCheck::Destination,
    };
    let progress = Progress::new("upload plan", data.len() as u64);
    let blob = Blob {
        producer: &producer,
        digest: Some(&digest),
        mount_from: None,
    };
    let how = Sending {
        uploads: &UploadLog::disabled(),
        progress: &progress,
    };
    send_blob(&[&dest], blob, how)
        .await
        .unwrap_or_else(|e| panic!("{personality:?} did not take the blob: {e}"));
    assert!(
        dest.has_blob(&digest).await.unwrap(),
        "{personality:?} holds the blob"
    );
    dest.method()
}

#[tokio::test]
async fn each_registry_keeps_chunks_or_falls_back_to_one_request_per_blob() {
    let source_registry = Registry::start();
    let source = client(&source_registry.host(), "org/source").await;
    let chunked = UploadMethod::Chunked(CHUNK);
    let expected = [
        (Personality::Distribution3, chunked),
        (Personality::Quay, chunked),
        // A ranged PATCH over 4 MiB gets 416 "the request body is too large".
        (Personality::Ghcr, UploadMethod::Streamed),
        // Takes no ranged PATCH at all.
        (Personality::ArtifactRegistry, UploadMethod::Streamed),
        (Personality::Ecr, chunked),
        // Chunks reach a node that never saw the upload, fresh upload or not.
        (Personality::ArtifactoryHa, UploadMethod::Streamed),
    ];
    let mut seen = Vec::new();
    for (personality, _) in expected {
        seen.push((
            personality,
            method_after_one_blob(personality, &source).await,
        ));
    }
    assert_eq!(seen, expected);
}
