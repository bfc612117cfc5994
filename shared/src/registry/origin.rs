//! Where a registry's requests may go, and with what: the registry's own origin gets its
//! credentials; an upload it places on another origin (Quay's `SERVER_HOSTNAME`, a registry
//! behind a proxy) is followed with what [`Authorization::value_for`] allows, and an upload URL
//! read back from a file only where the registry itself places uploads.

use std::sync::{MutexGuard, PoisonError};

use reqwest::header::{HeaderValue, AUTHORIZATION};
use reqwest::{Response, StatusCode, Url};

use super::auth::Authorization;
use super::client::RegistryClient;
use super::error::RegistryError;

impl RegistryClient {
    /// The registry placed an upload at `url`, on another origin than its own: said once.
    pub(super) fn placed_uploads_on(&self, url: &Url) {
        let origin = url.origin().ascii_serialization();
        let mut known = self.known_upload_origin();
        if known.as_deref() != Some(origin.as_str()) {
            tracing::info!(
                registry = %self.registry(),
                upload_origin = %origin,
                "the registry places its uploads on another origin (the name it knows itself \
                 by): following it, with no password and a token only over HTTPS"
            );
            *known = Some(origin);
        }
    }

    /// Whether the registry itself places uploads where `url` points: its own origin, or the
    /// other origin it answered this run with (asked with a new upload when it has not yet).
    /// An upload URL read back from a file is used only then: the file is group-writable, and
    /// a planted record must not get a token, or a byte, sent anywhere else.
    pub async fn places_uploads_at(&self, url: &Url) -> bool {
        if self.is_own_origin(url) {
            return true;
        }
        let unknown = self.known_upload_origin().is_none();
        if unknown {
            // An upload opened only to learn where uploads go; the registry purges it.
            let _ = self.start_upload().await;
        }
        self.known_upload_origin().as_deref() == Some(url.origin().ascii_serialization().as_str())
    }

    /// The other origin the registry placed an upload on this run, if it has.
    fn known_upload_origin(&self) -> MutexGuard<'_, Option<String>> {
        self.inner()
            .upload_origin
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends `request` with the credentials that may go where it goes
    /// ([`Authorization::value_for`]). A 401 from another origin than the registry's own is
    /// final: nothing that may be sent there would change it. The inner `Err` is the
    /// network's, for the caller to judge.
    pub(super) async fn execute_authorized(
        &self,
        action: &str,
        request: reqwest::Request,
        auth: &Authorization,
    ) -> Result<Result<Response, reqwest::Error>, RegistryError> {
        let (request, foreign) = self.authorized(action, request, auth)?;
        let sent = self.inner().http.execute(request).await;
        match (&sent, foreign) {
            (Ok(resp), Some(url)) if resp.status() == StatusCode::UNAUTHORIZED => {
                Err(self.foreign_refused(action, &url))
            }
            _ => Ok(sent),
        }
    }

    /// `request` with the credentials that may go where it goes; and where that is, when it
    /// is not this registry's own origin.
    fn authorized(
        &self,
        action: &str,
        mut request: reqwest::Request,
        auth: &Authorization,
    ) -> Result<(reqwest::Request, Option<Url>), RegistryError> {
        let own = self.is_own_origin(request.url());
        if let Some(value) = auth.value_for(own, request.url()) {
            let mut value = HeaderValue::from_str(value).map_err(|_| RegistryError::Protocol {
                registry: self.registry().into(),
                action: action.into(),
                detail: "the credentials cannot be sent in an HTTP header".into(),
            })?;
            value.set_sensitive(true);
            request.headers_mut().insert(AUTHORIZATION, value);
        }
        let foreign = (!own).then(|| request.url().clone());
        Ok((request, foreign))
    }

    fn foreign_refused(&self, action: &str, url: &Url) -> RegistryError {
        RegistryError::ForeignOriginRefused {
            registry: self.registry().into(),
            action: action.into(),
            origin: self.inner().repo_url.origin().ascii_serialization(),
            upload_origin: url.origin().ascii_serialization(),
        }
    }
}
