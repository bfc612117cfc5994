//! The registry client against the real CNCF distribution registry: the calls build-push and
//! mirror rely on, and the registry's own error text reaching the user.

use bytes::Bytes;
use modelcar_shared::digest::sha256_digest;
use modelcar_shared::registry::{ConnectOptions, Reference, RegistryClient, RegistryError};
use modelcar_testkit::Registry;

async fn client(registry: &Registry, repo: &str) -> RegistryClient {
    let reference = Reference::parse(&format!("{}/{repo}:t", registry.host())).unwrap();
    RegistryClient::for_push(&reference, &[], &ConnectOptions::default())
        .await
        .unwrap()
}

#[tokio::test]
async fn blobs_go_up_in_chunks_and_come_back() {
    let registry = Registry::start();
    let c = client(&registry, "org/blobs").await;
    let data = Bytes::from(vec![7u8; 3000]);
    let digest = sha256_digest(&data);
    assert_eq!(c.blob_size(&digest).await.unwrap(), None);

    let mut session = c.start_upload().await.unwrap();
    for part in [data.slice(..1000), data.slice(1000..)] {
        let len = part.len() as u64;
        c.upload_chunk(&mut session, reqwest::Body::from(part), len, true)
            .await
            .unwrap();
    }
    assert_eq!(session.offset, 3000);
    // The registry reports how far the upload got, and the session can go on from there.
    let mut asked = session.clone();
    assert_eq!(c.upload_offset(&mut asked).await.unwrap(), Some(3000));
    c.finish_upload(&asked, &digest).await.unwrap();
    assert_eq!(c.blob_size(&digest).await.unwrap(), Some(3000));
    let back = c
        .get_blob(&digest, 0)
        .await
        .unwrap()
        .0
        .bytes()
        .await
        .unwrap();
    assert_eq!(back, data);

    // Mounted into another repository of the same registry: no bytes sent.
    let other = client(&registry, "org/other").await;
    assert!(other
        .mount_blob(&digest, "org/blobs")
        .await
        .unwrap()
        .is_none());
    assert_eq!(other.blob_size(&digest).await.unwrap(), Some(3000));
}

#[tokio::test]
async fn an_unknown_upload_session_reads_as_forgotten() {
    let registry = Registry::start();
    let c = client(&registry, "org/blobs").await;
    let mut session = c.start_upload().await.unwrap();
    assert_eq!(c.upload_offset(&mut session).await.unwrap(), Some(0));
    let mut forgotten = session.clone();
    forgotten
        .location
        .set_path("/v2/org/blobs/blobs/uploads/00000000-0000-0000-0000-000000000000");
    assert_eq!(c.upload_offset(&mut forgotten).await.unwrap(), None);
}

#[tokio::test]
async fn a_wrong_digest_is_refused_by_the_registry() {
    let registry = Registry::start();
    let c = client(&registry, "org/blobs").await;
    let mut session = c.start_upload().await.unwrap();
    c.upload_chunk(&mut session, reqwest::Body::from("abc"), 3, true)
        .await
        .unwrap();
    let err = c
        .finish_upload(&session, &sha256_digest(b"xyz"))
        .await
        .unwrap_err();
    // distribution answers 400 with the spec's DIGEST_INVALID code: mirror relies on it.
    assert!(
        matches!(&err, RegistryError::DigestRefused { digest, .. } if *digest == sha256_digest(b"xyz")),
        "{err}"
    );
}

#[tokio::test]
async fn a_rejected_manifest_shows_the_registry_error_body() {
    let registry = Registry::start();
    let c = client(&registry, "org/model").await;
    let missing = sha256_digest(b"never uploaded");
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{missing}","size":14}},"layers":[]}}"#
    );
    let err = c
        .put_manifest(
            "t",
            "application/vnd.oci.image.manifest.v1+json",
            Bytes::from(manifest),
        )
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&registry.host()) && text.contains("400"),
        "{text}"
    );
    assert!(
        text.contains("MANIFEST_BLOB_UNKNOWN"),
        "the registry's own error body is shown: {text}"
    );
}
