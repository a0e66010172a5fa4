//! File helpers of the quorum's storage: whole files replaced atomically
//! (temporary file, fsync, rename, directory fsync) and the checksummed
//! record framing of the Raft log file.
//!
//! A log record is `[u32 length][u32 crc32c][length bytes of JSON]`, big
//! endian. These functions do blocking I/O: callers run them on the
//! blocking pool.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

/// Bytes before a log record's JSON: its length and checksum.
pub(crate) const RECORD_HEADER: usize = 8;

/// The largest log record accepted when reading one back (a corrupt length
/// must not make us allocate gigabytes).
pub(crate) const MAX_RECORD: usize = 64 * 1024 * 1024;

/// Replaces `path` with `bytes` so that a crash leaves the old or the new
/// content, never a mix: write a temporary file, fsync it, rename it over
/// `path`, fsync the directory.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    sync_dir(path)
}

/// Fsyncs the directory holding `path`, so a create or rename in it is durable.
pub(crate) fn sync_dir(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) => File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

/// The content of `path`, or `None` if it does not exist.
pub(crate) fn read_optional(path: &Path) -> io::Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Appends one framed record holding `json` to `out`.
pub(crate) fn frame_record(json: &[u8], out: &mut Vec<u8>) {
    debug_assert!(json.len() <= MAX_RECORD, "a log record over the read limit could never be read back");
    out.extend_from_slice(&(json.len() as u32).to_be_bytes());
    out.extend_from_slice(&crc32c(json).to_be_bytes());
    out.extend_from_slice(json);
}

/// Why a framed record could not be read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RecordError {
    /// The bytes end inside the record (a torn write at the end of a file).
    Torn,
    /// The record is complete but its length or checksum is wrong.
    Corrupt(String),
}

/// The record starting at `buf[0]`: its JSON and the bytes it takes.
pub(crate) fn read_record(buf: &[u8]) -> Result<(&[u8], usize), RecordError> {
    let Some(header) = buf.get(..RECORD_HEADER) else { return Err(RecordError::Torn) };
    let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let crc = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
    if len > MAX_RECORD {
        return Err(RecordError::Corrupt(format!("record length {len} over {MAX_RECORD}")));
    }
    let Some(json) = buf.get(RECORD_HEADER..RECORD_HEADER + len) else { return Err(RecordError::Torn) };
    if crc32c(json) != crc {
        return Err(RecordError::Corrupt("crc mismatch".into()));
    }
    Ok((json, RECORD_HEADER + len))
}

fn crc32c(bytes: &[u8]) -> u32 {
    // CRC-32 fits u32; the crate returns every width as u64.
    crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, bytes) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_torn_or_corrupt_ones_are_told_apart() {
        let mut buf = Vec::new();
        frame_record(br#"{"a":1}"#, &mut buf);
        frame_record(br#"{"b":2}"#, &mut buf);
        let (json, used) = read_record(&buf).expect("first");
        assert_eq!(json, br#"{"a":1}"#);
        let (json, _) = read_record(&buf[used..]).expect("second");
        assert_eq!(json, br#"{"b":2}"#);
        assert_eq!(read_record(&buf[used..buf.len() - 1]), Err(RecordError::Torn));
        assert_eq!(read_record(&buf[..3]), Err(RecordError::Torn));
        let mut bad = buf.clone();
        bad[RECORD_HEADER] ^= 1;
        assert!(matches!(read_record(&bad), Err(RecordError::Corrupt(_))));
        let huge = [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0];
        assert!(matches!(read_record(&huge), Err(RecordError::Corrupt(_))));
    }

    #[test]
    fn atomic_writes_replace_the_whole_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("vote.json");
        assert_eq!(read_optional(&p).expect("read"), None);
        write_atomic(&p, b"one").expect("write");
        write_atomic(&p, b"two").expect("write");
        assert_eq!(read_optional(&p).expect("read").as_deref(), Some(&b"two"[..]));
        assert!(!p.with_extension("tmp").exists());
    }
}
