//! Request frames: the 4-byte size prefix, the request header, the body.
//!
//! Everything here is synchronous and never panics on any input. The rules,
//! as Apache Kafka applies them (`SocketServer`, `RequestContext`):
//!
//! - a size below 0 or above `socket.request.max.bytes` closes the
//!   connection, before anything is allocated for the frame;
//! - an unknown API key, or a known one this broker does not route, closes
//!   the connection (Kafka: `InvalidRequestException`);
//! - a version outside the routed range closes the connection (Kafka 4:
//!   `UnsupportedVersionException` from `parseRequestHeader`), except for
//!   ApiVersions: its body is not parsed and it is answered as version 0 with
//!   UNSUPPORTED_VERSION (KIP-511), so that the client can retry;
//! - a header or body that does not decode closes the connection.
//!
//! ## Allocation guard
//!
//! The `kafka-protocol` decoders allocate before they read: an array decoder
//! calls `Vec::with_capacity(count)` with the count read from the wire, so a
//! 10-byte body claiming 2^31 elements asks the allocator for hundreds of
//! gigabytes, and a failed allocation aborts the process. Kafka's own
//! generated readers reject a collection longer than the bytes remaining.
//! We enforce the same bound from outside the crate, by decoding through
//! [`GuardedBuf`]:
//!
//! - every unsigned varint (in flexible versions these are only compact
//!   lengths, element counts, tagged-field counts, tags and tag sizes) must be
//!   at most the remaining bytes + 1 (+ a small slack for tag numbers), else
//!   the read fails;
//! - an `INT32` read greater than the remaining bytes (and than
//!   [`CLAMP_ABOVE`], so that common fields such as a 30 s timeout do not
//!   cost a second decode) is returned as `remaining + 1`, and the decode is
//!   marked "clamped". The INT32 may be an
//!   array or bytes length (then every element needs at least one byte, so the
//!   clamped decode fails: the frame was invalid) or a plain field such as a
//!   timeout (then the clamped decode succeeds, and since no length was
//!   clamped, the body is decoded again without clamping to get the true
//!   values). Either way no array capacity exceeds max(frame size,
//!   `CLAMP_ABOVE`) elements.

use std::ops::Range;

use bytes::{Buf, Bytes, BytesMut, TryGetError};
use kafka_protocol::messages::{self, ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::buf::ByteBuf;
use kafka_protocol::protocol::{Decodable, Encodable};

use crate::error::BrokerError;
use crate::router::{HandlerFn, Router};

/// Length of the size prefix of every frame.
pub const SIZE_PREFIX_LEN: usize = 4;

/// Slack allowed above `remaining + 1` for an unsigned varint, so that tag
/// numbers of tagged fields near the end of a message are never rejected.
const VARINT_SLACK: u64 = 64;

/// INT32 values up to this are never clamped: an array that long costs at
/// most a few megabytes of capacity before its first element fails to decode.
pub const CLAMP_ABOVE: i32 = 1 << 16;

/// A request decoded from one frame, ready for its handler.
pub struct DecodedRequest {
    /// The API.
    pub api_key: ApiKey,
    /// The request header as sent.
    pub header: RequestHeader,
    /// The decoded body (a default ApiVersions body for an unsupported
    /// ApiVersions version).
    pub body: RequestKind,
    /// The version the response is encoded at: the request version, or 0 for
    /// an ApiVersions request with an unsupported version (KIP-511).
    pub response_version: i16,
    /// The handler from the route table.
    pub handler: HandlerFn,
}

impl std::fmt::Debug for DecodedRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecodedRequest")
            .field("api_key", &self.api_key)
            .field("header", &self.header)
            .field("response_version", &self.response_version)
            .finish_non_exhaustive()
    }
}

/// Reads the size prefix at the front of `buf` and returns the total length
/// of the frame (prefix included) once it is known, or `None` while fewer
/// than 4 bytes are buffered. A negative size or one above `max_size` is an
/// error that closes the connection; it is detected before any buffer is
/// reserved for the frame.
pub fn frame_length(buf: &[u8], max_size: i32) -> Result<Option<usize>, BrokerError> {
    let Some(prefix) = buf.get(..SIZE_PREFIX_LEN) else {
        return Ok(None);
    };
    let size = i32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
    if size < 0 {
        return Err(BrokerError::close(format!("invalid frame size {size}")));
    }
    if size > max_size {
        return Err(BrokerError::close(format!(
            "frame size {size} is larger than socket.request.max.bytes ({max_size})"
        )));
    }
    Ok(Some(SIZE_PREFIX_LEN + size as usize))
}

