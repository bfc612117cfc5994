//! Waiting for `Ready` with a watch on the one InferenceService or LLMInferenceService (both
//! report Knative-style conditions with an aggregate `Ready`): each condition change is
//! logged as it happens, a watch the server ends (they time out after minutes) is opened again
//! from the last resourceVersion seen, and an expired one (410 Gone) starts over from a fresh
//! read. No polling: a model that takes 12 minutes to load costs a handful of requests.

use modelcar_shared::causes::ErrorCauses;
use std::time::{Duration, SystemTime};

use futures_util::{pin_mut, StreamExt};
use kube::api::{Api, DynamicObject, ListParams, WatchEvent, WatchParams};
use tokio::time::Instant;

use crate::cluster::api_status;
use crate::conditions::ServiceStatus;
use crate::DeployError;

/// How long one watch request lasts before it is opened again: under the API server's own
/// limit (its default `--min-request-timeout` is 30 minutes) and short enough that a silently
/// dead connection is noticed.
const WATCH_SECONDS: u32 = 290;

/// Pause before opening a watch again after the connection failed.
const RECONNECT_PAUSE: Duration = Duration::from_secs(2);

#[derive(Debug, Clone)]
pub struct Ready {
    pub url: Option<String>,
    pub ready_at_utc: String,
}

/// The object as last seen while waiting.
struct Watched {
    name: String,
    /// `KIND NAME`, for messages.
    what: String,
    resource_version: String,
    status: ServiceStatus,
}

impl Watched {
    fn new(object: &DynamicObject) -> Self {
        let name = object.metadata.name.clone().unwrap_or_default();
        let kind = object.types.as_ref().map_or("object", |t| t.kind.as_str());
        let mut watched = Self {
            what: format!("{kind} {name}"),
            name,
            resource_version: String::new(),
            status: ServiceStatus::default(),
        };
        watched.update(object);
        watched
    }

    /// Takes in a newer reading and logs each condition that changed.
    fn update(&mut self, object: &DynamicObject) {
        let status = ServiceStatus::of(object);
        for condition in status.changed_since(&self.status) {
            tracing::info!("{}: {condition}", self.name);
        }
        self.status = status;
        if let Some(rv) = &object.metadata.resource_version {
            self.resource_version.clone_from(rv);
        }
    }

    fn ready(&self) -> Option<Ready> {
        self.status.is_ready().then(|| Ready {
            url: self.status.url.clone(),
            ready_at_utc: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        })
    }
}

/// Waits until `applied` (the object the apply returned) is Ready, at most `timeout`.
pub async fn until_ready(
    api: &Api<DynamicObject>,
    applied: &DynamicObject,
    timeout: Duration,
) -> Result<Ready, DeployError> {
    let mut watched = Watched::new(applied);
    if let Some(ready) = watched.ready() {
        return Ok(ready);
    }
    tracing::info!(
        "{}: waiting up to {} for Ready",
        watched.name,
        humantime::format_duration(timeout)
    );
    let deadline = Instant::now() + timeout;
    match tokio::time::timeout_at(deadline, follow(api, &mut watched)).await {
        Ok(outcome) => outcome,
        Err(_elapsed) => Err(DeployError::NotReady {
            what: watched.what.clone(),
            timeout,
            conditions: watched.status.conditions.clone(),
            pods: Vec::new(),
        }),
    }
}

/// Watches until Ready; every way a watch ends other than a real error opens another.
async fn follow(api: &Api<DynamicObject>, watched: &mut Watched) -> Result<Ready, DeployError> {
    let params = WatchParams::default()
        .fields(&format!("metadata.name={}", watched.name))
        .timeout(WATCH_SECONDS);
    loop {
        if let Some(ready) = watched.ready() {
            return Ok(ready);
        }
        let events = match api.watch(&params, &watched.resource_version).await {
            Ok(events) => events,
            Err(e) if api_status(&e) == Some(410) => {
                reread(api, watched).await?;
                continue;
            }
            Err(e) if is_transient(&e) => {
                tracing::warn!(
                    "{}: cannot watch ({}); trying again",
                    watched.name,
                    e.causes()
                );
                tokio::time::sleep(RECONNECT_PAUSE).await;
                continue;
            }
            Err(e) => return Err(DeployError::kube("watch", &watched.what, e)),
        };
        pin_mut!(events);
        while let Some(event) = events.next().await {
            match event {
                Ok(WatchEvent::Added(object) | WatchEvent::Modified(object)) => {
                    watched.update(&object);
                }
                Ok(WatchEvent::Bookmark(mark)) => {
                    watched.resource_version = mark.metadata.resource_version;
                }
                Ok(WatchEvent::Deleted(_)) => {
                    return Err(DeployError::Deleted(watched.what.clone()))
                }
                Ok(WatchEvent::Error(status)) if status.code == 410 => {
                    reread(api, watched).await?;
                    break;
                }
                Ok(WatchEvent::Error(status)) => {
                    let e = kube::Error::Api(status);
                    return Err(DeployError::kube("watch", &watched.what, e));
                }
                Err(e) => {
                    tracing::warn!(
                        "{}: the watch broke off ({}); watching again",
                        watched.name,
                        e.causes()
                    );
                    break;
                }
            }
            if let Some(ready) = watched.ready() {
                return Ok(ready);
            }
        }
    }
}

/// After the server forgot the resourceVersion being watched from: list the one object
/// afresh and watch on from the list's resourceVersion (the object's own may be older than
/// what the server still remembers), so no change in between is missed.
async fn reread(api: &Api<DynamicObject>, watched: &mut Watched) -> Result<(), DeployError> {
    tracing::debug!("{}: watch expired; reading it again", watched.name);
    let params = ListParams::default().fields(&format!("metadata.name={}", watched.name));
    let list = api
        .list(&params)
        .await
        .map_err(|e| DeployError::kube("read", &watched.what, e))?;
    let Some(object) = list.items.first() else {
        return Err(DeployError::Deleted(watched.what.clone()));
    };
    watched.update(object);
    if let Some(rv) = list.metadata.resource_version {
        watched.resource_version = rv;
    }
    Ok(())
}

/// Errors a later try may not meet: the connection, or the server busy or restarting.
fn is_transient(error: &kube::Error) -> bool {
    match api_status(error) {
        Some(code) => code == 429 || code >= 500,
        // Nothing about a certificate changes by asking again.
        None => {
            matches!(
                error,
                kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_)
            ) && modelcar_shared::tls::tls_problem(error).is_none()
        }
    }
}
