//! A client for one repository of an OCI distribution registry: the calls build-push and mirror
//! need, with authentication, retries of transient failures, and errors that name the registry.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{
    HeaderMap, ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, LOCATION, WWW_AUTHENTICATE,
};
use reqwest::{RequestBuilder, Response, StatusCode, Url};

use super::auth::Auth;
use super::credentials::CredentialSource;
use super::error::RegistryError;
use super::reference::Reference;

/// Pause before the first retry of a transient failure; it doubles with each retry.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// Retries by default: 6 retries wait 31.5 s in all, enough for a registry pod to restart.
pub const DEFAULT_RETRIES: u32 = 6;

/// How to reach a registry.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub credentials: CredentialSource,
    /// Plain HTTP; `None`: only for localhost, as docker and podman do.
    pub plain_http: Option<bool>,
    /// Extra PEM roots trusted beside the system's.
    pub ca_file: Option<PathBuf>,
    /// Skip TLS verification. Only when asked.
    pub insecure: bool,
    /// Retries of a request that failed in a way that may pass (connection, 5xx, 429).
    pub retries: u32,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            credentials: CredentialSource::default(),
            plain_http: None,
            ca_file: None,
            insecure: false,
            retries: DEFAULT_RETRIES,
        }
    }
}

/// An open upload: where to send the next bytes, and how many the registry has.
#[derive(Debug, Clone)]
pub struct UploadSession {
    pub location: Url,
    pub offset: u64,
    /// The smallest chunk (but the last) the registry takes, from `OCI-Chunk-Min-Length`
    /// (distribution spec 1.1); 0 when it did not say.
    pub min_chunk: u64,
}

/// A manifest as the registry stored it: its exact bytes are what the digest is over.
#[derive(Debug, Clone)]
pub struct RawManifest {
    pub media_type: String,
    pub bytes: Bytes,
    pub digest: String,
}

#[derive(Debug, Clone)]
pub struct RegistryClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    reference: Reference,
    /// `http(s)://host/v2/<repository>/`
    repo_url: Url,
    auth: Auth,
    retries: u32,
}

impl RegistryClient {
    /// A client for `reference`'s repository, with push and pull rights, plus pull rights on
    /// `mount_from` repositories of the same registry (for cross-repository blob mounts).
    pub fn for_push(
        reference: &Reference,
        mount_from: &[String],
        opts: &ConnectOptions,
    ) -> Result<Self, RegistryError> {
        let mut scopes = vec![format!("repository:{}:pull,push", reference.repository)];
        scopes.extend(
            mount_from
                .iter()
                .map(|repo| format!("repository:{repo}:pull")),
        );
        Self::new(reference, scopes, opts)
    }

    /// A client that only reads `reference`'s repository.
    pub fn for_pull(reference: &Reference, opts: &ConnectOptions) -> Result<Self, RegistryError> {
        let scopes = vec![format!("repository:{}:pull", reference.repository)];
        Self::new(reference, scopes, opts)
    }