/// Splits the next complete frame (without its size prefix) off the front of
/// `buf`. `Ok(None)`: more bytes are needed (`buf` then has room reserved for
/// the rest of the frame).
pub fn split_frame(buf: &mut BytesMut, max_size: i32) -> Result<Option<Bytes>, BrokerError> {
    match frame_length(buf, max_size)? {
        Some(total) if buf.len() >= total => {
            let mut frame = buf.split_to(total);
            frame.advance(SIZE_PREFIX_LEN);
            Ok(Some(frame.freeze()))
        }
        Some(total) => {
            // The size is valid: make room for exactly the rest of the frame.
            buf.reserve(total - buf.len());
            Ok(None)
        }
        None => Ok(None),
    }
}

/// Decodes one request frame (without its size prefix); see the module docs
/// for the rules. Every error closes the connection.
pub fn decode_request(router: &Router, frame: Bytes) -> Result<DecodedRequest, BrokerError> {
    if frame.len() < 4 {
        return Err(BrokerError::close(format!("a {}-byte frame is too short for a request header", frame.len())));
    }
    let raw_key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let api_key = ApiKey::try_from(raw_key).map_err(|_| BrokerError::close(format!("unknown API key {raw_key}")))?;
    let route = router
        .get(api_key)
        .ok_or_else(|| BrokerError::close(format!("API key {raw_key} ({api_key:?}) is not enabled on this broker")))?;

    let header_version = api_key.request_header_version(version);
    let mut buf = GuardedBuf::new(frame, false);
    let header = RequestHeader::decode(&mut buf, header_version).map_err(|e| {
        BrokerError::close(format!(
            "cannot decode the v{header_version} header of a {api_key:?} v{version} request: {e:#}"
        ))
    })?;
    let body_bytes = buf.into_inner();

    if !(route.min_version..=route.max_version).contains(&version) {
        if api_key == ApiKey::ApiVersions {
            // KIP-511: not parsed, answered as v0 with UNSUPPORTED_VERSION.
            return Ok(DecodedRequest {
                api_key,
                header,
                body: RequestKind::ApiVersions(Default::default()),
                response_version: 0,
                handler: route.handler,
            });
        }
        return Err(BrokerError::close(format!(
            "{api_key:?} v{version} is not supported (supported: v{} to v{})",
            route.min_version, route.max_version
        )));
    }

    let body = decode_body(api_key, &body_bytes, version)
        .map_err(|e| BrokerError::close(format!("cannot decode a {api_key:?} v{version} request: {e:#}")))?;
    Ok(DecodedRequest { api_key, header, body, response_version: version, handler: route.handler })
}

/// Appends one response frame (size prefix, response header, body) to `out`.
/// The response header version follows the API and version
/// (`ApiKey::response_header_version`; ApiVersions always uses v0).
pub fn encode_response(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &ResponseKind,
    out: &mut BytesMut,
) -> Result<(), BrokerError> {
    match response_api_key(body) {
        Some(k) if k == api_key => {}
        other => return Err(BrokerError::internal(format!("the {api_key:?} handler returned a {other:?} response"))),
    }
    let start = out.len();
    out.extend_from_slice(&[0; SIZE_PREFIX_LEN]);
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let encoded = header.encode(out, api_key.response_header_version(version)).and_then(|()| body.encode(out, version));
    if let Err(e) = encoded {
        out.truncate(start);
        return Err(BrokerError::internal(format!("cannot encode a {api_key:?} v{version} response: {e:#}")));
    }
    let size = out.len() - start - SIZE_PREFIX_LEN;
    let size = i32::try_from(size).map_err(|_| {
        out.truncate(start);
        BrokerError::internal(format!("a {api_key:?} response of {size} bytes is too large"))
    })?;
    out[start..start + SIZE_PREFIX_LEN].copy_from_slice(&size.to_be_bytes());
    Ok(())
}

