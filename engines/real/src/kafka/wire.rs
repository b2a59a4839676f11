//! The few bytes of the Kafka protocol the output consumer speaks itself: a `read_committed`
//! Fetch (v4) request, its response, and the record batches (magic v2) inside it.
//!
//! Why not rskafka here: its fetch returns records without their batch — no producer id, no
//! transactional or control flag — and fails on a transaction marker ("Unknown control batch
//! record version"), and it drops the response's aborted-transaction list. A reader that is to
//! count an exactly-once engine's output must tell an aborted transaction's records from a
//! committed one's, which needs exactly those fields. Fetch v4 is the version rskafka itself
//! speaks to Kafka 4 (KIP-896 removed older ones); every field below is from the protocol guide
//! (<https://kafka.apache.org/protocol#The_Messages_Fetch>) and the record-batch format
//! (<https://kafka.apache.org/documentation/#recordbatch>).
//!
//! Invariants: decoding never panics on any input (a short or malformed buffer is an error, a
//! batch cut at the end of a response — the broker may cut the last one — is left out, as the
//! protocol allows); compressed batches are refused by name (streamlab's engines are run with
//! `compression.type=none`, and the compression codecs are C code the default build avoids).

use std::io::{Read, Write};

/// Fetch's API key.
const FETCH: i16 = 1;
/// The Fetch version spoken.
const FETCH_VERSION: i16 = 4;
/// `isolation_level = 1`: only records below the last stable offset.
const READ_COMMITTED: i8 = 1;

/// A decoding or framing error, with what was being read.
pub type WireResult<T> = std::result::Result<T, String>;

/// One partition to fetch from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FetchPartition {
    /// The partition.
    pub partition: i32,
    /// The first offset wanted.
    pub offset: i64,
}

/// What a fetch asks for.
#[derive(Clone, Debug)]
pub struct FetchRequest<'a> {
    /// Correlation id, echoed by the broker.
    pub correlation: i32,
    /// The topic.
    pub topic: &'a str,
    /// Its partitions, each from its offset.
    pub partitions: &'a [FetchPartition],
    /// The longest the broker waits for data (long poll).
    pub max_wait_ms: i32,
    /// The most bytes per partition.
    pub partition_max_bytes: i32,
}

impl FetchRequest<'_> {
    /// The request, size-prefixed, as it goes on the wire.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(64 + self.topic.len() + 16 * self.partitions.len());
        b.extend_from_slice(&[0; 4]); // size, filled in below
        b.extend_from_slice(&FETCH.to_be_bytes());
        b.extend_from_slice(&FETCH_VERSION.to_be_bytes());
        b.extend_from_slice(&self.correlation.to_be_bytes());
        put_string(&mut b, "streamlab");
        b.extend_from_slice(&(-1i32).to_be_bytes()); // replica id: a consumer
        b.extend_from_slice(&self.max_wait_ms.to_be_bytes());
        b.extend_from_slice(&1i32.to_be_bytes()); // min bytes
        let total = self.partition_max_bytes.saturating_mul(self.partitions.len() as i32);
        b.extend_from_slice(&total.to_be_bytes());
        b.push(READ_COMMITTED as u8);
        b.extend_from_slice(&1i32.to_be_bytes()); // one topic
        put_string(&mut b, self.topic);
        b.extend_from_slice(&(self.partitions.len() as i32).to_be_bytes());
        for p in self.partitions {
            b.extend_from_slice(&p.partition.to_be_bytes());
            b.extend_from_slice(&p.offset.to_be_bytes());
            b.extend_from_slice(&self.partition_max_bytes.to_be_bytes());
        }
        let size = (b.len() - 4) as i32;
        b[..4].copy_from_slice(&size.to_be_bytes());
        b
    }

    /// Sends the request on `stream` and reads its response.
    pub fn exchange<S: Read + Write>(&self, stream: &mut S) -> WireResult<FetchResponse> {
        FetchResponse::decode(&exchange(stream, &self.encode(), self.correlation)?)
    }
}

/// CreateTopics' API key.
const CREATE_TOPICS: i16 = 19;
/// The CreateTopics version spoken (the oldest Kafka 4 serves; KIP-896 removed v0 and v1).
const CREATE_TOPICS_VERSION: i16 = 2;
/// CreateTopics' error for a topic that is there already.
pub const TOPIC_ALREADY_EXISTS: i16 = 36;