    fn new(
        reference: &Reference,
        scopes: Vec<String>,
        opts: &ConnectOptions,
    ) -> Result<Self, RegistryError> {
        let http = http_client(opts)?;
        let plain = opts.plain_http.unwrap_or_else(|| reference.is_localhost());
        let scheme = if plain { "http" } else { "https" };
        let repo_url = Url::parse(&format!(
            "{scheme}://{}/v2/{}/",
            reference.api_host(),
            reference.repository
        ))
        .map_err(|e| {
            RegistryError::Setup(format!("bad registry address {}: {e}", reference.registry))
        })?;
        let auth = Auth::new(
            reference.registry.clone(),
            reference.name(),
            scopes,
            opts.credentials.clone(),
        );
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                reference: reference.clone(),
                repo_url,
                auth,
                retries: opts.retries,
            }),
        })
    }

    /// Whether `other` is served by the same registry, so blobs can be mounted between them.
    pub fn same_registry(&self, other: &Reference) -> bool {
        self.inner.reference.api_host() == other.api_host()
    }

    pub fn reference(&self) -> &Reference {
        &self.inner.reference
    }

    fn registry(&self) -> &str {
        &self.inner.reference.registry
    }

    fn url(&self, path: &str) -> Url {
        self.inner
            .repo_url
            .join(path)
            .expect("registry paths are valid URL paths")
    }

    /// The blob's size if the repository has it.
    pub async fn blob_size(&self, digest: &str) -> Result<Option<u64>, RegistryError> {
        let url = self.url(&format!("blobs/{digest}"));
        let action = format!("HEAD blob {digest}");
        let resp = self.send(&action, |http| http.head(url.clone())).await?;
        match resp.status() {
            StatusCode::OK => Ok(Some(content_length(resp.headers()).unwrap_or(0))),
            StatusCode::NOT_FOUND => Ok(None),
            status => Err(self.unexpected(&action, status, resp).await),
        }
    }

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
            StatusCode::ACCEPTED => Ok(Some(self.session_from(&action, &resp, 0)?)),
            status => Err(self.unexpected(&action, status, resp).await),
        }
    }

    /// Opens an upload session.
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

    /// Sends the next `len` bytes of the blob as one PATCH with a streamed body. Not retried
    /// here: the body is consumed by the attempt, so the caller decides how to go on.
    pub async fn upload_chunk(
        &self,
        session: &mut UploadSession,
        body: reqwest::Body,
        len: u64,
    ) -> Result<(), RegistryError> {
        let end = session.offset + len - 1;
        let action = format!("upload bytes {}-{end}", session.offset);
        let mut request = self
            .inner
            .http
            .patch(session.location.clone())
            .header(CONTENT_TYPE, "application/octet-stream")
            .header(CONTENT_LENGTH, len)
            .header("Content-Range", format!("{}-{end}", session.offset))
            .body(body);
        let auth = self.inner.auth.header(&self.inner.http).await?;
        if let Some(value) = &auth.value {
            request = request.header(AUTHORIZATION, value);
        }
        let resp = request
            .send()
            .await
            .map_err(|source| self.unreachable(&action, source))?;
        match resp.status() {
            StatusCode::ACCEPTED | StatusCode::NO_CONTENT => {
                let min_chunk = session.min_chunk;
                *session = self.session_from(&action, &resp, end + 1)?;
                session.min_chunk = session.min_chunk.max(min_chunk);
                Ok(())
            }
            StatusCode::UNAUTHORIZED => {
                let challenge = header_str(resp.headers(), WWW_AUTHENTICATE);
                self.inner
                    .auth
                    .challenged(challenge.as_deref(), &auth)
                    .await;
                Err(RegistryError::TokenRejectedMidUpload {
                    registry: self.registry().into(),
                    action,
                })
            }
            status => Err(self.unexpected(&action, status, resp).await),
        }
    }

    /// How many bytes of the upload the registry holds (`GET` on the upload URL, its `Range`
    /// header), with the session's location brought up to date. `None`: the registry no
    /// longer knows the session (it expired, or the registry lost it).
    pub async fn upload_offset(
        &self,
        session: &mut UploadSession,
    ) -> Result<Option<u64>, RegistryError> {
        let url = session.location.clone();
        let action = "ask how far the upload got";
        let resp = self.send(action, |http| http.get(url.clone())).await?;
        match resp.status() {
            StatusCode::NO_CONTENT | StatusCode::OK => {
                // `Range: 0-<last byte>`; an upload holding nothing says `0-0` or nothing.
                let end = header_str(resp.headers(), "Range").and_then(|r| {
                    r.split_once('-')
                        .and_then(|(_, end)| end.trim().parse::<u64>().ok())
                });
                let offset = match end {
                    Some(end) if end > 0 => end + 1,
                    _ => 0,
                };
                let min_chunk = session.min_chunk;
                *session = self
                    .session_from(action, &resp, offset)
                    .unwrap_or(UploadSession {
                        location: session.location.clone(),
                        offset,
                        min_chunk,
                    });
                session.min_chunk = session.min_chunk.max(min_chunk);
                Ok(Some(offset))
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
            .send(&action, |http| {
                http.put(url.clone()).header(CONTENT_LENGTH, 0)
            })
            .await?;
        match resp.status() {
            StatusCode::CREATED | StatusCode::NO_CONTENT => Ok(()),
            status => match self.unexpected(&action, status, resp).await {
                // The registry hashed what it received and it is not `digest` (the spec's error
                // code; a registry that only answers 400 is reported with its own words).
                RegistryError::Status {
                    status: 400, body, ..
                } if body.contains("DIGEST_INVALID") => Err(RegistryError::DigestRefused {
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

    /// Stores a manifest under `tag_or_digest`; returns the digest the registry computed.
    pub async fn put_manifest(
        &self,
        tag_or_digest: &str,
        media_type: &str,
        bytes: Bytes,
    ) -> Result<String, RegistryError> {
        let url = self.url(&format!("manifests/{tag_or_digest}"));
        let action = format!(
            "PUT manifest {}:{tag_or_digest}",
            self.inner.reference.repository
        );
        let resp = self
            .send(&action, |http| {
                http.put(url.clone())
                    .header(CONTENT_TYPE, media_type)
                    .body(bytes.clone())
            })
            .await?;
        match resp.status() {
            StatusCode::CREATED | StatusCode::OK => {
                Ok(header_str(resp.headers(), "Docker-Content-Digest").unwrap_or_default())
            }
            status => Err(self.unexpected(&action, status, resp).await),
        }
    }

    /// Fetches a manifest or index by tag or digest, accepting the given media types.
    pub async fn get_manifest(
        &self,
        tag_or_digest: &str,
        accept: &[&str],
    ) -> Result<RawManifest, RegistryError> {
        let url = self.url(&format!("manifests/{tag_or_digest}"));
        let action = format!(
            "GET manifest {}:{tag_or_digest}",
            self.inner.reference.repository
        );
        let accept = accept.join(", ");
        let resp = self
            .send(&action, |http| {
                http.get(url.clone()).header(ACCEPT, &accept)
            })
            .await?;
        if resp.status() != StatusCode::OK {
            let status = resp.status();
            return Err(self.unexpected(&action, status, resp).await);
        }
        let header = header_str(resp.headers(), CONTENT_TYPE).unwrap_or_default();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| self.unreachable(&action, e))?;
        let digest = crate::digest::sha256_digest(&bytes);
        Ok(RawManifest {
            media_type: manifest_media_type(&header, &bytes),
            bytes,
            digest,
        })
    }

    /// Starts downloading a blob from byte `from` (a `Range` request past byte 0); the caller
    /// streams the body. Also returns where the body starts: `from`, or 0 from a registry
    /// that ignored the range and sent the whole blob.
    pub async fn get_blob(
        &self,
        digest: &str,
        from: u64,
    ) -> Result<(Response, u64), RegistryError> {
        let url = self.url(&format!("blobs/{digest}"));
        let action = format!("GET blob {digest}");
        let resp = self
            .send(&action, |http| {
                let request = http.get(url.clone());
                match from {
                    0 => request,
                    from => request.header(reqwest::header::RANGE, format!("bytes={from}-")),
                }
            })
            .await?;
        match resp.status() {
            StatusCode::OK => Ok((resp, 0)),
            StatusCode::PARTIAL_CONTENT
                if from > 0
                    && header_str(resp.headers(), "Content-Range")
                        .is_some_and(|r| r.starts_with(&format!("bytes {from}-"))) =>
            {
                Ok((resp, from))
            }
            status => Err(self.unexpected(&action, status, resp).await),
        }
    }

    /// Sends a replayable request: answers a 401 challenge once, retries transient failures
    /// (connection errors, 5xx, 429) with exponential backoff. When the retries run out the
    /// error says so, and is final: callers must not retry it again.
    async fn send(
        &self,
        action: &str,
        make: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<Response, RegistryError> {
        let attempts = self.inner.retries + 1;
        // A 401 is answered at most twice: once for the challenge, once for a token that
        // another request renewed meanwhile.
        let mut reauthentications = 0;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut request = make(&self.inner.http);
            let auth = self.inner.auth.header(&self.inner.http).await?;
            if let Some(value) = &auth.value {
                request = request.header(AUTHORIZATION, value);
            }
            let failure = match request.send().await {
                Ok(resp) if resp.status() == StatusCode::UNAUTHORIZED => {
                    let challenge = header_str(resp.headers(), WWW_AUTHENTICATE);
                    if reauthentications < 2
                        && self
                            .inner
                            .auth
                            .challenged(challenge.as_deref(), &auth)
                            .await
                    {
                        reauthentications += 1;
                        attempt -= 1;
                        continue;
                    }
                    return Err(self.rejected(action));
                }
                Ok(resp) if resp.status() == StatusCode::FORBIDDEN => {
                    return Err(RegistryError::Denied {
                        registry: self.registry().into(),
                        action: action.into(),
                    })
                }
                Ok(resp) if is_transient_status(resp.status()) => {
                    let status = resp.status();
                    self.unexpected(action, status, resp).await
                }
                Ok(resp) => return Ok(resp),
                Err(source) => self.unreachable(action, source),
            };
            if attempt >= attempts {
                return Err(RegistryError::RetriesExhausted {
                    attempts,
                    last: Box::new(failure),
                });
            }
            let pause = FIRST_BACKOFF * 2u32.pow(attempt - 1);
            tracing::warn!(registry = %self.registry(), "{failure}; retry {attempt} of {} in {pause:?}", attempts - 1);
            tokio::time::sleep(pause).await;
        }
    }

    fn session_from(
        &self,
        action: &str,
        resp: &Response,
        offset: u64,
    ) -> Result<UploadSession, RegistryError> {
        let location =
            header_str(resp.headers(), LOCATION).ok_or_else(|| RegistryError::Protocol {
                registry: self.registry().into(),
                action: action.into(),
                detail: "no Location header for the upload".into(),
            })?;
        // Location may be relative to the registry.
        let location =
            self.inner
                .repo_url
                .join(&location)
                .map_err(|e| RegistryError::Protocol {
                    registry: self.registry().into(),
                    action: action.into(),
                    detail: format!("bad upload Location {location:?}: {e}"),
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

    fn unreachable(&self, action: &str, source: reqwest::Error) -> RegistryError {
        RegistryError::Unreachable {
            registry: self.registry().into(),
            action: action.into(),
            source,
        }
    }

    fn rejected(&self, action: &str) -> RegistryError {
        match self.inner.auth.credential_source() {
            Some(credential_source) => RegistryError::Unauthorized {
                registry: self.registry().into(),
                action: action.into(),
                credential_source,
            },
            None => RegistryError::NoCredentials {
                registry: self.registry().into(),
            },
        }
    }

    async fn unexpected(&self, action: &str, status: StatusCode, resp: Response) -> RegistryError {
        let body = resp.bytes().await.unwrap_or_default();
        RegistryError::status(self.registry(), action, status, &body)
    }
}

/// A manifest's media type: the `Content-Type` when it names one, else the document's own
/// `mediaType` (some registries answer `application/json`), else an OCI image manifest (a
/// schema 2 document without `mediaType` is one).
fn manifest_media_type(header: &str, bytes: &[u8]) -> String {
    if header.starts_with("application/vnd.") {
        return header.to_string();
    }
    serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()
        .and_then(|v| v.get("mediaType")?.as_str().map(str::to_string))
        .unwrap_or_else(|| crate::oci::OCI_MANIFEST.to_string())
}

fn is_transient_status(status: StatusCode) -> bool {
    status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS
}

fn header_str(headers: &HeaderMap, name: impl reqwest::header::AsHeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    header_str(headers, CONTENT_LENGTH).and_then(|v| v.parse().ok())
}

fn http_client(opts: &ConnectOptions) -> Result<reqwest::Client, RegistryError> {
    let user_agent = concat!("modelcar/", env!("CARGO_PKG_VERSION"));
    let builder = crate::http::client_builder(user_agent, opts.ca_file.as_deref())
        .map_err(RegistryError::Setup)?
        // No overall timeout: a 50 GB layer takes as long as it takes. Stalls are caught by
        // the read timeout instead.
        .read_timeout(Duration::from_secs(300))
        .tcp_keepalive(Duration::from_secs(30))
        .danger_accept_invalid_certs(opts.insecure);
    builder
        .build()
        .map_err(|e| RegistryError::Setup(e.to_string()))
}
