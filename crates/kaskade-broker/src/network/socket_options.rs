//! Options of accepted connections' sockets: Kafka's `socket.send.buffer.bytes`.
//!
//! Kafka sets SO_SNDBUF of every socket its listeners accept to
//! `socket.send.buffer.bytes` (102,400 by default; -1 leaves the OS's
//! autotuned buffer). Kaskade does the same. Measured here (kbench consume
//! of 1 GiB, loopback): with the OS's autotuned buffer, `sendfile` pushed
//! whole multi-megabyte Fetch answers into the socket at once and the
//! consumer read 740-770 MiB/s at 0.31-0.40 broker CPU-s per GiB; with
//! Kafka's 100 KiB, 1,145-1,272 MiB/s at 0.13-0.16 (docs/performance.md).

use std::io;

use tokio::net::TcpStream;

/// `socket.send.buffer.bytes`'s "use the OS default".
pub const OS_DEFAULT: i32 = -1;

/// Sets SO_SNDBUF of `stream` to `bytes`, unless `bytes` is
/// [`OS_DEFAULT`] (or any negative value, which the config refuses).
pub fn set_send_buffer(stream: &TcpStream, bytes: i32) -> io::Result<()> {
    let Ok(size) = usize::try_from(bytes) else { return Ok(()) };
    socket2::SockRef::from(stream).set_send_buffer_size(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn pair() -> (TcpStream, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
        (client.expect("connect"), accepted.expect("accept").0)
    }

    fn send_buffer(stream: &TcpStream) -> usize {
        socket2::SockRef::from(stream).send_buffer_size().expect("getsockopt SO_SNDBUF")
    }

    /// A size sets SO_SNDBUF (Linux reports twice the value asked, its
    /// bookkeeping share); -1 leaves the socket as the OS made it.
    #[tokio::test]
    async fn the_send_buffer_is_set_unless_the_os_default_is_asked() {
        let (_client, accepted) = pair().await;
        let before = send_buffer(&accepted);
        set_send_buffer(&accepted, OS_DEFAULT).expect("no-op");
        assert_eq!(send_buffer(&accepted), before);

        for asked in [40_960, 102_400] {
            set_send_buffer(&accepted, asked).expect("setsockopt");
            let set = send_buffer(&accepted);
            assert!((asked as usize..=2 * asked as usize).contains(&set), "SO_SNDBUF {set} after asking {asked}");
        }
    }
}
