//! Answering registry challenges (distribution's token auth spec): Basic, or a Bearer token from
//! the realm named in `WWW-Authenticate`, fetched with the user's credentials for the scopes
//! this client needs, and fetched again before it expires or whenever the registry says 401.
//! Credentials are looked up on every token fetch, so a rotated token file is always used.

use std::time::{Duration, Instant};

use reqwest::header::AUTHORIZATION;
use reqwest::Url;
use serde::Deserialize;
use tokio::sync::Mutex;

use super::credentials::{CredentialSource, Found};
use super::error::RegistryError;
use super::reference::is_loopback_host;
use crate::http::{read_capped, BodyError};

/// The most a token answer may hold: a JWT with many scopes is a few KiB.
const TOKEN_ANSWER_LIMIT: u64 = 64 << 10;

/// Lifetime of a token whose response gives none (the spec's default).
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);

/// How the registry asked to be authenticated, from its last 401.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

#[derive(Debug, Default)]
struct State {
    challenge: Option<Challenge>,
    bearer: Option<Token>,
    /// A token service this client would not send credentials to, for the error.
    refused_realm: Option<String>,
    /// Bumped whenever the challenge or the token changes: a 401 to a request sent under an
    /// older generation is answered by retrying, not by giving up (another request in
    /// parallel has already brought the credentials up to date).
    generation: u64,
}

/// The `Authorization` value to send, and the auth state it was taken from.
#[derive(Clone)]
pub struct Authorization {
    pub value: Option<String>,
    generation: u64,
}

#[derive(Clone)]
struct Token {
    value: String,
    /// When to fetch the next one: a margin before the registry would reject this one.
    refresh_at: Instant,
}

// Credentials never reach a log line or a panic message through Debug.
impl Authorization {
    /// What may go to `url`: everything on the registry's own origin; elsewhere (an upload
    /// the registry placed under another name, as Quay does with its `SERVER_HOSTNAME`) only
    /// a bearer token, which is scoped to this repository, and only over HTTPS or to a
    /// loopback address. A password never leaves the origin it was given for.
    pub fn value_for(&self, own_origin: bool, url: &reqwest::Url) -> Option<&str> {
        let value = self.value.as_deref()?;
        if own_origin {
            return Some(value);
        }
        let safe_channel = url.scheme() == "https" || url.host_str().is_some_and(is_loopback_host);
        (value.starts_with("Bearer ") && safe_channel).then_some(value)
    }
}

impl std::fmt::Debug for Authorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let value = self.value.as_ref().map(|_| "***");
        write!(
            f,
            "Authorization({value:?}, generation {})",
            self.generation
        )
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Token(***, refresh at {:?})", self.refresh_at)
    }
}

/// The authorization of one client: one registry, a fixed set of scopes.
#[derive(Debug)]
pub struct Auth {
    registry: String,
    /// The registry's own URL: whether a token service over plain http may be trusted.
    registry_url: Url,
    /// `registry/repository`, for looking up repository-scoped auth file entries.
    name: String,
    scopes: Vec<String>,
    credentials: CredentialSource,
    state: Mutex<State>,
}

impl Auth {
    pub fn new(
        registry: String,
        registry_url: Url,
        name: String,
        scopes: Vec<String>,
        credentials: CredentialSource,
    ) -> Self {
        Self {
            registry,
            registry_url,
            name,
            scopes,
            credentials,
            state: Mutex::new(State::default()),
        }
    }

    /// The `Authorization` value for the next request, if the registry has asked for one.
    /// A bearer token close to expiry is replaced first, so a long push never sends a stale one.
    pub async fn header(&self, http: &reqwest::Client) -> Result<Authorization, RegistryError> {
        let mut state = self.state.lock().await;
        let value = match state.challenge.clone() {
            None => None,
            Some(Challenge::Basic) => Some(self.credentials_or_err()?.basic.header_value()),
            Some(Challenge::Bearer { realm, service }) => {
                let fresh = state
                    .bearer
                    .as_ref()
                    .filter(|t| Instant::now() < t.refresh_at);
                match fresh {
                    Some(token) => Some(format!("Bearer {}", token.value)),
                    None => {
                        let token = self.fetch_token(http, &realm, service.as_deref()).await?;
                        let header = format!("Bearer {}", token.value);
                        state.bearer = Some(token);
                        state.generation += 1;
                        Some(header)
                    }
                }
            }
        };
        Ok(Authorization {
            value,
            generation: state.generation,
        })
    }

