//! One file from the Hub into the model directory: appended to a partial file (kept beside
//! the model, on the same volume), resumed with a Range request from the partial file's
//! length after a drop or on a rerun, hashed on the way, and renamed into place only once its
//! size and hash match what the Hub lists. A file that fails the check is deleted and fetched
//! once more from byte 0; it is never kept.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::AsyncWriteExt;

use modelcar_shared::atomic_file::FileLock;
use modelcar_shared::causes::ErrorCauses;
use modelcar_shared::hub::{FileHasher, HubClient, PieceError, RepoEntry, VerifiedBody};
use modelcar_shared::perms::{create_shared_dir_all, set_shared_file_mode};
use modelcar_shared::progress::Progress;

use crate::error::FetchError;

pub struct FileJob<'a> {
    pub client: &'a HubClient,
    pub repo: &'a str,
    pub sha: &'a str,
    pub entry: &'a RepoEntry,
    pub partial: PathBuf,
    pub dest: PathBuf,
    /// Attempts when the connection keeps dropping (each goes on from where it stopped).
    pub attempts: u32,
}

/// A file in place: its sha256 and how many bytes this run downloaded for it.
pub struct Fetched {
    pub sha256: String,
    pub downloaded: u64,
}

pub async fn fetch_file(job: &FileJob<'_>, progress: &Progress) -> Result<Fetched, FetchError> {
    // Two runs on one workspace must never append to the same partial file: the second
    // waits, and then finds the file in place.
    let _lock = match lock_partial(job).await? {
        Locked::First(lock) => lock,
        Locked::AfterWaiting(lock) => {
            if let Some(sha256) = verified_in_place(job).await {
                tracing::info!("{}: put in place by the other run", job.entry.path);
                return Ok(Fetched {
                    sha256,
                    downloaded: 0,
                });
            }
            lock
        }
    };
    let mut downloaded = 0;
    let mut refetched = false;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let (hasher, have) = resume_point(job).await?;
        match append_rest(job, hasher, have, progress).await {
            Ok((hasher, got)) => {
                downloaded += got;
                let hashes = hasher.finish();
                match hashes.check(job.entry) {
                    Ok(()) => {
                        put_in_place(job).await?;
                        return Ok(Fetched {
                            sha256: hashes.sha256,
                            downloaded,
                        });
                    }
                    Err(bad) => {
                        remove(&job.partial).await?;
                        if refetched {
                            return Err(FetchError::Corrupt {
                                path: job.entry.path.clone(),
                                what: bad.what,
                                expected: bad.expected,
                                actual: bad.actual,
                            });
                        }
                        tracing::warn!(
                            "{} failed its check ({} {}, the Hub lists {}): deleted, fetching it again",
                            job.entry.path,
                            bad.what,
                            bad.actual,
                            bad.expected
                        );
                        refetched = true;
                    }
                }
            }
            Err(Attempt::Final(e)) => return Err(e),
            Err(Attempt::Dropped { got, error }) => {
                downloaded += got;
                if attempt >= job.attempts {
                    return Err(FetchError::GaveUp {
                        path: job.entry.path.clone(),
                        attempts: attempt,
                        last: error,
                    });
                }
                let pause = Duration::from_millis(500 << attempt.min(5));
                tracing::warn!(
                    "the download of {} broke off ({error}); going on from where it stopped in {pause:?}",
                    job.entry.path
                );
                tokio::time::sleep(pause).await;
            }
        }
    }
}

/// The lock on a file's partial download, and whether another run held it first.
enum Locked {
    First(FileLock),
    AfterWaiting(FileLock),
}

async fn lock_partial(job: &FileJob<'_>) -> Result<Locked, FetchError> {
    let lock_path = FileLock::path_for(&job.partial);
    let write_error = |source| FetchError::Write {
        path: lock_path.clone(),
        source,
    };
    if let Some(dir) = lock_path.parent() {
        create_shared_dir_all(dir).map_err(write_error)?;
    }
    if let Some(lock) = FileLock::try_exclusive(&lock_path).map_err(write_error)? {
        return Ok(Locked::First(lock));
    }
    tracing::info!(
        "{}: another fetch-model run is downloading it; waiting for it",
        job.entry.path
    );
    let path = lock_path.clone();
    let lock = tokio::task::spawn_blocking(move || FileLock::exclusive(&path))
        .await
        .expect("locking does not panic")
        .map_err(write_error)?;
    Ok(Locked::AfterWaiting(lock))
}

/// The sha256 of the file at the job's destination, if it is there whole and hashes right.
async fn verified_in_place(job: &FileJob<'_>) -> Option<String> {
    let (entry, dest) = (job.entry.clone(), job.dest.clone());
    let hashes = tokio::task::spawn_blocking(move || crate::plan::hash_file(&entry, &dest))
        .await
        .ok()??;
    hashes.check(job.entry).ok()?;
    Some(hashes.sha256)
}

/// How an attempt ended short of a whole file.
enum Attempt {
    /// The connection dropped after `got` more bytes: try again from there.
    Dropped {
        got: u64,
        error: String,
    },
    Final(FetchError),
}

