//! A client for the Model Registry REST API (kubeflow/model-registry,
//! `api/openapi/model-registry.yaml`): the calls register needs, with a bearer token read at
//! call time, retries of transient failures, and errors that name the service and the token.

use std::path::PathBuf;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use modelcar_shared::causes::ErrorCauses;
use modelcar_shared::http::{read_capped, BodyError};
use modelcar_shared::trust::Trust;

/// The API versions the service has served, newest first.
pub const API_VERSIONS: [&str; 2] = ["v1", "v1alpha3"];
const RETRIES: u32 = 5;
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// Doublings of the pause at most.
const MAX_DOUBLINGS: u32 = 6;
/// The most a Model Registry answer may hold: its JSON objects and pages are small.
const ANSWER_LIMIT: u64 = 8 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("cannot reach the Model Registry at {url}")]
    Unreachable { url: String, source: reqwest::Error },
    /// Not retried: nothing about a certificate changes by asking again.
    #[error("TLS to the Model Registry at {url} failed: {failure}; {fix}")]
    Tls {
        url: String,
        failure: Box<modelcar_shared::tls::TlsFailure>,
        fix: String,
    },
    #[error("the Model Registry at {url} rejected the token from {token_source} ({status}): check it, or give another with --token-file / --token")]
    Rejected {
        url: String,
        token_source: String,
        status: u16,
    },
    #[error("the Model Registry at {url} answered {status} to {action}: {body}")]
    Status {
        url: String,
        action: String,
        status: u16,
        body: String,
    },
    #[error("the Model Registry at {url} sent an answer to {action} that is not the JSON expected: {detail}")]
    Protocol {
        url: String,
        action: String,
        detail: String,
    },
    #[error("the Model Registry at {url} serves none of the API versions {API_VERSIONS:?} (tried /api/model_registry/<version>/registered_models)")]
    NoApi { url: String },
    #[error("cannot read --token-file {path}")]
    TokenFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot set up the HTTP client: {0}")]
    Setup(String),
}

/// Where the bearer token comes from: read on every request, so a rotated file is used.
#[derive(Clone, Default)]
pub enum Token {
    #[default]
    None,
    Value(String),
    File(PathBuf),
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Token::None => f.write_str("Token::None"),
            Token::Value(_) => f.write_str("Token::Value(***)"),
            Token::File(path) => write!(f, "Token::File({})", path.display()),
        }
    }
}

impl Token {
    fn read(&self) -> Result<Option<String>, ApiError> {
        match self {
            Token::None => Ok(None),
            Token::Value(t) => Ok(Some(t.clone())),
            Token::File(path) => std::fs::read_to_string(path)
                .map(|t| Some(t.trim().to_string()))
                .map_err(|source| ApiError::TokenFile {
                    path: path.clone(),
                    source,
                }),
        }
    }

    fn describe(&self) -> String {
        match self {
            Token::None => "no token (give --token-file or --token)".into(),
            Token::Value(_) => "--token".into(),
            Token::File(path) => format!("token file {}", path.display()),
        }
    }
}

pub struct Api {
    http: reqwest::Client,
    /// `https://host[:port]/api/model_registry/<version>`
    base: String,
    url: String,
    token: Token,
}

impl Api {
    /// A client for the service at `url`, at `version`, or at the newest version it serves.
    pub async fn connect(
        url: &str,
        version: Option<&str>,
        token: Token,
        trust: &Trust,
    ) -> Result<Self, ApiError> {
        let http = http_client(trust)?;
        let url = url.trim_end_matches('/').to_string();
        let mut api = Self {
            http,
            base: String::new(),
            url: url.clone(),
            token,
        };
        let versions: Vec<&str> = match version {
            Some(v) => vec![v],
            None => API_VERSIONS.to_vec(),
        };
        for v in &versions {
            api.base = format!("{url}/api/model_registry/{v}");
            match api
                .call(Method::GET, "/registered_models?pageSize=1", None)
                .await
            {
                Ok(_) => {
                    tracing::debug!("Model Registry API {v} at {url}");
                    return Ok(api);
                }
                Err(ApiError::Status { status: 404, .. }) if version.is_none() => continue,
                Err(e) => return Err(e),
            }
        }
        Err(ApiError::NoApi { url })
    }