    /// Takes note of a 401 to a request sent with `sent`: the challenge it carries, and that the
    /// token is no good. Returns whether a retry may succeed; false means the credentials
    /// themselves were rejected.
    pub async fn challenged(&self, www_authenticate: Option<&str>, sent: &Authorization) -> bool {
        let mut state = self.state.lock().await;
        if state.generation != sent.generation {
            return true;
        }
        let retry = match www_authenticate.and_then(parse_challenge) {
            // Not taken, and the request sent again without credentials: a proxy or a
            // misconfigured registry may answer the next one with its real token service.
            Some(Challenge::Bearer { realm, .. }) if !self.realm_allowed(&realm) => {
                tracing::warn!(registry = %self.registry, %realm, "not sending credentials to this token service: it is neither https nor the registry's own loopback host");
                state.refused_realm = Some(realm);
                return true;
            }
            Some(c) if state.challenge.as_ref() != Some(&c) => {
                state.challenge = Some(c);
                state.bearer = None;
                true
            }
            // The same bearer challenge: the token may have expired early; one more is worth it.
            Some(Challenge::Bearer { .. }) => state.bearer.take().is_some(),
            _ => false,
        };
        if retry {
            state.generation += 1;
        }
        retry
    }

    /// The token service this client refused to send credentials to, if any.
    pub async fn refused_realm(&self) -> Option<String> {
        self.state.lock().await.refused_realm.clone()
    }

    /// Whether credentials may go to the token service at `realm`: over https (it is often
    /// another host: Docker Hub's auth.docker.io), or over plain http only on the registry's
    /// own host when the registry is itself plain http on this machine.
    fn realm_allowed(&self, realm: &str) -> bool {
        let Ok(url) = Url::parse(realm) else {
            return false;
        };
        let registry = &self.registry_url;
        match url.scheme() {
            "https" => true,
            "http" => {
                registry.scheme() == "http"
                    && url.host_str() == registry.host_str()
                    && registry.host_str().is_some_and(is_loopback_host)
            }
            _ => false,
        }
    }

    /// Where the credentials in use came from, for error messages.
    pub fn credential_source(&self) -> Option<String> {
        self.credentials
            .lookup(&self.registry, &self.name)
            .ok()
            .flatten()
            .map(|f| f.source)
    }

    fn credentials_or_err(&self) -> Result<Found, RegistryError> {
        self.credentials
            .lookup(&self.registry, &self.name)?
            .ok_or_else(|| RegistryError::NoCredentials {
                registry: self.registry.clone(),
            })
    }

