//! Talking to OCI distribution registries (`docs/design.md`, "Registries"): references, credentials,
//! authentication and the protocol calls build-push and mirror share.

mod auth;
pub mod client;
pub mod credentials;
mod error;
mod origin;
pub mod range;
pub mod reference;
mod tls;
mod upload;

pub use client::{ConnectOptions, RawManifest, RegistryClient, DEFAULT_RETRIES};
pub use credentials::{Basic, CredentialSource};
pub use error::RegistryError;
pub use reference::{Reference, ReferenceError};
pub use upload::UploadSession;