/// A CreateTopics request for one topic with topic-level configs (rskafka's creates none).
#[derive(Clone, Debug)]
pub struct CreateTopic<'a> {
    /// Correlation id, echoed by the broker.
    pub correlation: i32,
    /// The topic.
    pub topic: &'a str,
    /// Its partitions (replication factor 1).
    pub partitions: i32,
    /// Its configs, `(name, value)`.
    pub configs: &'a [(&'a str, &'a str)],
}

impl CreateTopic<'_> {
    /// The request, size-prefixed, as it goes on the wire.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = vec![0; 4];
        b.extend_from_slice(&CREATE_TOPICS.to_be_bytes());
        b.extend_from_slice(&CREATE_TOPICS_VERSION.to_be_bytes());
        b.extend_from_slice(&self.correlation.to_be_bytes());
        put_string(&mut b, "streamlab");
        b.extend_from_slice(&1i32.to_be_bytes());
        put_string(&mut b, self.topic);
        b.extend_from_slice(&self.partitions.to_be_bytes());
        b.extend_from_slice(&1i16.to_be_bytes()); // replication factor
        b.extend_from_slice(&0i32.to_be_bytes()); // no manual assignment
        b.extend_from_slice(&(self.configs.len() as i32).to_be_bytes());
        for (k, v) in self.configs {
            put_string(&mut b, k);
            put_string(&mut b, v);
        }
        b.extend_from_slice(&10_000i32.to_be_bytes()); // timeout ms
        b.push(0); // validate only: no
        let size = (b.len() - 4) as i32;
        b[..4].copy_from_slice(&size.to_be_bytes());
        b
    }

    /// Sends the request on `stream`; returns the topic's error code (0: created) and message.
    pub fn exchange<S: Read + Write>(&self, stream: &mut S) -> WireResult<(i16, Option<String>)> {
        let body = exchange(stream, &self.encode(), self.correlation)?;
        let mut c = Cursor {
            bytes: &body[4..],
            what: "create-topics response",
        };
        let _throttle_ms = c.i32()?;
        for _ in 0..c.count()? {
            let name = c.string()?;
            let error = c.i16()?;
            let n = c.i16()?;
            let message = (n >= 0)
                .then(|| c.take(n as usize).map(|m| String::from_utf8_lossy(m).into_owned()))
                .transpose()?;
            if name == self.topic.as_bytes() {
                return Ok((error, message));
            }
        }
        Err(format!("the create-topics response does not name {}", self.topic))
    }
}

/// Sends a size-prefixed request and reads the response body (correlation id first), checking
/// it answers `correlation`.
fn exchange<S: Read + Write>(stream: &mut S, request: &[u8], correlation: i32) -> WireResult<Vec<u8>> {
    stream
        .write_all(request)
        .map_err(|e| format!("sending a request: {e}"))?;
    let mut size = [0u8; 4];
    stream
        .read_exact(&mut size)
        .map_err(|e| format!("reading a response: {e}"))?;
    let size = i32::from_be_bytes(size);
    if !(4..=256 << 20).contains(&size) {
        return Err(format!("a response of {size} bytes"));
    }
    let mut body = vec![0u8; size as usize];
    stream
        .read_exact(&mut body)
        .map_err(|e| format!("reading a response: {e}"))?;
    let answered = i32::from_be_bytes(body[..4].try_into().expect("4 bytes"));
    if answered != correlation {
        return Err(format!("a response to request {answered} for request {correlation}"));
    }
    Ok(body)
}

/// A transaction the broker reports aborted in the fetched range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AbortedTransaction {
    /// Its producer.
    pub producer_id: i64,
    /// Its first offset.
    pub first_offset: i64,
}

/// One partition's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionData {
    /// The partition.
    pub partition: i32,
    /// Kafka's error code (0: none).
    pub error: i16,
    /// The high watermark.
    pub high_watermark: i64,
    /// The last stable offset: no record at or past it is returned under `read_committed`.
    pub last_stable_offset: i64,
    /// The transactions aborted in the returned range.
    pub aborted: Vec<AbortedTransaction>,
    /// The record batches, whole ones only.
    pub batches: Vec<RecordBatch>,
}