    /// `GET` that answers `None` on 404 (a find that found nothing).
    pub async fn find(&self, path_and_query: &str) -> Result<Option<Value>, ApiError> {
        match self.call(Method::GET, path_and_query, None).await {
            Ok(v) => Ok(Some(v)),
            Err(ApiError::Status { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn get(&self, path: &str) -> Result<Value, ApiError> {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Result<Value, ApiError> {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Result<Value, ApiError> {
        self.call(Method::PATCH, path, Some(body)).await
    }

    /// One call, retried on connection errors, 5xx and 429 with doubling pauses.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ApiError> {
        let action = format!("{method} {path}");
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut request = self
                .http
                .request(method.clone(), format!("{}{path}", self.base));
            if let Some(token) = self.token.read()? {
                request = request.bearer_auth(token);
            }
            if let Some(body) = body {
                request = request
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(serde_json::to_vec(body).expect("a JSON value serializes"));
            }
            // A POST that may have reached the server is not sent again: it may have created
            // what a second one would create twice. It is resent only when it surely did not
            // (no connection) or the server said it did not take it (429, 503).
            let may_repeat = |status: Option<StatusCode>| {
                method != Method::POST
                    || matches!(
                        status,
                        Some(StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE)
                    )
            };
            let failure = match request.send().await {
                Ok(resp) => {
                    let status = resp.status();
                    let bytes = match read_capped(resp, ANSWER_LIMIT).await {
                        Ok(bytes) => bytes,
                        Err(BodyError::TooLarge { limit }) => {
                            return Err(ApiError::Protocol {
                                url: self.url.clone(),
                                action,
                                detail: format!("the answer is larger than {limit} bytes"),
                            })
                        }
                        Err(BodyError::Read(source)) => {
                            return Err(ApiError::Unreachable {
                                url: self.url.clone(),
                                source,
                            })
                        }
                    };
                    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                        return Err(ApiError::Rejected {
                            url: self.url.clone(),
                            token_source: self.token.describe(),
                            status: status.as_u16(),
                        });
                    }
                    if status.is_success() {
                        return serde_json::from_slice(&bytes).map_err(|e| ApiError::Protocol {
                            url: self.url.clone(),
                            action: action.clone(),
                            detail: e.to_string(),
                        });
                    }
                    let error = ApiError::Status {
                        url: self.url.clone(),
                        action: action.clone(),
                        status: status.as_u16(),
                        body: String::from_utf8_lossy(&bytes[..bytes.len().min(2048)])
                            .trim()
                            .to_string(),
                    };
                    let transient =
                        status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS;
                    if !transient || !may_repeat(Some(status)) {
                        return Err(error);
                    }
                    error
                }
                Err(source) => {
                    if let Some(tls) = self.tls_failure(&source).await {
                        return Err(tls);
                    }
                    let unsent = source.is_connect();
                    let error = ApiError::Unreachable {
                        url: self.url.clone(),
                        source,
                    };
                    if !unsent && !may_repeat(None) {
                        return Err(error);
                    }
                    error
                }
            };
            if attempt > RETRIES {
                return Err(failure);
            }
            let pause = FIRST_BACKOFF * 2u32.pow((attempt - 1).min(MAX_DOUBLINGS));
            tracing::warn!("{failure}; retry {attempt} of {RETRIES} in {pause:?}");
            tokio::time::sleep(pause).await;
        }
    }

    /// The error for a TLS failure, with the certificate and its fix; `None` for any other.
    async fn tls_failure(&self, source: &reqwest::Error) -> Option<ApiError> {
        let base = reqwest::Url::parse(&self.base).ok()?;
        let failure = modelcar_shared::tls::TlsFailure::of(source, &base).await?;
        Some(ApiError::Tls {
            url: self.url.clone(),
            fix: failure.server_fix(base.host_str().unwrap_or_default()),
            failure: Box::new(failure),
        })
    }
}

fn http_client(trust: &Trust) -> Result<reqwest::Client, ApiError> {
    let user_agent = concat!("modelcar-register/", env!("CARGO_PKG_VERSION"));
    modelcar_shared::http::client_builder(user_agent, trust)
        .map_err(ApiError::Setup)?
        .timeout(Duration::from_secs(120))
        .build()
        .map_err(|e| ApiError::Setup(e.causes().to_string()))
}
