//! File access at the binary's edge: size-capped reads, private key files,
//! atomic writes (a crash never leaves half a file).

use std::fs;
use std::io::{Read, Write};
use std::path::Path;

use anyhow::{bail, Context, Result};

/// Reads at most `limit` bytes; a larger file is refused rather than truncated.
pub fn read_capped(path: &Path, limit: u64) -> Result<Vec<u8>> {
    let file = fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    read_open(file, path, limit)
}

/// Reads an open `file` (at `path`, for messages) of at most `limit` bytes.
fn read_open(file: fs::File, path: &Path, limit: u64) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut buf)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if buf.len() as u64 > limit {
        bail!("{} is larger than {} bytes", path.display(), limit);
    }
    Ok(buf)
}

fn utf8(bytes: Vec<u8>, path: &Path) -> Result<String> {
    String::from_utf8(bytes).with_context(|| format!("{} is not UTF-8 text", path.display()))
}

pub fn read_text(path: &Path, limit: u64) -> Result<String> {
    utf8(read_capped(path, limit)?, path)
}

/// Reads a private key file, refusing one that others can read and anything
/// that is not a regular file. The file is opened without blocking, so a FIFO
/// or a device at the path is refused at once instead of stalling the reader.
pub fn read_private(path: &Path) -> Result<String> {
    let mut opts = fs::OpenOptions::new();
    opts.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(libc::O_NONBLOCK);
    }
    let file = opts
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    let meta = file
        .metadata()
        .with_context(|| format!("cannot read {}", path.display()))?;
    if !meta.is_file() {
        bail!("{} is not a regular file", path.display());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            bail!(
                "{} is readable by group or others (mode {:o}); a signing key must be private: chmod 600 {}",
                path.display(),
                mode,
                path.display()
            );
        }
    }
    utf8(read_open(file, path, 64 * 1024)?, path)
}

/// Writes `bytes` to `path` through a temporary file and a rename, with `mode`.
/// With `create_new`, an existing file is never replaced.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32, create_new: bool) -> Result<()> {
    let staged = Staged::write(path, bytes, mode)?;
    if create_new {
        staged.create()
    } else {
        staged.replace()
    }
}

/// New file content written and synced beside its destination, not yet in
/// place: [`Staged::replace`] or [`Staged::create`] puts it there; dropping
/// it removes it, leaving the destination untouched.
#[derive(Debug)]
pub struct Staged {
    tmp: std::path::PathBuf,
    path: std::path::PathBuf,
}

impl Staged {
    pub fn write(path: &Path, bytes: &[u8], mode: u32) -> Result<Staged> {
        let dir = parent(path);
        let name = path
            .file_name()
            .context("the output path has no file name")?;
        let tmp = dir.join(format!(
            ".{}.tmp-{}-{}",
            name.to_string_lossy(),
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(mode);
        }
        #[cfg(not(unix))]
        let _ = mode;
        let staged = Staged {
            tmp,
            path: path.to_owned(),
        };
        let mut f = opts
            .open(&staged.tmp)
            .with_context(|| format!("cannot create {}", staged.tmp.display()))?;
        f.write_all(bytes)?;
        f.sync_all()?;
        Ok(staged)
    }

    /// Atomically replaces the destination, then syncs the directory so the
    /// rename survives a crash.
    pub fn replace(self) -> Result<()> {
        fs::rename(&self.tmp, &self.path)
            .with_context(|| format!("cannot write {}", self.path.display()))?;
        sync_dir(parent(&self.path))
    }

    /// Creates the destination; fails if it exists (no overwrite race:
    /// `hard_link` fails if the target appeared meanwhile).
    pub fn create(self) -> Result<()> {
        if self.path.exists() {
            bail!(
                "{} already exists; refusing to overwrite it",
                self.path.display()
            );
        }
        fs::hard_link(&self.tmp, &self.path)
            .with_context(|| format!("cannot create {}", self.path.display()))?;
        sync_dir(parent(&self.path))
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.tmp);
    }
}

fn parent(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync the directory {}", dir.display()))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Creates a private directory (0700), or narrows an existing one to it.
pub fn private_dir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the directory {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot make {} private (0700)", dir.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn a_fifo_in_place_of_a_key_is_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("key.pem");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(read_private(&fifo).map_err(|e| e.to_string()));
        });
        let got = rx
            .recv_timeout(std::time::Duration::from_secs(5))
            .expect("reading a FIFO must not block");
        assert!(got.unwrap_err().contains("not a regular file"));
    }

    #[test]
    fn a_failed_staging_leaves_the_file_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.pem");
        fs::write(&path, "old").unwrap();
        let staged = Staged::write(&path, b"new", 0o600).unwrap();
        drop(staged);
        assert_eq!(fs::read_to_string(&path).unwrap(), "old");
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary file left"
        );
        Staged::write(&path, b"new", 0o600)
            .unwrap()
            .replace()
            .unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "new");
    }
}
