//! The Hub's HTTP API as the `huggingface_hub` clients use it: `api/models/{repo}/revision/
//! {rev}` for the commit sha, `api/models/{repo}/tree/{sha}?recursive=true` (paged by `Link`
//! headers) for paths, sizes, git blob ids and LFS sha256, and `{repo}/resolve/{sha}/{path}`
//! (redirected to a CDN for LFS files) for the bytes, with `Range` to resume.

use std::time::Duration;

use reqwest::header::{HeaderMap, AUTHORIZATION, CONTENT_RANGE, LINK, RANGE};
use reqwest::Url;
use reqwest::{RequestBuilder, Response, StatusCode};
use serde::Deserialize;

use super::error::HubError;
use crate::causes::ErrorCauses;
use crate::http::{read_capped, read_prefix, BodyError};

pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// The most one page of a repo's file listing may hold (the Hub sends 1,000 entries, about
/// 300 KB).
const TREE_PAGE_LIMIT: u64 = 16 << 20;
/// The most any other JSON answer of the Hub may hold.
const ANSWER_LIMIT: u64 = 1 << 20;
/// Pages of one listing at most: 10 million files.
const MAX_TREE_PAGES: usize = 10_000;

#[derive(Clone)]
pub struct HubOptions {
    /// `HF_ENDPOINT`: the Hub, or a mirror of it.
    pub endpoint: String,
    /// `HF_TOKEN`, or a token file's content.
    pub token: Option<String>,
    /// The CAs trusted besides the system's.
    pub trust: crate::trust::Trust,
    /// Retries of a request that failed in a way that may pass (connection, 5xx, 429).
    pub retries: u32,
}

// The token never reaches a log line or a panic message through Debug.
impl std::fmt::Debug for HubOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubOptions")
            .field("endpoint", &self.endpoint)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("trust", &self.trust)
            .field("retries", &self.retries)
            .finish()
    }
}

impl Default for HubOptions {
    fn default() -> Self {
        Self {
            endpoint: DEFAULT_ENDPOINT.into(),
            token: None,
            trust: Default::default(),
            retries: 5,
        }
    }
}

/// A file of a repo at one commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoEntry {
    pub path: String,
    pub size: u64,
    /// The git blob sha1: what a file kept in git (not LFS) is checked against.
    pub oid: String,
    /// The sha256 of an LFS file's content.
    pub lfs_sha256: Option<String>,
}

#[derive(Clone)]
pub struct HubClient {
    http: reqwest::Client,
    endpoint: Url,
    token: Option<String>,
    retries: u32,
}

/// What a request was about, for naming the thing at fault in errors.
struct Subject<'a> {
    repo: &'a str,
    revision: Option<&'a str>,
    path: Option<&'a str>,
}

#[derive(Deserialize)]
struct RevisionInfo {
    sha: String,
}

#[derive(Deserialize)]
struct TreeItem {
    #[serde(rename = "type")]
    kind: String,
    path: String,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    oid: String,
    lfs: Option<LfsInfo>,
}

#[derive(Deserialize)]
struct LfsInfo {
    oid: String,
}

