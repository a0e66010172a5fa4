//! Reads that never wait for the disk: `preadv2(2)` with `RWF_NOWAIT`.
//!
//! A fetch near the log end reads what producers just appended, which the
//! page cache holds. Locating its batches takes a few header reads; done on
//! the async worker that handles the request, they save the blocking pool's
//! two thread hand-offs per fetch (a profile of small-batch end-to-end load
//! put context switches first among the broker's costs). Such a read must
//! not block: [`Access::Resident`] reads fail with
//! [`io::ErrorKind::WouldBlock`] instead, and the caller repeats the whole
//! read on the blocking pool.
//!
//! Invariant: a `Resident` read returns either every byte asked for or an
//! error; it never touches the disk. A file system or kernel without
//! `RWF_NOWAIT` (`EOPNOTSUPP`) also gives `WouldBlock`, so the caller always
//! has its blocking fallback.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;

/// How a read may reach a file's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Any way, waiting for the disk if it must (blocking threads only).
    Blocking,
    /// From the page cache only; `WouldBlock` otherwise (async workers).
    Resident,
}

/// The error a `Resident` read gives when the bytes are not all cached.
pub fn would_block() -> io::Error {
    io::Error::from(io::ErrorKind::WouldBlock)
}

/// Whether `e` is the error of a `Resident` read that would have waited.
pub fn is_would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}

/// Fills `buf` from `file` at `pos`, as `read_exact_at` does, under `access`.
pub fn read_exact_at(file: &File, buf: &mut [u8], pos: u64, access: Access) -> io::Result<()> {
    match access {
        Access::Blocking => file.read_exact_at(buf, pos),
        Access::Resident => read_cached(file, buf, pos),
    }
}

/// `buf.len()` bytes at `pos` from the page cache, or `WouldBlock`. A short
/// answer (part of the range cached, or the end of the file) is
/// `WouldBlock` too: the blocking read then tells which it was.
fn read_cached(file: &File, buf: &mut [u8], pos: u64) -> io::Result<()> {
    let Ok(offset) = libc::off_t::try_from(pos) else { return Err(would_block()) };
    let iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    // SAFETY: `iov` describes `buf`, which is writable for `buf.len()` bytes
    // and outlives the call (the kernel writes at most `iov_len` bytes into
    // it); the descriptor is open for the call (borrowed from `file`).
    let n = unsafe { libc::preadv2(file.as_raw_fd(), &raw const iov, 1, offset, libc::RWF_NOWAIT) };
    match usize::try_from(n) {
        Ok(n) if n == buf.len() => Ok(()),
        Ok(_) => Err(would_block()),
        Err(_) => {
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EAGAIN) | Some(libc::EOPNOTSUPP) | Some(libc::EINTR) => Err(would_block()),
                _ => Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes just written are in the page cache: a resident read returns
    /// them exactly, as the blocking read does; past the end of the file it
    /// would block (never a short buffer passed off as whole).
    #[test]
    fn a_resident_read_returns_cached_bytes_or_would_block() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).expect("write");
        let file = File::open(&path).expect("open");

        let mut got = vec![0u8; 100];
        read_exact_at(&file, &mut got, 4090, Access::Resident).expect("cached");
        assert_eq!(got, data[4090..4190]);
        let mut blocking = vec![0u8; 100];
        read_exact_at(&file, &mut blocking, 4090, Access::Blocking).expect("read");
        assert_eq!(got, blocking);

        let mut past = vec![0u8; 100];
        let e = read_exact_at(&file, &mut past, 9_950, Access::Resident).expect_err("only 50 bytes left");
        assert!(is_would_block(&e), "{e}");
        let e = read_exact_at(&file, &mut past, 20_000, Access::Resident).expect_err("past the end");
        assert!(is_would_block(&e), "{e}");
    }

    /// Pages dropped from the cache are not read from the disk: the read
    /// would block. (`POSIX_FADV_DONTNEED` drops clean pages; where the
    /// kernel keeps them anyway the read succeeds, and the test checks the
    /// bytes instead.)
    #[test]
    fn an_evicted_page_would_block() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        std::fs::write(&path, vec![7u8; 1 << 16]).expect("write");
        let file = File::open(&path).expect("open");
        file.sync_all().expect("sync");
        // SAFETY: advisory call on an open descriptor; no memory is passed.
        let rc = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        assert_eq!(rc, 0);
        let mut got = vec![0u8; 61];
        match read_exact_at(&file, &mut got, 30_000, Access::Resident) {
            Err(e) => assert!(is_would_block(&e), "{e}"),
            Ok(()) => assert_eq!(got, vec![7u8; 61]),
        }
        read_exact_at(&file, &mut got, 30_000, Access::Blocking).expect("a blocking read reaches the disk");
        assert_eq!(got, vec![7u8; 61]);
    }
}
