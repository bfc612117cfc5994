//! The first bytes of a model file, from the directory or from the Hub: `config.json` and the
//! safetensors headers are all the ModelPack config needs, whatever the model's size.

use modelcar_shared::causes::ErrorCauses;
use tokio::io::AsyncReadExt;

use crate::hub_source::HubSource;
use crate::plan::EntryKind;

/// Up to `len` bytes from the start of the file `kind` names; `Err` says why not.
pub async fn read_prefix(
    kind: &EntryKind,
    hub: Option<&HubSource>,
    len: u64,
) -> Result<Vec<u8>, String> {
    match (kind, hub) {
        (EntryKind::File { source, .. }, _) => {
            let file = tokio::fs::File::open(source)
                .await
                .map_err(|e| format!("{}: {e}", source.display()))?;
            let mut bytes = Vec::new();
            file.take(len)
                .read_to_end(&mut bytes)
                .await
                .map_err(|e| format!("{}: {e}", source.display()))?;
            Ok(bytes)
        }
        (EntryKind::HubFile { repo_path, .. }, Some(hub)) => {
            let (mut response, _) = hub
                .client
                .open_file(&hub.repo, &hub.sha, repo_path, 0)
                .await
                .map_err(|e| e.causes().to_string())?;
            let mut bytes = Vec::new();
            // Dropping the response after the prefix closes the connection: no more is read.
            while (bytes.len() as u64) < len {
                match response
                    .chunk()
                    .await
                    .map_err(|e| format!("{repo_path}: {}", e.causes()))?
                {
                    Some(chunk) => bytes.extend_from_slice(&chunk),
                    None => break,
                }
            }
            bytes.truncate(len as usize);
            Ok(bytes)
        }
        _ => Err("not a file".into()),
    }
}