impl HubClient {
    pub fn new(options: &HubOptions) -> Result<Self, HubError> {
        let bad = |detail: String| HubError::Endpoint {
            endpoint: options.endpoint.clone(),
            detail,
        };
        let mut endpoint = Url::parse(options.endpoint.trim_end_matches('/'))
            .map_err(|e| bad(e.causes().to_string()))?;
        if endpoint.cannot_be_a_base() || !matches!(endpoint.scheme(), "http" | "https") {
            return Err(bad("not an http(s) URL".into()));
        }
        // An endpoint with a path prefix (a mirror at https://host/hf) keeps it.
        if !endpoint.path().ends_with('/') {
            let path = format!("{}/", endpoint.path());
            endpoint.set_path(&path);
        }
        let user_agent = concat!("modelcar/", env!("CARGO_PKG_VERSION"));
        let http = crate::http::client_builder(user_agent, &options.trust)
            .map_err(bad)?
            .read_timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| bad(e.causes().to_string()))?;
        Ok(Self {
            http,
            endpoint,
            token: options.token.clone().filter(|t| !t.is_empty()),
            retries: options.retries,
        })
    }

    pub fn endpoint(&self) -> &str {
        self.endpoint.as_str().trim_end_matches('/')
    }

    /// The commit sha that `revision` (a branch, tag or sha) names now.
    pub async fn commit_sha(&self, repo: &str, revision: &str) -> Result<String, HubError> {
        let url = self.url(&["api", "models"], repo, &["revision", revision]);
        let subject = Subject {
            repo,
            revision: Some(revision),
            path: None,
        };
        let action = format!("look up revision {revision} of {repo}");
        let response = self.get(&action, &subject, url, 0).await?;
        let info: RevisionInfo = self.json(&action, response, ANSWER_LIMIT).await?;
        Ok(info.sha)
    }

    /// Every file of `repo` at commit `sha`, following the listing's pages.
    pub async fn list_files(&self, repo: &str, sha: &str) -> Result<Vec<RepoEntry>, HubError> {
        let mut next = Some(self.url(&["api", "models"], repo, &["tree", sha]));
        if let Some(url) = &mut next {
            url.query_pairs_mut().append_pair("recursive", "true");
        }
        let subject = Subject {
            repo,
            revision: Some(sha),
            path: None,
        };
        let action = format!("list the files of {repo} at {sha}");
        let mut files = Vec::new();
        let mut visited = std::collections::HashSet::new();
        while let Some(url) = next.take() {
            self.check_page(&action, &url, &mut visited)?;
            let response = self.get(&action, &subject, url.clone(), 0).await?;
            next = next_page(response.headers(), &url);
            let items: Vec<TreeItem> = self.json(&action, response, TREE_PAGE_LIMIT).await?;
            files.extend(
                items
                    .into_iter()
                    .filter(|i| i.kind == "file")
                    .map(|i| RepoEntry {
                        path: i.path,
                        size: i.size,
                        oid: i.oid,
                        lfs_sha256: i.lfs.map(|l| l.oid),
                    }),
            );
        }
        Ok(files)
    }

    /// Starts downloading `path` of `repo` at `sha` from byte `from`. Also returns where the
    /// body starts: `from`, or 0 if the server ignored the range.
    pub async fn open_file(
        &self,
        repo: &str,
        sha: &str,
        path: &str,
        from: u64,
    ) -> Result<(Response, u64), HubError> {
        let mut url = self.url(&[], repo, &["resolve", sha]);
        url.path_segments_mut()
            .expect("a base URL")
            .extend(path.split('/'));
        let subject = Subject {
            repo,
            revision: Some(sha),
            path: Some(path),
        };
        let action = format!("download {path}");
        let response = self.get(&action, &subject, url, from).await?;
        if response.status() != StatusCode::PARTIAL_CONTENT {
            return Ok((response, 0));
        }
        let start = response
            .headers()
            .get(CONTENT_RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("bytes "))
            .and_then(|v| v.split('-').next())
            .and_then(|v| v.parse::<u64>().ok());
        match start {
            Some(start) if start == from => Ok((response, from)),
            _ => Err(HubError::Protocol {
                endpoint: self.endpoint().into(),
                action,
                detail: format!("a 206 for bytes {from}- that does not start there"),
            }),
        }
    }

    /// `{endpoint}/{before...}/{org}/{name}/{after...}`, each segment escaped.
    fn url(&self, before: &[&str], repo: &str, after: &[&str]) -> Url {
        let mut url = self.endpoint.clone();
        {
            let mut segments = url.path_segments_mut().expect("a base URL");
            segments.pop_if_empty();
            segments
                .extend(before)
                .extend(repo.split('/'))
                .extend(after);
        }
        url
    }

    /// A listing page may be fetched: on the endpoint's own origin (the token goes nowhere
    /// else), not seen before (a `Link` back to a page never ends), within the page budget.
    fn check_page(
        &self,
        action: &str,
        url: &Url,
        visited: &mut std::collections::HashSet<Url>,
    ) -> Result<(), HubError> {
        let refuse = |detail: String| HubError::Protocol {
            endpoint: self.endpoint().into(),
            action: action.into(),
            detail,
        };
        if url.origin() != self.endpoint.origin() {
            return Err(refuse(format!(
                "the listing's next page is {url}, not on the Hub's own origin: refused, so that the token goes nowhere else"
            )));
        }
        if !visited.insert(url.clone()) {
            return Err(refuse(format!("the listing's pages loop back to {url}")));
        }
        if visited.len() > MAX_TREE_PAGES {
            return Err(refuse(format!(
                "the listing goes on past {MAX_TREE_PAGES} pages"
            )));
        }
        Ok(())
    }

    /// A JSON answer, read up to `limit` bytes: more is an error, never held in memory.
    async fn json<T: serde::de::DeserializeOwned>(
        &self,
        action: &str,
        response: Response,
        limit: u64,
    ) -> Result<T, HubError> {
        let bytes = match read_capped(response, limit).await {
            Ok(bytes) => bytes,
            Err(BodyError::Read(source)) => return Err(self.unreachable(action, source)),
            Err(BodyError::TooLarge { limit }) => {
                return Err(HubError::Protocol {
                    endpoint: self.endpoint().into(),
                    action: action.into(),
                    detail: format!("the answer is larger than {limit} bytes: refused"),
                })
            }
        };
        serde_json::from_slice(&bytes).map_err(|e| HubError::Protocol {
            endpoint: self.endpoint().into(),
            action: action.into(),
            detail: format!("not the JSON expected: {e}"),
        })
    }

    /// GETs `url` (from byte `from`), retrying what may pass, and turns refusals into errors
    /// that name the repo, revision or file.
    async fn get(
        &self,
        action: &str,
        subject: &Subject<'_>,
        url: Url,
        from: u64,
    ) -> Result<Response, HubError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self.send_once(url.clone(), from).await;
            let failure = match result {
                Ok(response) if response.status().is_success() => return Ok(response),
                Ok(response) => self.refusal(action, subject, response).await,
                Err(source) => self.unreachable_or_tls(action, &url, source).await,
            };
            if !failure.is_transient() || attempt > self.retries {
                return Err(failure);
            }
            let pause = Duration::from_millis(500 << (attempt - 1).min(6));
            tracing::warn!("{failure}; trying again in {pause:?}");
            tokio::time::sleep(pause).await;
        }
    }

    fn send_once(
        &self,
        url: Url,
        from: u64,
    ) -> impl std::future::Future<Output = reqwest::Result<Response>> {
        let mut request: RequestBuilder = self.http.get(url);
        if let Some(token) = &self.token {
            request = request.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        if from > 0 {
            request = request.header(RANGE, format!("bytes={from}-"));
        }
        request.send()
    }

    /// The Hub says what went wrong in `X-Error-Code` and a JSON `error`.
    async fn refusal(&self, action: &str, subject: &Subject<'_>, response: Response) -> HubError {
        let status = response.status().as_u16();
        let code = response
            .headers()
            .get("x-error-code")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let text = String::from_utf8_lossy(&read_prefix(response, 64 << 10).await).into_owned();
        let detail = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_string))
            .unwrap_or(text);
        let repo = subject.repo.to_string();
        let revision = subject.revision.unwrap_or("main").to_string();
        match (status, code.as_str()) {
            (_, "GatedRepo") => HubError::Gated { repo },
            (_, "RepoNotFound") => HubError::RepoNotFound {
                repo,
                endpoint: self.endpoint().into(),
            },
            (_, "RevisionNotFound") => HubError::RevisionNotFound { repo, revision },
            (_, "EntryNotFound") => HubError::EntryNotFound {
                repo,
                revision,
                path: subject.path.unwrap_or_default().into(),
            },
            (401 | 403, _) if self.token.is_some() => HubError::BadToken {
                endpoint: self.endpoint().into(),
                detail,
            },
            // Anonymous callers get a 401 for a repo that is private or does not exist.
            (401, _) => HubError::RepoNotFound {
                repo,
                endpoint: self.endpoint().into(),
            },
            _ => HubError::Status {
                endpoint: self.endpoint().into(),
                action: action.into(),
                status,
                detail,
            },
        }
    }

    /// A TLS failure, said with its certificate and fix; else the Hub is unreachable.
    async fn unreachable_or_tls(
        &self,
        action: &str,
        url: &Url,
        source: reqwest::Error,
    ) -> HubError {
        match crate::tls::TlsFailure::of(&source, url).await {
            Some(failure) => HubError::Tls {
                endpoint: self.endpoint().into(),
                action: action.into(),
                fix: failure.server_fix(url.host_str().unwrap_or_default()),
                failure: Box::new(failure),
            },
            None => self.unreachable(action, source),
        }
    }

    fn unreachable(&self, action: &str, source: reqwest::Error) -> HubError {
        HubError::Unreachable {
            endpoint: self.endpoint().into(),
            action: action.into(),
            source,
        }
    }
}