/// A fetch's response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchResponse {
    /// The request's correlation id.
    pub correlation: i32,
    /// Every partition's answer (one topic).
    pub partitions: Vec<PartitionData>,
}

/// What a control batch marks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Marker {
    /// The producer's transaction aborted.
    Abort,
    /// The producer's transaction committed.
    Commit,
}

/// One record: its offset, its broker-side timestamp and its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Offset in the partition.
    pub offset: i64,
    /// Timestamp, ms (the producer's, or the log-append time on a `LogAppendTime` topic).
    pub timestamp_ms: i64,
    /// `timestamp_ms` is the broker's log-append time (the topic's
    /// `message.timestamp.type = LogAppendTime`).
    pub log_append_time: bool,
    /// The value (`None`: a tombstone).
    pub value: Option<Vec<u8>>,
}

/// A record batch (magic v2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordBatch {
    /// Offset of its first record.
    pub base_offset: i64,
    /// Offset of its last record.
    pub last_offset: i64,
    /// Its producer (-1: none).
    pub producer_id: i64,
    /// Written inside a transaction.
    pub transactional: bool,
    /// A transaction marker (`records` is then empty).
    pub marker: Option<Marker>,
    /// When the broker appended it to the log (ms), if the topic keeps `LogAppendTime`: for a
    /// marker, when its transaction's records became readable under `read_committed`.
    pub appended_ms: Option<i64>,
    /// Its data records.
    pub records: Vec<Record>,
}

/// A cursor over a byte slice; every read checks the length.
struct Cursor<'a> {
    bytes: &'a [u8],
    what: &'static str,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> WireResult<&'a [u8]> {
        if self.bytes.len() < n {
            return Err(format!("{}: {n} bytes wanted, {} left", self.what, self.bytes.len()));
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }
    fn i8(&mut self) -> WireResult<i8> {
        Ok(self.take(1)?[0] as i8)
    }
    fn i16(&mut self) -> WireResult<i16> {
        Ok(i16::from_be_bytes(self.take(2)?.try_into().expect("2 bytes")))
    }
    fn i32(&mut self) -> WireResult<i32> {
        Ok(i32::from_be_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }
    fn i64(&mut self) -> WireResult<i64> {
        Ok(i64::from_be_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }
    fn varlong(&mut self) -> WireResult<i64> {
        let mut raw: u64 = 0;
        for shift in (0..70).step_by(7) {
            let b = self.take(1)?[0];
            raw |= u64::from(b & 0x7f).checked_shl(shift).unwrap_or(0);
            if b & 0x80 == 0 {
                return Ok((raw >> 1) as i64 ^ -((raw & 1) as i64));
            }
        }
        Err(format!("{}: a varint longer than 10 bytes", self.what))
    }
    /// A varint-length-prefixed byte string (-1: null).
    fn var_bytes(&mut self) -> WireResult<Option<&'a [u8]>> {
        let n = self.varlong()?;
        if n < 0 {
            return Ok(None);
        }
        Ok(Some(self.take(
            usize::try_from(n).map_err(|_| format!("{}: length {n}", self.what))?,
        )?))
    }
    fn string(&mut self) -> WireResult<&'a [u8]> {
        let n = self.i16()?;
        self.take(n.max(0) as usize)
    }
    fn count(&mut self) -> WireResult<usize> {
        let n = self.i32()?;
        Ok(n.max(0) as usize)
    }
}

fn put_string(b: &mut Vec<u8>, s: &str) {
    b.extend_from_slice(&(s.len() as i16).to_be_bytes());
    b.extend_from_slice(s.as_bytes());
}