/// Decodes a body through [`GuardedBuf`], clamping first and decoding again
/// unclamped only when a clamped read was a plain field (see module docs).
fn guarded_decode<T: Decodable>(body: &Bytes, version: i16) -> anyhow::Result<T> {
    let mut buf = GuardedBuf::new(body.clone(), true);
    let value = T::decode(&mut buf, version)?;
    if !buf.clamped {
        return Ok(value);
    }
    let mut buf = GuardedBuf::new(body.clone(), false);
    T::decode(&mut buf, version)
}

/// A `Bytes` reader that bounds every length the decoders read by the bytes
/// that remain (see the module docs).
struct GuardedBuf {
    inner: Bytes,
    clamp_i32: bool,
    clamped: bool,
    varint_value: u32,
    varint_len: u32,
}

impl GuardedBuf {
    fn new(inner: Bytes, clamp_i32: bool) -> Self {
        GuardedBuf { inner, clamp_i32, clamped: false, varint_value: 0, varint_len: 0 }
    }

    fn into_inner(self) -> Bytes {
        self.inner
    }
}

impl Buf for GuardedBuf {
    fn remaining(&self) -> usize {
        self.inner.remaining()
    }

    fn chunk(&self) -> &[u8] {
        self.inner.chunk()
    }

    fn advance(&mut self, cnt: usize) {
        // Any read other than a byte ends a varint.
        self.varint_len = 0;
        self.inner.advance(cnt.min(self.inner.remaining()));
    }

    fn copy_to_bytes(&mut self, len: usize) -> Bytes {
        self.varint_len = 0;
        self.inner.copy_to_bytes(len)
    }

    fn try_get_u8(&mut self) -> Result<u8, TryGetError> {
        let b = self.inner.try_get_u8()?;
        // Follow the crate's unsigned varint decoding: 7 bits per byte, at
        // most 5 bytes, bits past 32 dropped.
        if self.varint_len == 0 {
            self.varint_value = 0;
        }
        self.varint_value |= u32::from(b & 0x7f) << (7 * self.varint_len);
        if b < 0x80 || self.varint_len == 4 {
            self.varint_len = 0;
            let remaining = self.inner.remaining();
            if u64::from(self.varint_value) > remaining as u64 + 1 + VARINT_SLACK {
                return Err(TryGetError { requested: self.varint_value as usize, available: remaining });
            }
        } else {
            self.varint_len += 1;
        }
        Ok(b)
    }

    fn try_get_i32(&mut self) -> Result<i32, TryGetError> {
        self.varint_len = 0;
        let v = self.inner.try_get_i32()?;
        let remaining = self.inner.remaining();
        if self.clamp_i32 && v > CLAMP_ABOVE && v as usize > remaining {
            self.clamped = true;
            return Ok(i32::try_from(remaining + 1).unwrap_or(i32::MAX));
        }
        Ok(v)
    }
}

impl ByteBuf for GuardedBuf {
    fn peek_bytes(&mut self, r: Range<usize>) -> Bytes {
        if r.start <= r.end && r.end <= self.inner.len() {
            self.inner.slice(r)
        } else {
            Bytes::new()
        }
    }

    fn get_bytes(&mut self, size: usize) -> Bytes {
        self.varint_len = 0;
        self.inner.split_to(size.min(self.inner.len()))
    }
}

