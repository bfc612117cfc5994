//! The HTTP client set-up every network step shares: one TLS stack (rustls on ring), the
//! system's roots plus the run's [`Trust`], a connect timeout. Callers add the timeouts their
//! traffic needs (a 50 GB upload and a REST call differ).

use std::time::Duration;

use crate::causes::ErrorCauses;
use crate::trust::Trust;

/// A client builder with the shared TLS set-up; `Err` says what is wrong with a CA file.
pub fn client_builder(user_agent: &str, trust: &Trust) -> Result<reqwest::ClientBuilder, String> {
    // One process-wide rustls provider (ring): a second install attempt is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder()
        .user_agent(user_agent)
        .connect_timeout(Duration::from_secs(30));
    let certs = trust.certificates().map_err(|e| e.causes().to_string())?;
    for cert in certs {
        builder = builder.add_root_certificate(cert);
    }
    Ok(builder)
}

/// A body longer than a reader was willing to take.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the answer is larger than {limit} bytes")]
    TooLarge { limit: u64 },
    #[error(transparent)]
    Read(#[from] reqwest::Error),
}

/// The whole body of `response`, refused past `limit` bytes: what a server sends is never
/// read into memory unbounded (a `Content-Length` over the limit is refused before a byte is
/// read).
pub async fn read_capped(
    mut response: reqwest::Response,
    limit: u64,
) -> Result<bytes::Bytes, BodyError> {
    if response.content_length().is_some_and(|n| n > limit) {
        return Err(BodyError::TooLarge { limit });
    }
    let mut body = bytes::BytesMut::new();
    while let Some(piece) = response.chunk().await? {
        if body.len() as u64 + piece.len() as u64 > limit {
            return Err(BodyError::TooLarge { limit });
        }
        body.extend_from_slice(&piece);
    }
    Ok(body.freeze())
}

/// The first `limit` bytes of the body of `response` (an error answer, shown to the user),
/// the rest left unread.
pub async fn read_prefix(mut response: reqwest::Response, limit: usize) -> bytes::Bytes {
    let mut body = bytes::BytesMut::new();
    while body.len() < limit {
        match response.chunk().await {
            Ok(Some(piece)) => {
                body.extend_from_slice(&piece[..piece.len().min(limit - body.len())])
            }
            _ => break,
        }
    }
    body.freeze()
}
