//! The blob upload calls: open (or mount), send bytes, ask how far an upload got, commit.
//!
//! Each answer a registry can give is turned into a typed outcome, so the transfer layer can
//! tell a registry that disagrees about an offset (416), one that forgot the upload (404,
//! `BLOB_UPLOAD_UNKNOWN`, `BLOB_UPLOAD_INVALID`) and one that cannot be reached apart: only
//! the last is a network fault.

use bytes::Bytes;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION, WWW_AUTHENTICATE};
use reqwest::{Response, StatusCode, Url};

use super::client::{header_str, RegistryClient};
use super::error::RegistryError;
use super::range::held_bytes;

/// Retries of a commit's PUT before the transfer layer looks at what the registry holds: a
/// registry that failed a commit may have dropped the upload (Quay deletes it on any error in
/// `complete_when_uploaded`, distribution cancels it), so repeating the PUT does not help.
const COMMIT_RETRIES: u32 = 0;

/// An open upload: where to send the next bytes, and how many the registry has.
#[derive(Debug, Clone)]
pub struct UploadSession {
    pub location: Url,
    pub offset: u64,
    /// The smallest chunk (but the last) the registry takes, from `OCI-Chunk-Min-Length`
    /// (distribution spec 1.1); 0 when it did not say.
    pub min_chunk: u64,
}

impl RegistryClient {
    /// Asks the registry to link a blob from another repository. `Ok(None)`: mounted, nothing
    /// to upload. `Ok(Some(session))`: the registry could not mount it and opened an upload.
    pub async fn mount_blob(
        &self,
        digest: &str,
        from_repository: &str,
    ) -> Result<Option<UploadSession>, RegistryError> {
        let mut url = self.url("blobs/uploads/");
        url.query_pairs_mut()
            .append_pair("mount", digest)
            .append_pair("from", from_repository);
        let action = format!("mount blob {digest} from {from_repository}");
        let resp = self
            .send(&action, |http| {
                http.post(url.clone()).header(CONTENT_LENGTH, 0)
            })
            .await?;
        match resp.status() {
            StatusCode::CREATED => Ok(None),
            StatusCode::ACCEPTED => self.session_from(&action, &resp, 0).map(Some),
            status => Err(self.unexpected(&action, status, resp).await),
        }
    }

    /// Opens an upload session, where the registry places it: on its own origin or, as Quay
    /// does with its `SERVER_HOSTNAME` and a registry behind a proxy does, on another.
    pub async fn start_upload(&self) -> Result<UploadSession, RegistryError> {
        let url = self.url("blobs/uploads/");
        let action = "start blob upload";
        let resp = self
            .send(action, |http| {
                http.post(url.clone()).header(CONTENT_LENGTH, 0)
            })
            .await?;
        match resp.status() {
            StatusCode::ACCEPTED => self.session_from(action, &resp, 0),
            status => Err(self.unexpected(action, status, resp).await),
        }
    }

    /// Sends the next `len` bytes of the blob as one PATCH with a streamed body. `ranged`
    /// adds `Content-Range`: needed to go on from an offset (without it Quay writes at byte
    /// 0), refused over 4 MiB by GHCR, so a whole blob from byte 0 goes without it, as docker
    /// sends it. Not retried here: the body is consumed by the attempt.
    pub async fn upload_chunk(
        &self,
        session: &mut UploadSession,
        body: reqwest::Body,
        len: u64,
        ranged: bool,
    ) -> Result<(), RegistryError> {
        let end = session.offset + len - 1;
        let action = format!("upload bytes {}-{end}", session.offset);
        let inner = self.inner();
        let mut request = inner
            .http
            .patch(session.location.clone())
            .header(CONTENT_TYPE, "application/octet-stream")
            .header(CONTENT_LENGTH, len)
            .body(body);
        if ranged {
            request = request.header("Content-Range", format!("{}-{end}", session.offset));
        }
        let auth = inner.auth.header(&inner.http).await?;
        let request = request
            .build()
            .map_err(|source| self.unreachable(&action, source))?;
        let resp = self
            .execute_authorized(&action, request, &auth)
            .await?
            .map_err(|source| self.unreachable(&action, source))?;
        match resp.status() {
            StatusCode::ACCEPTED | StatusCode::NO_CONTENT => {
                // What the registry says it holds now is not trusted over our own count: ECR's
                // `Range` lags (aws/containers-roadmap #2831). A registry that kept less fails
                // the digest on commit, and the blob is sent again.
                session.offset = end + 1;
                if let Some(location) = self.location_in(&resp) {
                    session.location = location;
                }
                Ok(())
            }
            StatusCode::UNAUTHORIZED => {
                let challenge = header_str(resp.headers(), WWW_AUTHENTICATE);
                inner.auth.challenged(challenge.as_deref(), &auth).await;
                Err(RegistryError::TokenRejectedMidUpload {
                    registry: self.registry().into(),
                    action,
                })
            }
            status => Err(self.upload_failure(&action, status, resp).await),
        }
    }

