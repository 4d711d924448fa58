//! Writing a file so that a failed or interrupted write never leaves a half-written file in place.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::Result;

/// Writes `path` by letting `write` fill a temporary file in the same directory, flushing it to
/// disk and renaming it over `path` (a rename within one directory replaces the file atomically).
/// If `write` fails, or the process dies before the rename, the previous file at `path` is
/// untouched; the temporary file is removed on failure.
pub(crate) fn write_atomic(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let tmp = temp_path(path);
    let result = write(&tmp).and_then(|()| {
        fs::File::open(&tmp)?.sync_all()?;
        fs::rename(&tmp, path)?;
        Ok(())
    });
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// `dir/.name.tmp.<pid>.<n>`: hidden, unique per process and call, next to the target.
fn temp_path(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp.{}.{n}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    fn scratch_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("tapegrad-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_failing_write_leaves_the_old_file_and_no_temporary_file() {
        let dir = scratch_dir("atomic-fail");
        let path = dir.join("ckpt.bin");
        fs::write(&path, b"old checkpoint").unwrap();
        let err = write_atomic(&path, |tmp| {
            fs::write(tmp, b"half a new checkp")?;
            Err(Error::Io(std::io::Error::other("disk full")))
        });
        assert!(matches!(err, Err(Error::Io(_))));
        assert_eq!(fs::read(&path).unwrap(), b"old checkpoint");
        let left: Vec<_> = fs::read_dir(&dir).unwrap().collect();
        assert_eq!(left.len(), 1, "the temporary file was not removed");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_successful_write_replaces_the_file() {
        let dir = scratch_dir("atomic-ok");
        let path = dir.join("ckpt.bin");
        fs::write(&path, b"old").unwrap();
        write_atomic(&path, |tmp| Ok(fs::write(tmp, b"new")?)).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        fs::remove_dir_all(&dir).unwrap();
    }
}