/// Calls `$m!` with every API: `Name => NameRequest` (the names of
/// `ApiKey`, `RequestKind` and `ResponseKind` variants agree).
macro_rules! with_all_apis {
    ($m:ident) => {
        $m! {
            Produce => ProduceRequest,
            Fetch => FetchRequest,
            ListOffsets => ListOffsetsRequest,
            Metadata => MetadataRequest,
            OffsetCommit => OffsetCommitRequest,
            OffsetFetch => OffsetFetchRequest,
            FindCoordinator => FindCoordinatorRequest,
            JoinGroup => JoinGroupRequest,
            Heartbeat => HeartbeatRequest,
            LeaveGroup => LeaveGroupRequest,
            SyncGroup => SyncGroupRequest,
            DescribeGroups => DescribeGroupsRequest,
            ListGroups => ListGroupsRequest,
            SaslHandshake => SaslHandshakeRequest,
            ApiVersions => ApiVersionsRequest,
            CreateTopics => CreateTopicsRequest,
            DeleteTopics => DeleteTopicsRequest,
            DeleteRecords => DeleteRecordsRequest,
            InitProducerId => InitProducerIdRequest,
            OffsetForLeaderEpoch => OffsetForLeaderEpochRequest,
            AddPartitionsToTxn => AddPartitionsToTxnRequest,
            AddOffsetsToTxn => AddOffsetsToTxnRequest,
            EndTxn => EndTxnRequest,
            WriteTxnMarkers => WriteTxnMarkersRequest,
            TxnOffsetCommit => TxnOffsetCommitRequest,
            DescribeAcls => DescribeAclsRequest,
            CreateAcls => CreateAclsRequest,
            DeleteAcls => DeleteAclsRequest,
            DescribeConfigs => DescribeConfigsRequest,
            AlterConfigs => AlterConfigsRequest,
            AlterReplicaLogDirs => AlterReplicaLogDirsRequest,
            DescribeLogDirs => DescribeLogDirsRequest,
            SaslAuthenticate => SaslAuthenticateRequest,
            CreatePartitions => CreatePartitionsRequest,
            CreateDelegationToken => CreateDelegationTokenRequest,
            RenewDelegationToken => RenewDelegationTokenRequest,
            ExpireDelegationToken => ExpireDelegationTokenRequest,
            DescribeDelegationToken => DescribeDelegationTokenRequest,
            DeleteGroups => DeleteGroupsRequest,
            ElectLeaders => ElectLeadersRequest,
            IncrementalAlterConfigs => IncrementalAlterConfigsRequest,
            AlterPartitionReassignments => AlterPartitionReassignmentsRequest,
            ListPartitionReassignments => ListPartitionReassignmentsRequest,
            OffsetDelete => OffsetDeleteRequest,
            DescribeClientQuotas => DescribeClientQuotasRequest,
            AlterClientQuotas => AlterClientQuotasRequest,
            DescribeUserScramCredentials => DescribeUserScramCredentialsRequest,
            AlterUserScramCredentials => AlterUserScramCredentialsRequest,
            Vote => VoteRequest,
            BeginQuorumEpoch => BeginQuorumEpochRequest,
            EndQuorumEpoch => EndQuorumEpochRequest,
            DescribeQuorum => DescribeQuorumRequest,
            AlterPartition => AlterPartitionRequest,
            UpdateFeatures => UpdateFeaturesRequest,
            Envelope => EnvelopeRequest,
            FetchSnapshot => FetchSnapshotRequest,
            DescribeCluster => DescribeClusterRequest,
            DescribeProducers => DescribeProducersRequest,
            BrokerRegistration => BrokerRegistrationRequest,
            BrokerHeartbeat => BrokerHeartbeatRequest,
            UnregisterBroker => UnregisterBrokerRequest,
            DescribeTransactions => DescribeTransactionsRequest,
            ListTransactions => ListTransactionsRequest,
            AllocateProducerIds => AllocateProducerIdsRequest,
            ConsumerGroupHeartbeat => ConsumerGroupHeartbeatRequest,
            ConsumerGroupDescribe => ConsumerGroupDescribeRequest,
            ControllerRegistration => ControllerRegistrationRequest,
            GetTelemetrySubscriptions => GetTelemetrySubscriptionsRequest,
            PushTelemetry => PushTelemetryRequest,
            AssignReplicasToDirs => AssignReplicasToDirsRequest,
            ListConfigResources => ListConfigResourcesRequest,
            DescribeTopicPartitions => DescribeTopicPartitionsRequest,
            ShareGroupHeartbeat => ShareGroupHeartbeatRequest,
            ShareGroupDescribe => ShareGroupDescribeRequest,
            ShareFetch => ShareFetchRequest,
            ShareAcknowledge => ShareAcknowledgeRequest,
            AddRaftVoter => AddRaftVoterRequest,
            RemoveRaftVoter => RemoveRaftVoterRequest,
            UpdateRaftVoter => UpdateRaftVoterRequest,
            InitializeShareGroupState => InitializeShareGroupStateRequest,
            ReadShareGroupState => ReadShareGroupStateRequest,
            WriteShareGroupState => WriteShareGroupStateRequest,
            DeleteShareGroupState => DeleteShareGroupStateRequest,
            ReadShareGroupStateSummary => ReadShareGroupStateSummaryRequest,
            DescribeShareGroupOffsets => DescribeShareGroupOffsetsRequest,
            AlterShareGroupOffsets => AlterShareGroupOffsetsRequest,
            DeleteShareGroupOffsets => DeleteShareGroupOffsetsRequest,
        }
    };
}