/// The `Link: <url>; rel="next"` page after `current`, resolved against it.
fn next_page(headers: &HeaderMap, current: &Url) -> Option<Url> {
    let link = headers.get(LINK)?.to_str().ok()?;
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        params.contains("rel=\"next\"").then_some(())?;
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        current.join(target).ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_escape_segments_and_keep_an_endpoint_prefix() {
        let client = HubClient::new(&HubOptions {
            endpoint: "http://mirror.local:8080/hf".into(),
            ..HubOptions::default()
        })
        .unwrap();
        let url = client.url(&["api", "models"], "org/name", &["revision", "refs/pr/1"]);
        assert_eq!(
            url.as_str(),
            "http://mirror.local:8080/hf/api/models/org/name/revision/refs%2Fpr%2F1"
        );
        assert!(HubClient::new(&HubOptions {
            endpoint: "mailto:x".into(),
            ..HubOptions::default()
        })
        .is_err());
    }

    #[test]
    fn the_next_page_comes_from_the_link_header() {
        let mut headers = HeaderMap::new();
        headers.insert(
            LINK,
            r#"<https://hub/api/models/o/n/tree/abc?cursor=x>; rel="next""#
                .parse()
                .unwrap(),
        );
        let current = Url::parse("https://hub/api/models/o/n/tree/abc").unwrap();
        assert_eq!(
            next_page(&headers, &current).unwrap().as_str(),
            "https://hub/api/models/o/n/tree/abc?cursor=x"
        );
        assert!(next_page(&HeaderMap::new(), &current).is_none());
    }
}
