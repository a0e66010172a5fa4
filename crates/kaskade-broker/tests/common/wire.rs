//! A Kafka connection over raw TCP with the `kafka-protocol` codecs, for
//! tests that check requests and answers at exact versions (what a client
//! library would hide).

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a call waits for its answer.
const ANSWER_WAIT: Duration = Duration::from_secs(30);

pub struct Conn {
    stream: TcpStream,
    next_id: i32,
}

impl Conn {
    pub async fn connect(addr: SocketAddr) -> Conn {
        Conn::over(TcpStream::connect(addr).await.expect("connect"))
    }

    pub fn over(stream: TcpStream) -> Conn {
        Conn { stream, next_id: 0 }
    }

    /// Sends `req` at `version` and decodes the answer; panics (naming
    /// the API and version) on any encoding, transport or decoding failure,
    /// and checks the correlation id.
    pub async fn call<Req: Encodable + HeaderVersion, Resp: Decodable>(
        &mut self,
        key: ApiKey,
        version: i16,
        req: &Req,
    ) -> Resp {
        self.next_id += 1;
        let out = request_frame(key, version, self.next_id, req);
        self.stream.write_all(&out).await.unwrap();
        let mut size = [0u8; 4];
        tokio::time::timeout(ANSWER_WAIT, self.stream.read_exact(&mut size))
            .await
            .unwrap_or_else(|_| panic!("{key:?} v{version}: no answer"))
            .unwrap_or_else(|e| panic!("{key:?} v{version}: connection closed: {e}"));
        let mut frame = vec![0u8; i32::from_be_bytes(size) as usize];
        self.stream.read_exact(&mut frame).await.unwrap();
        decode_answer(key, version, self.next_id, frame)
    }
}

/// The blocking twin of `Conn`, for the synchronous librdkafka tests.
pub struct SyncConn {
    stream: std::net::TcpStream,
    next_id: i32,
}

impl SyncConn {
    pub fn connect(addr: SocketAddr) -> SyncConn {
        let stream = std::net::TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(ANSWER_WAIT)).expect("read timeout");
        SyncConn { stream, next_id: 0 }
    }

    /// As `Conn::call`.
    pub fn call<Req: Encodable + HeaderVersion, Resp: Decodable>(
        &mut self,
        key: ApiKey,
        version: i16,
        req: &Req,
    ) -> Resp {
        use std::io::{Read, Write};
        self.next_id += 1;
        let out = request_frame(key, version, self.next_id, req);
        self.stream.write_all(&out).unwrap_or_else(|e| panic!("{key:?} v{version}: send: {e}"));
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size).unwrap_or_else(|e| panic!("{key:?} v{version}: no answer: {e}"));
        let mut frame = vec![0u8; i32::from_be_bytes(size) as usize];
        self.stream.read_exact(&mut frame).unwrap_or_else(|e| panic!("{key:?} v{version}: cut answer: {e}"));
        decode_answer(key, version, self.next_id, frame)
    }
}

/// A whole request frame: size, header, body.
fn request_frame<Req: Encodable + HeaderVersion>(key: ApiKey, version: i16, correlation_id: i32, req: &Req) -> Vec<u8> {
    let mut buf = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("wire-test")))
        .encode(&mut buf, key.request_header_version(version))
        .unwrap();
    req.encode(&mut buf, version).unwrap_or_else(|e| panic!("{key:?} v{version} encode: {e}"));
    let mut out = (buf.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(&buf);
    out
}

/// Decodes an answer frame (without its size), checking the correlation id.
fn decode_answer<Resp: Decodable>(key: ApiKey, version: i16, correlation_id: i32, frame: Vec<u8>) -> Resp {
    let mut frame = Bytes::from(frame);
    let header = ResponseHeader::decode(&mut frame, key.response_header_version(version)).unwrap();
    assert_eq!(header.correlation_id, correlation_id);
    Resp::decode(&mut frame, version).unwrap_or_else(|e| panic!("{key:?} v{version} decode: {e}"))
}
