//! A client for one repository of an OCI distribution registry: the calls build-push and mirror
//! need, with authentication, retries of transient failures, and errors that name the registry.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{HeaderMap, ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, WWW_AUTHENTICATE};
use reqwest::{RequestBuilder, Response, StatusCode, Url};

use super::auth::Auth;
use super::credentials::CredentialSource;
use super::error::RegistryError;
use super::reference::Reference;
use crate::causes::ErrorCauses;
use crate::http::{read_capped, read_prefix, BodyError};
use crate::tls::TlsFailure;

/// The most a manifest or index may hold, as registries cap them (distribution's
/// `maxManifestBodySize`, 4 MiB).
pub const MANIFEST_LIMIT: u64 = 4 << 20;
/// The most of an error answer that is read, to show the user.
const ERROR_BODY_LIMIT: usize = 64 << 10;

/// Pause before the first retry of a transient failure; it doubles with each retry.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// Doublings of the pause at most: no pause is longer than 64 s, however many `--retries`.
const MAX_DOUBLINGS: u32 = 7;
/// Retries by default: 6 retries wait 31.5 s in all, enough for a registry pod to restart.
pub const DEFAULT_RETRIES: u32 = 6;

/// How to reach a registry.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub credentials: CredentialSource,
    /// Plain HTTP; `None`: only for localhost, as docker and podman do.
    pub plain_http: Option<bool>,
    /// The CAs trusted besides the system's.
    pub trust: crate::trust::Trust,
    /// Skip TLS verification. Only when asked.
    pub insecure: bool,
    /// Retries of a request that failed in a way that may pass (connection, 5xx, 429).
    pub retries: u32,
    /// The registry's certificate directory, named by `--cert-dir`; `None`: looked up in
    /// certs.d, as podman and docker do ([`crate::tls::cert_dir`]).
    pub cert_dir: Option<std::path::PathBuf>,
    /// How this side's TLS flags begin (`""`, `base-`, `src-`, `dest-`), for the fix an
    /// error names.
    pub flag_prefix: &'static str,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            credentials: CredentialSource::default(),
            plain_http: None,
            trust: Default::default(),
            insecure: false,
            retries: DEFAULT_RETRIES,
            cert_dir: None,
            flag_prefix: "",
        }
    }
}

/// A manifest as the registry stored it: its exact bytes are what the digest is over.
#[derive(Debug, Clone)]
pub struct RawManifest {
    pub media_type: String,
    pub bytes: Bytes,
    pub digest: crate::digest::Digest,
}

#[derive(Debug, Clone)]
pub struct RegistryClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
pub(super) struct Inner {
    pub(super) http: reqwest::Client,
    pub(super) reference: Reference,
    /// `http(s)://host/v2/<repository>/`
    pub(super) repo_url: Url,
    pub(super) auth: Auth,
    retries: u32,
    flag_prefix: &'static str,
    /// The other origin the registry places its uploads on, once it has placed one there.
    pub(super) upload_origin: std::sync::Mutex<Option<String>>,
}

impl RegistryClient {
    /// A client for `reference`'s repository, with push and pull rights, plus pull rights on
    /// `mount_from` repositories of the same registry (for cross-repository blob mounts).
    pub async fn for_push(
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
        Self::new(reference, scopes, opts).await
    }

    /// A client that only reads `reference`'s repository.
    pub async fn for_pull(
        reference: &Reference,
        opts: &ConnectOptions,
    ) -> Result<Self, RegistryError> {
        let scopes = vec![format!("repository:{}:pull", reference.repository)];
        Self::new(reference, scopes, opts).await
    }