impl FetchResponse {
    /// Decodes a Fetch v4 response body (after its size).
    pub fn decode(body: &[u8]) -> WireResult<FetchResponse> {
        let mut c = Cursor {
            bytes: body,
            what: "fetch response",
        };
        let correlation = c.i32()?;
        let _throttle_ms = c.i32()?;
        let mut partitions = Vec::new();
        for _ in 0..c.count()? {
            let _topic = c.string()?;
            for _ in 0..c.count()? {
                let partition = c.i32()?;
                let error = c.i16()?;
                let high_watermark = c.i64()?;
                let last_stable_offset = c.i64()?;
                let n = c.i32()?;
                let mut aborted = Vec::with_capacity(n.max(0) as usize);
                for _ in 0..n.max(0) {
                    aborted.push(AbortedTransaction {
                        producer_id: c.i64()?,
                        first_offset: c.i64()?,
                    });
                }
                let len = c.i32()?;
                let records = c.take(len.max(0) as usize)?;
                partitions.push(PartitionData {
                    partition,
                    error,
                    high_watermark,
                    last_stable_offset,
                    aborted,
                    batches: decode_batches(records)?,
                });
            }
        }
        Ok(FetchResponse {
            correlation,
            partitions,
        })
    }
}

/// Decodes the record batches of one partition's `records`; a batch cut at the end is left out.
pub fn decode_batches(mut bytes: &[u8]) -> WireResult<Vec<RecordBatch>> {
    let mut batches = Vec::new();
    while bytes.len() >= 12 {
        let length = i32::from_be_bytes(bytes[8..12].try_into().expect("4 bytes"));
        let Ok(length) = usize::try_from(length) else {
            return Err(format!("a record batch of length {length}"));
        };
        if bytes.len() < 12 + length {
            break; // cut by the broker's size limit: fetched again from its offset
        }
        batches.push(decode_batch(&bytes[..12 + length])?);
        bytes = &bytes[12 + length..];
    }
    Ok(batches)
}