macro_rules! body_codecs {
    ($($name:ident => $req:ident,)*) => {
        fn decode_body(key: ApiKey, body: &Bytes, version: i16) -> anyhow::Result<RequestKind> {
            Ok(match key {
                $(ApiKey::$name => RequestKind::$name(guarded_decode::<messages::$req>(body, version)?),)*
            })
        }

        /// The API a response belongs to.
        pub fn response_api_key(response: &ResponseKind) -> Option<ApiKey> {
            #[allow(unreachable_patterns)]
            match response {
                $(ResponseKind::$name(_) => Some(ApiKey::$name),)*
                _ => None,
            }
        }

        /// The API a request belongs to.
        pub fn request_api_key(request: &RequestKind) -> Option<ApiKey> {
            #[allow(unreachable_patterns)]
            match request {
                $(RequestKind::$name(_) => Some(ApiKey::$name),)*
                _ => None,
            }
        }
    };
}

with_all_apis!(body_codecs);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::handler;
    use crate::broker::Broker;
    use crate::router::{HandlerFuture, Route};
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
    use kafka_protocol::messages::{ApiVersionsRequest, FetchRequest, MetadataRequest, MetadataResponse, TopicName};
    use kafka_protocol::protocol::StrBytes;
    use std::sync::Arc;

    fn dummy(_: Arc<Broker>, _: RequestHeader, _: RequestKind) -> HandlerFuture {
        handler(async { Err(BrokerError::internal("unused")) })
    }

    fn router() -> Router {
        Router::new(&[
            Route::new(ApiKey::Fetch, 4, 17, dummy),
            Route::new(ApiKey::Metadata, 0, 12, dummy),
            Route::new(ApiKey::ApiVersions, 0, 4, crate::api::api_versions::route),
        ])
    }

    /// A frame body (no size prefix): header + raw body bytes.
    fn raw(key: ApiKey, version: i16, correlation_id: i32, body: &[u8]) -> Bytes {
        let mut buf = BytesMut::new();
        RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("test")))
            .encode(&mut buf, key.request_header_version(version))
            .unwrap();
        buf.extend_from_slice(body);
        buf.freeze()
    }

    fn encoded<T: Encodable>(key: ApiKey, version: i16, body: &T) -> Bytes {
        let mut b = BytesMut::new();
        body.encode(&mut b, version).unwrap();
        raw(key, version, 7, &b)
    }

    fn close_reason(r: Result<DecodedRequest, BrokerError>) -> String {
        match r {
            Err(e @ BrokerError::CloseConnection(_)) => e.to_string(),
            other => panic!("expected a close, got {other:?}"),
        }
    }

    #[test]
    fn frame_sizes() {
        assert_eq!(frame_length(&[0, 0], 100).unwrap(), None);
        assert_eq!(frame_length(&[0, 0, 0, 10], 100).unwrap(), Some(14));
        assert_eq!(frame_length(&[0, 0, 0, 100], 100).unwrap(), Some(104));
        assert!(frame_length(&[0, 0, 0, 101], 100).is_err());
        assert!(frame_length(&[0xff, 0xff, 0xff, 0xff], 100).is_err());
        assert!(frame_length(&[0x7f, 0xff, 0xff, 0xff], i32::MAX).is_ok());

        let mut buf = BytesMut::from(&[0u8, 0, 0, 3, 1][..]);
        assert_eq!(split_frame(&mut buf, 100).unwrap(), None);
        assert!(buf.capacity() >= 7);
        buf.extend_from_slice(&[2, 3, 0, 0]);
        assert_eq!(&split_frame(&mut buf, 100).unwrap().unwrap()[..], &[1, 2, 3]);
        assert_eq!(&buf[..], &[0, 0]);
        // An oversized frame is refused before anything is reserved for it.
        let mut buf = BytesMut::from(&[0x7fu8, 0xff, 0xff, 0xff][..]);
        assert!(split_frame(&mut buf, 104_857_600).is_err());
        assert!(buf.capacity() < 1024);
    }

    #[test]
    fn header_rules() {
        let r = router();
        assert!(close_reason(decode_request(&r, Bytes::from_static(&[0, 18]))).contains("too short"));
        assert!(close_reason(decode_request(&r, raw_key(999, 0))).contains("unknown API key 999"));
        assert!(close_reason(decode_request(&r, raw_key(-1, 0))).contains("unknown API key -1"));
        // Known to Kafka but not routed here.
        assert!(close_reason(decode_request(&r, raw(ApiKey::Produce, 9, 1, &[]))).contains("not enabled"));
        // Routed, unsupported version.
        assert!(close_reason(decode_request(&r, raw(ApiKey::Metadata, 13, 1, &[0, 0]))).contains("not supported"));
        // A truncated header.
        let mut h = raw(ApiKey::Metadata, 1, 1, &[]).to_vec();
        h.truncate(9);
        assert!(close_reason(decode_request(&r, Bytes::from(h))).contains("header"));
    }

    fn raw_key(key: i16, version: i16) -> Bytes {
        let mut b = BytesMut::new();
        b.extend_from_slice(&key.to_be_bytes());
        b.extend_from_slice(&version.to_be_bytes());
        b.extend_from_slice(&[0, 0, 0, 1, 0xff, 0xff]);
        b.freeze()
    }

    #[test]
    fn unsupported_api_versions_is_answered_at_v0() {
        let r = router();
        // v9 uses header v2 (tagged fields); the body is not parsed.
        let req = decode_request(&r, raw(ApiKey::ApiVersions, 9, 42, &[0xde, 0xad])).unwrap();
        assert_eq!(req.response_version, 0);
        assert_eq!(req.header.correlation_id, 42);
        assert_eq!(req.body, RequestKind::ApiVersions(ApiVersionsRequest::default()));
        let req = decode_request(&r, raw(ApiKey::ApiVersions, 3, 43, &[])).unwrap_err();
        assert!(req.closes_connection(), "a v3 body that does not decode closes");
    }

    #[test]
    fn absurd_array_lengths_do_not_allocate() {
        let r = router();
        // Metadata v1: topics is an INT32-counted array.
        let body = i32::MAX.to_be_bytes();
        let e = close_reason(decode_request(&r, raw(ApiKey::Metadata, 1, 1, &body)));
        assert!(e.contains("Metadata v1"), "{e}");
        // Metadata v9 (flexible): a compact array of 2^32 - 2 topics.
        let body = [0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0, 0];
        close_reason(decode_request(&r, raw(ApiKey::Metadata, 9, 1, &body)));
        // Metadata v12: 2^28 topics, each with a UUID then a huge name.
        let mut body = vec![0x80, 0x80, 0x80, 0x80, 0x01];
        body.extend_from_slice(&[0; 16]);
        body.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
        close_reason(decode_request(&r, raw(ApiKey::Metadata, 12, 1, &body)));
        // A huge compact string in ApiVersions v3.
        let body = [0xff, 0xff, 0xff, 0xff, 0x0f, b'a'];
        close_reason(decode_request(&r, raw(ApiKey::ApiVersions, 3, 1, &body)));
        // Fetch v4 claiming i32::MAX topics after valid fixed fields.
        let mut body = Vec::new();
        body.extend_from_slice(&(-1i32).to_be_bytes()); // replica id
        body.extend_from_slice(&500i32.to_be_bytes()); // max wait
        body.extend_from_slice(&1i32.to_be_bytes()); // min bytes
        body.extend_from_slice(&52_428_800i32.to_be_bytes()); // max bytes
        body.push(0); // isolation
        body.extend_from_slice(&i32::MAX.to_be_bytes()); // topics
        close_reason(decode_request(&r, raw(ApiKey::Fetch, 4, 1, &body)));
    }

    #[test]
    fn counts_below_the_clamp_threshold_fail_cleanly() {
        let r = router();
        // 60000 topics claimed, none sent: not clamped, fails on the first
        // element.
        let body = 60_000i32.to_be_bytes();
        close_reason(decode_request(&r, raw(ApiKey::Metadata, 1, 1, &body)));
        let body = (CLAMP_ABOVE + 1).to_be_bytes();
        close_reason(decode_request(&r, raw(ApiKey::Metadata, 1, 1, &body)));
    }

    #[test]
    fn large_plain_fields_decode_exactly() {
        // max_bytes and partition_max_bytes exceed the bytes that follow
        // them: they are clamped on the first pass, then decoded for real.
        let r = router();
        let fetch = FetchRequest::default()
            .with_replica_id(kafka_protocol::messages::BrokerId(-1))
            .with_max_wait_ms(i32::MAX)
            .with_min_bytes(1)
            .with_max_bytes(52_428_800)
            .with_session_id(2_000_000_000)
            .with_topics(vec![FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_static_str("t")))
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(0)
                    .with_fetch_offset(1 << 40)
                    .with_partition_max_bytes(1_048_576)])]);
        for version in [4, 7, 12] {
            let req = decode_request(&r, encoded(ApiKey::Fetch, version, &fetch)).unwrap();
            let RequestKind::Fetch(decoded) = req.body else { panic!() };
            assert_eq!(decoded.max_bytes, 52_428_800, "v{version}");
            assert_eq!(decoded.max_wait_ms, i32::MAX);
            assert_eq!(decoded.topics[0].partitions[0].partition_max_bytes, 1_048_576);
            if version >= 7 {
                assert_eq!(decoded.session_id, 2_000_000_000);
            }
        }
    }

    #[test]
    fn legit_requests_round_trip() {
        let r = router();
        let topics: Vec<MetadataRequestTopic> = (0..300)
            .map(|i| {
                MetadataRequestTopic::default().with_name(Some(TopicName(StrBytes::from_string(format!("topic-{i}")))))
            })
            .collect();
        let metadata = MetadataRequest::default().with_topics(Some(topics));
        for version in [1, 4, 9, 12] {
            let req = decode_request(&r, encoded(ApiKey::Metadata, version, &metadata)).unwrap();
            assert_eq!(req.body, RequestKind::Metadata(metadata.clone()), "v{version}");
            assert_eq!(req.response_version, version);
            assert_eq!(req.header.correlation_id, 7);
        }
        // An unknown tagged field with a large tag number at the very end.
        let api = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("x"))
            .with_client_software_version(StrBytes::from_static_str("1"))
            .with_unknown_tagged_field(40, Bytes::from_static(&[1]));
        let req = decode_request(&r, encoded(ApiKey::ApiVersions, 3, &api)).unwrap();
        assert_eq!(req.body, RequestKind::ApiVersions(api));
    }

    #[test]
    fn garbage_never_panics() {
        let r = router();
        // Deterministic pseudo-random bodies behind every routed header.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for i in 0..20_000u32 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 64) as usize;
            let body: Vec<u8> = (0..len).map(|j| (seed >> (j % 8 * 8)) as u8 ^ j as u8).collect();
            let (key, version) = match i % 3 {
                0 => (ApiKey::Metadata, (seed % 13) as i16),
                1 => (ApiKey::Fetch, 4 + (seed % 14) as i16),
                _ => (ApiKey::ApiVersions, (seed % 6) as i16),
            };
            let _ = decode_request(&r, raw(key, version, 1, &body));
            let mut any = body.clone();
            any.extend_from_slice(&seed.to_be_bytes());
            let _ = decode_request(&r, Bytes::from(any));
        }
    }

    #[test]
    fn response_framing() {
        let mut out = BytesMut::new();
        let api = ResponseKind::ApiVersions(Default::default());
        encode_response(ApiKey::ApiVersions, 3, 9, &api, &mut out).unwrap();
        // size, correlation id (header v0: no tagged fields), body.
        assert_eq!(&out[..], &[0, 0, 0, 12, 0, 0, 0, 9, 0, 0, 1, 0, 0, 0, 0, 0]);

        let mut out = BytesMut::new();
        let md = ResponseKind::Metadata(MetadataResponse::default());
        encode_response(ApiKey::Metadata, 9, 5, &md, &mut out).unwrap();
        // Header v1 carries an empty tagged-field section after the id.
        assert_eq!(&out[4..9], &[0, 0, 0, 5, 0]);
        assert_eq!(out.len() - 4, i32::from_be_bytes([out[0], out[1], out[2], out[3]]) as usize);

        let mut out = BytesMut::from(&b"keep"[..]);
        let err = encode_response(ApiKey::Fetch, 4, 1, &md, &mut out).unwrap_err();
        assert!(err.to_string().contains("Metadata"), "{err}");
        assert_eq!(&out[..], b"keep");
    }

    #[test]
    fn api_key_of_kinds() {
        assert_eq!(request_api_key(&RequestKind::Fetch(FetchRequest::default())), Some(ApiKey::Fetch));
        assert_eq!(response_api_key(&ResponseKind::Metadata(MetadataResponse::default())), Some(ApiKey::Metadata));
    }
}