    async fn fetch_token(
        &self,
        http: &reqwest::Client,
        realm: &str,
        service: Option<&str>,
    ) -> Result<Token, RegistryError> {
        let started = Instant::now();
        let action = format!("token request to {realm}");
        if !self.realm_allowed(realm) {
            return Err(RegistryError::UnsafeRealm {
                registry: self.registry.clone(),
                realm: realm.into(),
            });
        }
        let mut url = reqwest::Url::parse(realm).map_err(|e| RegistryError::Protocol {
            registry: self.registry.clone(),
            action: action.clone(),
            detail: format!("the challenge's realm is not a URL: {e}"),
        })?;
        {
            let mut query = url.query_pairs_mut();
            query.extend_pairs(service.map(|s| ("service", s)));
            query.extend_pairs(self.scopes.iter().map(|s| ("scope", s.as_str())));
        }
        let mut request = http.get(url);
        let found = self.credentials.lookup(&self.registry, &self.name)?;
        if let Some(found) = &found {
            request = request.header(AUTHORIZATION, found.basic.header_value());
        }
        let unreachable = |source| RegistryError::Unreachable {
            registry: self.registry.clone(),
            action: action.clone(),
            source,
        };
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            return Err(match found {
                Some(found) => RegistryError::Unauthorized {
                    registry: self.registry.clone(),
                    action,
                    credential_source: found.source,
                },
                None => RegistryError::NoCredentials {
                    registry: self.registry.clone(),
                },
            });
        }
        // Quay answers failed logins with 429 and a Retry-After that grows with each one
        // (`endpoints/decorated.py`, `handle_too_many_login_attempts`): retrying only locks the
        // account for longer, so this is final.
        if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            if let Some(found) = &found {
                let retry_after = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse().ok());
                return Err(RegistryError::LockedOut {
                    registry: self.registry.clone(),
                    credential_source: found.source.clone(),
                    retry_after,
                });
            }
        }
        let body = match read_capped(response, TOKEN_ANSWER_LIMIT).await {
            Ok(body) => body,
            Err(BodyError::Read(source)) => return Err(unreachable(source)),
            Err(BodyError::TooLarge { limit }) => {
                return Err(RegistryError::TooLarge {
                    registry: self.registry.clone(),
                    action,
                    limit,
                })
            }
        };
        if !status.is_success() {
            return Err(RegistryError::status(
                &self.registry,
                &action,
                status,
                &body,
            ));
        }
        let answer: TokenResponse =
            serde_json::from_slice(&body).map_err(|e| RegistryError::Protocol {
                registry: self.registry.clone(),
                action: action.clone(),
                detail: format!("token response is not JSON with a token: {e}"),
            })?;
        let value =
            answer
                .token
                .or(answer.access_token)
                .ok_or_else(|| RegistryError::Protocol {
                    registry: self.registry.clone(),
                    action,
                    detail: "token response has neither `token` nor `access_token`".into(),
                })?;
        let lifetime = answer
            .expires_in
            .filter(|&s| s > 0)
            .map_or(DEFAULT_TOKEN_LIFETIME, Duration::from_secs);
        tracing::debug!(registry = %self.registry, lifetime_s = lifetime.as_secs(), "new bearer token");
        Ok(Token {
            value,
            refresh_at: started + lifetime - refresh_margin(lifetime),
        })
    }
}

/// Renew a quarter of the lifetime early (at most 30 s), so a request started with the token
/// still finds it valid when the registry checks it.
fn refresh_margin(lifetime: Duration) -> Duration {
    (lifetime / 4).min(Duration::from_secs(30))
}

#[derive(Deserialize)]
struct TokenResponse {
    token: Option<String>,
    access_token: Option<String>,
    expires_in: Option<u64>,
}

fn parse_challenge(header: &str) -> Option<Challenge> {
    let challenges = http_auth::parse_challenges(header).ok()?;
    let find = |scheme: &str| {
        challenges
            .iter()
            .find(|c| c.scheme.eq_ignore_ascii_case(scheme))
    };
    if let Some(bearer) = find("bearer") {
        let param = |name: &str| {
            bearer
                .params
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.to_unescaped())
        };
        return Some(Challenge::Bearer {
            realm: param("realm")?,
            service: param("service"),
        });
    }
    find("basic").map(|_| Challenge::Basic)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_and_basic_challenges() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="reg",scope="repository:a/b:pull""#,
        );
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("reg".into())
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="registry""#),
            Some(Challenge::Basic)
        );
        assert_eq!(
            parse_challenge("Bearer service=\"x\""),
            None,
            "a bearer challenge needs a realm"
        );
        assert_eq!(parse_challenge("garbage ,,, ="), None);
    }

    #[test]
    fn debug_output_never_shows_a_credential() {
        let auth = Authorization {
            value: Some("Bearer s3cret-token".into()),
            generation: 1,
        };
        let token = Token {
            value: "s3cret-token".into(),
            refresh_at: Instant::now(),
        };
        for shown in [format!("{auth:?}"), format!("{token:?}")] {
            assert!(!shown.contains("s3cret"), "{shown}");
        }
    }

    #[test]
    fn tokens_are_renewed_before_they_expire() {
        assert_eq!(
            refresh_margin(Duration::from_secs(4)),
            Duration::from_secs(1)
        );
        assert_eq!(
            refresh_margin(Duration::from_secs(3600)),
            Duration::from_secs(30)
        );
    }
}
