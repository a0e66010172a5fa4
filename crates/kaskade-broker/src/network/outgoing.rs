//! A connection's output: response bytes and, for plaintext Fetch answers,
//! segment file ranges sent with `sendfile(2)` (the kernel copies page
//! cache to socket; the records never pass through user space).
//!
//! Invariant: bytes leave in the order they were queued. The queue holds
//! chunks in order; `tail` collects the encoded bytes of responses queued
//! after the last chunk (most responses are plain bytes, appended there
//! without a chunk of their own).

use std::collections::VecDeque;
use std::io;
use std::os::fd::AsRawFd;

use bytes::{Buf, BytesMut};
use tokio::io::Interest;
use tokio::net::TcpStream;

use super::fetch_frame::Chunk;

#[derive(Debug, Default)]
pub struct Outgoing {
    queue: VecDeque<Chunk>,
    /// Sent of the queue's first chunk, when it is a file range.
    sent_of_front: usize,
    tail: BytesMut,
    /// Bytes queued and not yet written, files included.
    pending: usize,
}

impl Outgoing {
    pub fn is_empty(&self) -> bool {
        self.pending == 0
    }

    /// Bytes waiting to be written.
    pub fn len(&self) -> usize {
        self.pending
    }

    /// The buffer plain responses are encoded into; call [`Outgoing::appended`]
    /// after writing to it.
    pub fn buffer(&mut self) -> &mut BytesMut {
        &mut self.tail
    }

    /// Accounts for bytes appended to [`Outgoing::buffer`].
    pub fn appended(&mut self) {
        self.pending = self.queued_len() + self.tail.len();
    }

    fn queued_len(&self) -> usize {
        self.queue.iter().map(Chunk::len).sum::<usize>() - self.sent_of_front
    }

    /// Queues a frame made of chunks, after everything queued so far.
    pub fn push_chunks(&mut self, chunks: Vec<Chunk>) {
        if !self.tail.is_empty() {
            self.queue.push_back(Chunk::Bytes(self.tail.split().freeze()));
        }
        for c in chunks {
            self.pending += c.len();
            if !c.is_empty() {
                self.queue.push_back(c);
            }
        }
    }

    /// Drops everything queued (the socket is gone).
    pub fn clear(&mut self) {
        self.queue.clear();
        self.sent_of_front = 0;
        self.tail.clear();
        self.pending = 0;
    }

    /// Writes what the socket takes, once it is writable. Cancel-safe: the
    /// only suspension point is the wait for writability.
    pub async fn write_to(&mut self, stream: &TcpStream) -> io::Result<usize> {
        loop {
            stream.writable().await?;
            match self.try_write(stream) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                r => return r,
            }
        }
    }

    fn try_write(&mut self, stream: &TcpStream) -> io::Result<usize> {
        let n = match self.queue.front_mut() {
            None => {
                let n = stream.try_write(&self.tail)?;
                self.tail.advance(n);
                n
            }
            Some(Chunk::Bytes(b)) => {
                let n = stream.try_write(b)?;
                b.advance(n);
                if b.is_empty() {
                    self.queue.pop_front();
                }
                n
            }
            Some(Chunk::File(range)) => {
                let done = self.sent_of_front;
                let n = stream.try_io(Interest::WRITABLE, || send_file(stream, range, done))?;
                if n == 0 {
                    // The file is shorter than the range: the frame cannot be
                    // completed, so the connection must close.
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "segment file shorter than the range"));
                }
                self.sent_of_front += n;
                if self.sent_of_front == range.len() {
                    self.queue.pop_front();
                    self.sent_of_front = 0;
                }
                n
            }
        };
        self.pending -= n;
        debug_assert_eq!(self.pending, self.queued_len() + self.tail.len());
        Ok(n)
    }
}

