//! Writing a file so that a failed or interrupted write never leaves a half-written file in place.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::Result;

/// Writes `path` by letting `write` fill a temporary file in the same directory, flushing it to
/// disk and renaming it over `path` (a rename within one directory replaces the file atomically).
/// If `write` fails, or the process dies before the rename, the previous file at `path` is
/// untouched; the temporary file is removed on failure. Temporary files of the same target left
/// by a process that was killed mid-save are removed first.
///
/// The file gets the permissions of any new file (`0666` less the umask), whatever mode the
/// writer creates its file with.
pub(crate) fn write_atomic(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    remove_stale_temporaries(path);
    let tmp = temp_path(path);
    // created here so that it gets the umask's permissions, restored after `write` (some writers
    // create their file 0600)
    let perms = fs::File::create(&tmp)?.metadata()?.permissions();
    let result = write(&tmp).and_then(|()| {
        fs::set_permissions(&tmp, perms)?;
        fs::File::open(&tmp)?.sync_all()?;
        fs::rename(&tmp, path)?;
        Ok(())
    });
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// The prefix of every temporary file of `path`: `.name.tmp.`.
fn temp_prefix(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!(".{name}.tmp.")
}

/// `dir/.name.tmp.<pid>.<n>`: hidden, unique per process and call, next to the target.
fn temp_path(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!("{}{}.{n}", temp_prefix(path), std::process::id()))
}

/// Removes the temporary files of `path` whose writing process no longer runs (it was killed
/// before it could rename or remove them). Those of live processes, this one included, may be
/// saves in progress and are left alone.
fn remove_stale_temporaries(path: &Path) {
    let prefix = temp_prefix(path);
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(&prefix) else {
            continue;
        };
        let pid = rest.split('.').next().and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid {
            if pid != std::process::id() && !process_is_alive(pid) {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
}

/// Whether a process with this id exists (`kill(pid, 0)` fails with `ESRCH` only when none
/// does; `EPERM` means it exists under another user).
#[cfg(unix)]
fn process_is_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 sends nothing; it only checks that the process exists.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Elsewhere a temporary file is never taken for stale.
#[cfg(not(unix))]
fn process_is_alive(_pid: u32) -> bool {
    true
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
    fn a_save_removes_the_temporary_files_of_a_killed_save_but_not_of_a_live_one() {
        let dir = scratch_dir("atomic-stale");
        let path = dir.join("ckpt.bin");
        // a pid that cannot be running: above the kernel's pid_max (at most 2^22)
        let dead = dir.join(".ckpt.bin.tmp.4194305.0");
        let live = dir.join(format!(".ckpt.bin.tmp.{}.99", std::process::id()));
        let other_target = dir.join(".other.bin.tmp.4194305.0");
        for f in [&dead, &live, &other_target] {
            fs::write(f, b"half a checkpoint").unwrap();
        }
        write_atomic(&path, |tmp| Ok(fs::write(tmp, b"new")?)).unwrap();
        assert!(!dead.exists(), "the dead process's temporary file was left");
        assert!(live.exists(), "a live process's temporary file was removed");
        assert!(
            other_target.exists(),
            "another target's temporary file was removed"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_saved_file_gets_the_umask_permissions_even_if_the_writer_used_0600() {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let dir = scratch_dir("atomic-mode");
        let path = dir.join("ckpt.bin");
        let reference = dir.join("reference");
        fs::write(&reference, b"").unwrap();
        let expected = fs::metadata(&reference).unwrap().permissions().mode() & 0o777;
        write_atomic(&path, |tmp| {
            // a writer that (re)creates its file private, as some serializers do
            fs::remove_file(tmp)?;
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(tmp)?;
            std::io::Write::write_all(&mut f, b"new")?;
            Ok(())
        })
        .unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(
            mode, expected,
            "saved with {mode:o}, a new file gets {expected:o}"
        );
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