    async fn new(
        reference: &Reference,
        scopes: Vec<String>,
        opts: &ConnectOptions,
    ) -> Result<Self, RegistryError> {
        let http = http_client(reference, opts)?;
        let scheme = super::tls::scheme(&http, reference, opts.plain_http).await;
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
            repo_url.clone(),
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
                flag_prefix: opts.flag_prefix,
                upload_origin: Default::default(),
            }),
        })
    }

    /// Whether `url` is on this registry's own origin (scheme, host and port): the only place
    /// an upload may be sent, with credentials, whatever a server or a file names.
    pub fn is_own_origin(&self, url: &Url) -> bool {
        url.origin() == self.inner.repo_url.origin()
    }

    /// Whether `other` is served by the same registry, so blobs can be mounted between them.
    pub fn same_registry(&self, other: &Reference) -> bool {
        self.inner.reference.api_host() == other.api_host()
    }

    pub fn reference(&self) -> &Reference {
        &self.inner.reference
    }

    pub(super) fn inner(&self) -> &Inner {
        &self.inner
    }

    pub(super) fn registry(&self) -> &str {
        &self.inner.reference.registry
    }

    pub(super) fn url(&self, path: &str) -> Url {
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
        let bytes = match read_capped(resp, MANIFEST_LIMIT).await {
            Ok(bytes) => bytes,
            Err(BodyError::Read(e)) => return Err(self.unreachable(&action, e)),
            Err(BodyError::TooLarge { limit }) => {
                return Err(RegistryError::TooLarge {
                    registry: self.registry().into(),
                    action,
                    limit,
                })
            }
        };
        let digest = crate::digest::sha256_digest(&bytes);
        // Asked for by digest: the bytes must be the ones that digest names.
        if tag_or_digest.starts_with("sha256:") && digest != tag_or_digest {
            return Err(RegistryError::Protocol {
                registry: self.registry().into(),
                action,
                detail: format!("the manifest's bytes have digest {digest}: refused"),
            });
        }
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
    pub(super) async fn send(
        &self,
        action: &str,
        make: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<Response, RegistryError> {
        self.send_with_retries(action, self.inner.retries, make)
            .await
    }

    /// [`Self::send`] with its own number of retries: a caller that has a better way on
    /// than repeating the request (a failed commit) asks for fewer.
    pub(super) async fn send_with_retries(
        &self,
        action: &str,
        retries: u32,
        make: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<Response, RegistryError> {
        let attempts = retries + 1;
        // A 401 is answered at most twice: once for the challenge, once for a token that
        // another request renewed meanwhile.
        let mut reauthentications = 0;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let auth = self.inner.auth.header(&self.inner.http).await?;
            let request = make(&self.inner.http)
                .build()
                .map_err(|e| self.unreachable(action, e))?;
            let failure = match self.execute_authorized(action, request, &auth).await? {
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
                    return Err(self.rejected(action).await);
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
                Err(source) => match TlsFailure::of(&source, &self.inner.repo_url).await {
                    Some(failure) => return Err(self.tls_failure(action, &source, failure)),
                    None => self.unreachable(action, source),
                },
            };
            if attempt >= attempts {
                return Err(RegistryError::RetriesExhausted {
                    attempts,
                    last: Box::new(failure),
                });
            }
            let pause = FIRST_BACKOFF * 2u32.pow((attempt - 1).min(MAX_DOUBLINGS));
            tracing::warn!(registry = %self.registry(), "{failure}; retry {attempt} of {} in {pause:?}", attempts - 1);
            tokio::time::sleep(pause).await;
        }
    }

    pub(super) fn unreachable(&self, action: &str, source: reqwest::Error) -> RegistryError {
        RegistryError::Unreachable {
            registry: self.registry().into(),
            action: action.into(),
            source,
        }
    }

    fn tls_failure(
        &self,
        action: &str,
        source: &reqwest::Error,
        failure: TlsFailure,
    ) -> RegistryError {
        let url = source.url().unwrap_or(&self.inner.repo_url);
        super::tls::failure(
            self.registry(),
            action,
            url,
            failure,
            self.inner.flag_prefix,
        )
    }

    pub(super) async fn rejected(&self, action: &str) -> RegistryError {
        if let Some(realm) = self.inner.auth.refused_realm().await {
            return RegistryError::UnsafeRealm {
                registry: self.registry().into(),
                realm,
            };
        }
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

    pub(super) async fn unexpected(
        &self,
        action: &str,
        status: StatusCode,
        resp: Response,
    ) -> RegistryError {
        let body = read_prefix(resp, ERROR_BODY_LIMIT).await;
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

pub(super) fn header_str(
    headers: &HeaderMap,
    name: impl reqwest::header::AsHeaderName,
) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    header_str(headers, CONTENT_LENGTH).and_then(|v| v.parse().ok())
}

fn http_client(
    reference: &Reference,
    opts: &ConnectOptions,
) -> Result<reqwest::Client, RegistryError> {
    let user_agent = concat!("modelcar/", env!("CARGO_PKG_VERSION"));
    let builder =
        crate::http::client_builder(user_agent, &opts.trust).map_err(RegistryError::Setup)?;
    let builder = super::tls::with_registry_certs(builder, reference, opts.cert_dir.as_deref())?
        // No overall timeout: a 50 GB layer takes as long as it takes. Stalls are caught by
        // the read timeout instead.
        .read_timeout(Duration::from_secs(300))
        .tcp_keepalive(Duration::from_secs(30))
        .danger_accept_invalid_certs(opts.insecure);
    builder
        .build()
        .map_err(|e| RegistryError::Setup(e.causes().to_string()))
}