/// One `sendfile(2)` of the range's bytes after its first `done`.
fn send_file(stream: &TcpStream, range: &kaskade_log::FileRange, done: usize) -> io::Result<usize> {
    let mut offset = libc::off_t::try_from(range.position() + done as u64)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file offset out of range"))?;
    let count = range.len() - done;
    // SAFETY: both descriptors are open for the call (the stream and the
    // range's file are borrowed), and `offset` is a valid, writable off_t.
    let n = unsafe { libc::sendfile(stream.as_raw_fd(), range.file().as_raw_fd(), &mut offset, count) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use bytes::{BufMut, Bytes};
    use kaskade_log::batch::build;
    use kaskade_log::{LogConfig, LogManager, ManagerOptions, TopicPartition};
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    use super::*;

    /// Plain bytes, chunked frames with file ranges, and more plain bytes
    /// arrive in order and whole, also when the reader is slow and the
    /// socket buffer fills mid-range.
    #[tokio::test]
    async fn writes_bytes_and_file_ranges_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = LogConfig::default();
        let c = cfg.clone();
        let (mgr, _) = LogManager::open(dir.path(), ManagerOptions::default(), move |_| c.clone()).expect("open");
        let log = mgr.get_or_create(&TopicPartition::new("t", 0), cfg).expect("log");
        for i in 0..200u8 {
            log.append(build::filled(4, 4_000, 1000, i), 0).expect("append");
        }
        let range = log.read_range(0, 8 << 20, None).expect("read").records.expect("data");
        assert!(range.len() > 2 << 20, "larger than a socket buffer");
        let later = log.read_range(150, 1, None).expect("read").records.expect("data");

        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let client = TcpStream::connect(listener.local_addr().expect("addr")).await.expect("connect");
        let (server, _) = listener.accept().await.expect("accept");

        let mut out = Outgoing::default();
        out.buffer().put_slice(b"first response;");
        out.appended();
        out.push_chunks(vec![
            Chunk::Bytes(Bytes::from_static(b"header;")),
            Chunk::File(range.clone()),
            Chunk::Bytes(Bytes::from_static(b";middle;")),
            Chunk::File(later.clone()),
        ]);
        out.buffer().put_slice(b";last response");
        out.appended();
        let mut want = Vec::new();
        want.write_all(b"first response;header;").expect("vec");
        want.extend_from_slice(&range.read().expect("read"));
        want.extend_from_slice(b";middle;");
        want.extend_from_slice(&later.read().expect("read"));
        want.extend_from_slice(b";last response");
        assert_eq!(out.len(), want.len());

        let reader = tokio::spawn(async move {
            let mut client = client;
            let mut got = Vec::new();
            let mut buf = vec![0u8; 64 << 10];
            loop {
                // Slow reader: the writer meets a full socket buffer.
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                match client.read(&mut buf).await.expect("read") {
                    0 => return got,
                    n => got.extend_from_slice(&buf[..n]),
                }
            }
        });
        let mut server = server;
        while !out.is_empty() {
            assert!(out.write_to(&server).await.expect("write") > 0);
        }
        tokio::io::AsyncWriteExt::shutdown(&mut server).await.expect("shutdown");
        let got = reader.await.expect("reader");
        assert_eq!(got.len(), want.len());
        assert!(got == want, "bytes arrive in order");
    }

    /// A range longer than its file (cut by a truncation) fails the write
    /// instead of sending a short frame.
    #[tokio::test]
    async fn a_range_past_the_end_of_its_file_fails() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = LogConfig::default();
        let c = cfg.clone();
        let (mgr, _) = LogManager::open(dir.path(), ManagerOptions::default(), move |_| c.clone()).expect("open");
        let log = mgr.get_or_create(&TopicPartition::new("t", 0), cfg).expect("log");
        log.append(build::filled(2, 100, 1000, 1), 0).expect("append");
        let range = log.read_range(0, 1 << 20, None).expect("read").records.expect("data");
        range.file().set_len(range.position() + 10).expect("cut the file");

        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let _client = TcpStream::connect(listener.local_addr().expect("addr")).await.expect("connect");
        let (server, _) = listener.accept().await.expect("accept");
        let mut out = Outgoing::default();
        out.push_chunks(vec![Chunk::File(range)]);
        let mut result = Ok(0);
        while !out.is_empty() {
            result = out.write_to(&server).await;
            if result.is_err() {
                break;
            }
        }
        let err = result.expect_err("a short file fails the write");
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }
}
