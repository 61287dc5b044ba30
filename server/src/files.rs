//! File access at the binary's edge: size-capped reads, private key files,
//! atomic writes (a crash never leaves half a file).

use std::fs;
use std::io::{Read, Write};
use std::path::Path;

use anyhow::{bail, Context, Result};

/// Reads at most `limit` bytes; a larger file is refused rather than truncated.
pub fn read_capped(path: &Path, limit: u64) -> Result<Vec<u8>> {
    let file = fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut buf = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut buf)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if buf.len() as u64 > limit {
        bail!("{} is larger than {} bytes", path.display(), limit);
    }
    Ok(buf)
}

pub fn read_text(path: &Path, limit: u64) -> Result<String> {
    let bytes = read_capped(path, limit)?;
    String::from_utf8(bytes).with_context(|| format!("{} is not UTF-8 text", path.display()))
}

/// Reads a private key file, refusing one that others can read.
pub fn read_private(path: &Path) -> Result<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = fs::metadata(path).with_context(|| format!("cannot open {}", path.display()))?;
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
    read_text(path, 64 * 1024)
}

/// Writes `bytes` to `path` through a temporary file and a rename, with `mode`.
/// With `create_new`, an existing file is never replaced.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32, create_new: bool) -> Result<()> {
    if create_new && path.exists() {
        bail!(
            "{} already exists; refusing to overwrite it",
            path.display()
        );
    }
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .context("the output path has no file name")?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
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
    let result = (|| -> Result<()> {
        let mut f = opts
            .open(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        f.write_all(bytes)?;
        f.sync_all()?;
        if create_new {
            // hard_link fails if the target appeared meanwhile: no overwrite race.
            fs::hard_link(&tmp, path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            fs::remove_file(&tmp)?;
        } else {
            fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}
