//! A small tmpfs for full-disk tests (root only: a test that cannot mount
//! one skips with the reason). Unmounted lazily on drop.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs mounted on a directory; unmounted on drop.
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    pub fn mount(dir: &Path, size: &str) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .map_err(|e| format!("mount: {e}"))?;
        if !out.status.success() {
            return Err(format!("mount -t tmpfs: {}", String::from_utf8_lossy(&out.stderr).trim()));
        }
        Ok(Tmpfs(dir.to_path_buf()))
    }

    pub fn resize(&self, size: &str) {
        let status = Command::new("mount").args(["-o", &format!("remount,size={size}")]).arg(&self.0).status();
        assert!(status.map(|s| s.success()).unwrap_or(false), "remount the tmpfs with size {size}");
    }

    /// (used, total) bytes, as df sees them.
    pub fn usage(&self) -> (u64, u64) {
        let out = Command::new("df").args(["-B1", "--output=used,size"]).arg(&self.0).output();
        let text = out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
        let nums: Vec<u64> = text.split_whitespace().filter_map(|w| w.parse().ok()).collect();
        (nums.first().copied().unwrap_or(0), nums.get(1).copied().unwrap_or(0))
    }

    /// Writes a file until the tmpfs has no room left.
    pub fn fill(&self) {
        let mut filler = std::fs::File::create(self.0.join("filler")).expect("filler file");
        let chunk = vec![0u8; 64 * 1024];
        loop {
            match filler.write(&chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(e) => panic!("filling the tmpfs: {e}"),
            }
        }
        // Whatever fits of a smaller write, so no page is left partly free.
        while matches!(filler.write(&[0u8; 512]), Ok(n) if n > 0) {}
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}