fn decode_batch(bytes: &[u8]) -> WireResult<RecordBatch> {
    let mut c = Cursor {
        bytes,
        what: "record batch",
    };
    let base_offset = c.i64()?;
    let _length = c.i32()?;
    let _leader_epoch = c.i32()?;
    let magic = c.i8()?;
    if magic != 2 {
        return Err(format!(
            "record batch at offset {base_offset}: magic {magic}, only v2 is read"
        ));
    }
    let _crc = c.i32()?;
    let attributes = c.i16()?;
    let last_offset_delta = c.i32()?;
    let base_timestamp = c.i64()?;
    let max_timestamp = c.i64()?;
    let producer_id = c.i64()?;
    let _producer_epoch = c.i16()?;
    let _base_sequence = c.i32()?;
    let n = c.count()?;
    let compression = attributes & 0x7;
    if compression != 0 {
        return Err(format!(
            "record batch at offset {base_offset} is compressed (codec {compression}); the engine's producer must use compression.type=none"
        ));
    }
    let log_append_time = attributes & 0x8 != 0;
    let transactional = attributes & 0x10 != 0;
    let control = attributes & 0x20 != 0;
    let mut records = Vec::with_capacity(if control { 0 } else { n });
    let mut marker = None;
    c.what = "record";
    for _ in 0..n {
        let _length = c.varlong()?;
        let _attributes = c.i8()?;
        let timestamp_delta = c.varlong()?;
        let offset_delta = c.varlong()?;
        let key = c.var_bytes()?;
        let value = c.var_bytes()?;
        for _ in 0..c.varlong()?.max(0) {
            let _header_key = c.var_bytes()?;
            let _header_value = c.var_bytes()?;
        }
        if control {
            // The control record's key: version (int16), type (int16: 0 abort, 1 commit).
            let key = key.filter(|k| k.len() >= 4).ok_or_else(|| {
                format!(
                    "control batch at offset {base_offset}: a key of {:?} bytes",
                    key.map(<[u8]>::len)
                )
            })?;
            marker = match i16::from_be_bytes([key[2], key[3]]) {
                0 => Some(Marker::Abort),
                1 => Some(Marker::Commit),
                t => return Err(format!("control batch at offset {base_offset}: control type {t}")),
            };
        } else {
            records.push(Record {
                offset: base_offset + offset_delta,
                timestamp_ms: if log_append_time {
                    max_timestamp
                } else {
                    base_timestamp + timestamp_delta
                },
                log_append_time,
                value: value.map(<[u8]>::to_vec),
            });
        }
    }
    Ok(RecordBatch {
        base_offset,
        last_offset: base_offset + i64::from(last_offset_delta),
        producer_id,
        transactional,
        marker,
        appended_ms: log_append_time.then_some(max_timestamp),
        records,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn put_varlong(b: &mut Vec<u8>, v: i64) {
        let mut z = ((v << 1) ^ (v >> 63)) as u64;
        loop {
            let byte = (z & 0x7f) as u8;
            z >>= 7;
            if z == 0 {
                b.push(byte);
                return;
            }
            b.push(byte | 0x80);
        }
    }

    /// A batch as a broker would send it: `values` from `base`, or a marker.
    pub(crate) fn batch(base: i64, producer_id: i64, transactional: bool, body: Result<&[&str], Marker>) -> Vec<u8> {
        let mut records = Vec::new();
        let (control, n) = match body {
            Ok(values) => {
                for (i, v) in values.iter().enumerate() {
                    let mut r = vec![0u8];
                    put_varlong(&mut r, i as i64); // timestamp delta
                    put_varlong(&mut r, i as i64); // offset delta
                    put_varlong(&mut r, -1); // no key
                    put_varlong(&mut r, v.len() as i64);
                    r.extend_from_slice(v.as_bytes());
                    put_varlong(&mut r, 0);
                    put_varlong(&mut records, r.len() as i64);
                    records.extend(r);
                }
                (false, values.len())
            }
            Err(m) => {
                let mut r = vec![0u8];
                put_varlong(&mut r, 0);
                put_varlong(&mut r, 0);
                put_varlong(&mut r, 4);
                r.extend_from_slice(&[0, 0, 0, if m == Marker::Commit { 1 } else { 0 }]);
                put_varlong(&mut r, 6);
                r.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
                put_varlong(&mut r, 0);
                put_varlong(&mut records, r.len() as i64);
                records.extend(r);
                (true, 1)
            }
        };
        let attributes: i16 = if transactional { 0x10 } else { 0 } | if control { 0x20 } else { 0 };
        let mut after_length = Vec::new();
        after_length.extend_from_slice(&0i32.to_be_bytes()); // leader epoch
        after_length.push(2);
        after_length.extend_from_slice(&0i32.to_be_bytes()); // crc (not checked)
        after_length.extend_from_slice(&attributes.to_be_bytes());
        after_length.extend_from_slice(&(n as i32 - 1).to_be_bytes());
        after_length.extend_from_slice(&1000i64.to_be_bytes());
        after_length.extend_from_slice(&1000i64.to_be_bytes());
        after_length.extend_from_slice(&producer_id.to_be_bytes());
        after_length.extend_from_slice(&0i16.to_be_bytes());
        after_length.extend_from_slice(&0i32.to_be_bytes());
        after_length.extend_from_slice(&(n as i32).to_be_bytes());
        after_length.extend(records);
        let mut b = base.to_be_bytes().to_vec();
        b.extend_from_slice(&(after_length.len() as i32).to_be_bytes());
        b.extend(after_length);
        b
    }

    #[test]
    fn a_data_batch_and_a_marker_decode_and_a_cut_batch_is_left_out() {
        let mut bytes = batch(5, 7, true, Ok(&["a", "bc"]));
        bytes.extend(batch(7, 7, true, Err(Marker::Commit)));
        let whole = bytes.len();
        bytes.extend(&batch(8, -1, false, Ok(&["x"]))[..20]);
        let batches = decode_batches(&bytes).unwrap();
        assert_eq!(batches.len(), 2, "the cut batch is left out ({whole} whole bytes)");
        assert_eq!((batches[0].base_offset, batches[0].last_offset), (5, 6));
        assert!(batches[0].transactional && batches[0].marker.is_none());
        let values: Vec<_> = batches[0]
            .records
            .iter()
            .map(|r| (r.offset, r.value.clone().unwrap()))
            .collect();
        assert_eq!(values, vec![(5, b"a".to_vec()), (6, b"bc".to_vec())]);
        assert_eq!(batches[1].marker, Some(Marker::Commit));
        assert!(batches[1].records.is_empty());
    }

    #[test]
    fn a_response_round_trips_its_partitions_and_aborted_list() {
        let records = batch(0, 3, true, Ok(&["r"]));
        let mut body = Vec::new();
        body.extend_from_slice(&9i32.to_be_bytes());
        body.extend_from_slice(&0i32.to_be_bytes());
        body.extend_from_slice(&1i32.to_be_bytes());
        put_string(&mut body, "out");
        body.extend_from_slice(&1i32.to_be_bytes());
        body.extend_from_slice(&1i32.to_be_bytes()); // partition 1
        body.extend_from_slice(&0i16.to_be_bytes());
        body.extend_from_slice(&4i64.to_be_bytes());
        body.extend_from_slice(&2i64.to_be_bytes());
        body.extend_from_slice(&1i32.to_be_bytes());
        body.extend_from_slice(&3i64.to_be_bytes());
        body.extend_from_slice(&0i64.to_be_bytes());
        body.extend_from_slice(&(records.len() as i32).to_be_bytes());
        body.extend(&records);
        let r = FetchResponse::decode(&body).unwrap();
        assert_eq!(r.correlation, 9);
        let p = &r.partitions[0];
        assert_eq!((p.partition, p.high_watermark, p.last_stable_offset), (1, 4, 2));
        assert_eq!(
            p.aborted,
            vec![AbortedTransaction {
                producer_id: 3,
                first_offset: 0
            }]
        );
        assert_eq!(p.batches.len(), 1);
    }

    #[test]
    fn malformed_input_is_an_error_never_a_panic() {
        assert!(FetchResponse::decode(&[0, 0]).is_err());
        let mut compressed = batch(0, -1, false, Ok(&["a"]));
        compressed[22] = 1; // attributes' low byte: gzip
        let e = decode_batches(&compressed).unwrap_err();
        assert!(e.contains("compression.type=none"), "{e}");
        let mut old = batch(0, -1, false, Ok(&["a"]));
        old[16] = 1;
        assert!(decode_batches(&old).unwrap_err().contains("magic 1"));
        for cut in 0..40 {
            let b = batch(0, -1, false, Ok(&["abc"]));
            let _ = FetchResponse::decode(&b[..cut]);
        }
    }

    #[test]
    fn create_topics_carries_the_configs_and_reads_the_topic_error() {
        let request = CreateTopic {
            correlation: 4,
            topic: "out",
            partitions: 2,
            configs: &[("message.timestamp.type", "LogAppendTime")],
        };
        let bytes = request.encode();
        assert_eq!(&bytes[4..8], &[0, 19, 0, 2]);
        assert!(bytes.windows(13).any(|w| w == b"LogAppendTime"));
        let mut answer = Vec::new();
        let mut body = 4i32.to_be_bytes().to_vec();
        body.extend_from_slice(&0i32.to_be_bytes());
        body.extend_from_slice(&1i32.to_be_bytes());
        put_string(&mut body, "out");
        body.extend_from_slice(&TOPIC_ALREADY_EXISTS.to_be_bytes());
        put_string(&mut body, "exists");
        answer.extend_from_slice(&(body.len() as i32).to_be_bytes());
        answer.extend(body);
        let mut stream = std::io::Cursor::new(answer);
        let mut duplex = Duplex(&mut stream, Vec::new());
        assert_eq!(
            request.exchange(&mut duplex),
            Ok((TOPIC_ALREADY_EXISTS, Some("exists".into())))
        );
        assert_eq!(duplex.1, bytes, "the request went out as encoded");
    }

    /// Reads from a buffer, keeps what is written.
    struct Duplex<'a>(&'a mut std::io::Cursor<Vec<u8>>, Vec<u8>);

    impl Read for Duplex<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.0.read(buf)
        }
    }

    impl Write for Duplex<'_> {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.1.write(buf)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_request_names_read_committed_and_every_partition() {
        let parts = [
            FetchPartition {
                partition: 0,
                offset: 3,
            },
            FetchPartition {
                partition: 1,
                offset: 0,
            },
        ];
        let b = FetchRequest {
            correlation: 1,
            topic: "t",
            partitions: &parts,
            max_wait_ms: 100,
            partition_max_bytes: 1024,
        }
        .encode();
        assert_eq!(i32::from_be_bytes(b[..4].try_into().unwrap()) as usize, b.len() - 4);
        assert_eq!(&b[4..8], &[0, 1, 0, 4]);
        // header (4 + 2 + 2 + 4 + 2 + 9) then replica, wait, min, max: isolation at 39
        assert_eq!(b[4 + 8 + 2 + 9 + 16], 1);
    }
}