    /// How many bytes of the upload the registry says it holds (`GET` on the upload URL, its
    /// `Range` header read as the spec means it), with the session's location brought up to
    /// date. `None`: the registry no longer knows the session (it expired, or was lost).
    pub async fn upload_offset(
        &self,
        session: &mut UploadSession,
    ) -> Result<Option<u64>, RegistryError> {
        let url = session.location.clone();
        let action = "ask how far the upload got";
        let resp = self.send(action, |http| http.get(url.clone())).await?;
        match resp.status() {
            StatusCode::NO_CONTENT | StatusCode::OK => {
                let held = header_str(resp.headers(), "Range")
                    .and_then(|r| held_bytes(&r))
                    .unwrap_or(0);
                session.offset = held;
                // Quay's answer has no Location: the one we had stays good.
                if let Some(location) = self.location_in(&resp) {
                    session.location = location;
                }
                Ok(Some(held))
            }
            // 404 is the spec's answer for an unknown session; some registries refuse a stale
            // one's state parameter with 400, or its range with 416: all mean "start again".
            StatusCode::NOT_FOUND | StatusCode::BAD_REQUEST | StatusCode::RANGE_NOT_SATISFIABLE => {
                Ok(None)
            }
            status => Err(self.unexpected(action, status, resp).await),
        }
    }

    /// Closes the upload: the registry checks the digest over all bytes received.
    pub async fn finish_upload(
        &self,
        session: &UploadSession,
        digest: &str,
    ) -> Result<(), RegistryError> {
        let mut url = session.location.clone();
        url.query_pairs_mut().append_pair("digest", digest);
        let action = format!("finish upload of {digest}");
        let resp = self
            .send_with_retries(&action, COMMIT_RETRIES, |http| {
                http.put(url.clone()).header(CONTENT_LENGTH, 0)
            })
            .await
            // Not "gave up": the caller goes on, and a later attempt may succeed.
            .map_err(|e| match e {
                RegistryError::RetriesExhausted { last, .. } => *last,
                other => other,
            })?;
        match resp.status() {
            StatusCode::CREATED | StatusCode::NO_CONTENT => Ok(()),
            status => match self.upload_failure(&action, status, resp).await {
                // The registry hashed what it received and it is not `digest` (the spec's error
                // code; a registry that only answers 400 is reported with its own words).
                error if error.has_code("DIGEST_INVALID") => Err(RegistryError::DigestRefused {
                    registry: self.registry().into(),
                    digest: digest.into(),
                }),
                other => Err(other),
            },
        }
    }

    /// Uploads a small blob held in memory (configs) in one POST + PUT.
    pub async fn upload_bytes(&self, bytes: Bytes, digest: &str) -> Result<(), RegistryError> {
        let session = self.start_upload().await?;
        let mut url = session.location.clone();
        url.query_pairs_mut().append_pair("digest", digest);
        let action = format!("upload blob {digest}");
        let resp = self
            .send(&action, |http| {
                http.put(url.clone())
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .body(bytes.clone())
            })
            .await?;
        match resp.status() {
            StatusCode::CREATED | StatusCode::NO_CONTENT => Ok(()),
            status => Err(self.unexpected(&action, status, resp).await),
        }
    }

    /// A refused upload request, typed by what it means for the upload.
    async fn upload_failure(
        &self,
        action: &str,
        status: StatusCode,
        resp: Response,
    ) -> RegistryError {
        let held = header_str(resp.headers(), "Range").and_then(|r| held_bytes(&r));
        let error = self.unexpected(action, status, resp).await;
        let forgotten = status == StatusCode::NOT_FOUND
            || (status == StatusCode::BAD_REQUEST
                && (error.has_code("BLOB_UPLOAD_UNKNOWN")
                    || error.has_code("BLOB_UPLOAD_INVALID")));
        match error {
            RegistryError::Status {
                registry,
                action,
                body,
                ..
            } if status == StatusCode::RANGE_NOT_SATISFIABLE => RegistryError::RangeRefused {
                registry,
                action,
                held,
                body,
            },
            RegistryError::Status {
                registry,
                action,
                body,
                ..
            } if forgotten => RegistryError::UploadUnknown {
                registry,
                action,
                body,
            },
            other => other,
        }
    }

    fn session_from(
        &self,
        action: &str,
        resp: &Response,
        offset: u64,
    ) -> Result<UploadSession, RegistryError> {
        let location = self
            .location_in(resp)
            .ok_or_else(|| RegistryError::Protocol {
                registry: self.registry().into(),
                action: action.into(),
                detail: "no usable Location header for the upload".into(),
            })?;
        let min_chunk = header_str(resp.headers(), "OCI-Chunk-Min-Length")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        Ok(UploadSession {
            location,
            offset,
            min_chunk,
        })
    }

    /// The answer's `Location`, resolved against the registry (it may be relative). One on
    /// another origin is followed, as docker and skopeo follow it, and remembered as where
    /// this registry places its uploads; what may be sent there is
    /// [`Authorization::value_for`](super::auth::Authorization::value_for)'s to say.
    fn location_in(&self, resp: &Response) -> Option<Url> {
        let location = header_str(resp.headers(), LOCATION)?;
        let url = self.inner().repo_url.join(&location).ok()?;
        if !self.is_own_origin(&url) {
            self.placed_uploads_on(&url);
        }
        Some(url)
    }
}