/// The partial file's length and the hash over it (read back: it may be from an earlier run).
/// A partial longer than the file cannot be right and is started again.
async fn resume_point(job: &FileJob<'_>) -> Result<(FileHasher, u64), FetchError> {
    let write_error = |source| FetchError::Write {
        path: job.partial.clone(),
        source,
    };
    let len = match tokio::fs::symlink_metadata(&job.partial).await {
        Ok(meta) if !meta.is_file() => {
            return Err(write_error(std::io::Error::other(
                "not a regular file (a symlink?): refused",
            )))
        }
        Ok(meta) => meta.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => return Err(write_error(e)),
    };
    if len > job.entry.size {
        remove(&job.partial).await?;
        return Ok((FileHasher::new(job.entry), 0));
    }
    let (partial, entry) = (job.partial.clone(), job.entry.clone());
    let hasher = tokio::task::spawn_blocking(move || {
        let mut hasher = FileHasher::new(&entry);
        if len > 0 {
            let file = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(nix::libc::O_NOFOLLOW)
                .open(&partial)?;
            hasher.update_from(&mut file.take(len))?;
        }
        Ok(hasher)
    })
    .await
    .expect("hashing does not panic")
    .map_err(write_error)?;
    if len > 0 {
        tracing::info!(
            "{}: {len} bytes from an earlier attempt, going on from there",
            job.entry.path
        );
    }
    Ok((hasher, len))
}

/// Downloads what the partial file lacks and appends it.
async fn append_rest(
    job: &FileJob<'_>,
    mut hasher: FileHasher,
    have: u64,
    progress: &Progress,
) -> Result<(FileHasher, u64), Attempt> {
    let final_error = |e: FetchError| Attempt::Final(e);
    let write_error = |source| {
        Attempt::Final(FetchError::Write {
            path: job.partial.clone(),
            source,
        })
    };
    if have == job.entry.size {
        if have == 0 {
            // An empty file: nothing to download, but the file must exist to be put in place.
            open_partial(&job.partial, false)
                .await
                .map_err(write_error)?;
        }
        return Ok((hasher, 0));
    }
    let (response, body_start) = match job
        .client
        .open_file(job.repo, job.sha, &job.entry.path, have)
        .await
    {
        Ok(opened) => opened,
        Err(e) if e.is_transient() => {
            return Err(Attempt::Dropped {
                got: 0,
                error: e.causes().to_string(),
            })
        }
        Err(e) => return Err(final_error(e.into())),
    };
    let mut file = open_partial(&job.partial, body_start == have)
        .await
        .map_err(write_error)?;
    if body_start != have {
        // The server sent the whole file: start the hash and the file again.
        hasher = FileHasher::new(job.entry);
    }
    let mut got = 0;
    let mut body = VerifiedBody::new(job.entry, response, hasher, body_start);
    while let Some(piece) = body.next().await {
        let bytes = match piece {
            Ok(bytes) => bytes,
            Err(PieceError::Broken(e)) => {
                file.flush().await.map_err(write_error)?;
                return Err(Attempt::Dropped {
                    got,
                    error: e.causes().to_string(),
                });
            }
            Err(PieceError::TooLong { got, size }) => {
                return Err(final_error(FetchError::WrongSize {
                    path: job.entry.path.clone(),
                    got,
                    size,
                }));
            }
        };
        file.write_all(&bytes).await.map_err(write_error)?;
        got += bytes.len() as u64;
        progress.add(bytes.len() as u64);
    }
    file.flush().await.map_err(write_error)?;
    file.sync_all().await.map_err(write_error)?;
    let written = body.position();
    if written != job.entry.size {
        return Err(Attempt::Dropped {
            got,
            error: format!("the body ended after {written} of {} bytes", job.entry.size),
        });
    }
    Ok((body.into_hasher(), got))
}

async fn open_partial(path: &Path, append: bool) -> std::io::Result<tokio::fs::File> {
    if let Some(dir) = path.parent() {
        create_shared_dir_all(dir)?;
    }
    // Never through a symlink: one planted in the workspace must not redirect the download.
    let file = tokio::fs::OpenOptions::new()
        .create(true)
        .append(append)
        .write(true)
        .truncate(!append)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)
        .await?;
    set_shared_file_mode(&file.try_clone().await?.into_std().await)?;
    Ok(file)
}

/// Renames the checked partial file to its place in the model directory.
async fn put_in_place(job: &FileJob<'_>) -> Result<(), FetchError> {
    let write_error = |source| FetchError::Write {
        path: job.dest.clone(),
        source,
    };
    if let Some(dir) = job.dest.parent() {
        create_shared_dir_all(dir).map_err(write_error)?;
    }
    tokio::fs::rename(&job.partial, &job.dest)
        .await
        .map_err(write_error)
}

async fn remove(path: &Path) -> Result<(), FetchError> {
    match tokio::fs::remove_file(path).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(FetchError::Write {
            path: path.into(),
            source,
        }),
    }
}
