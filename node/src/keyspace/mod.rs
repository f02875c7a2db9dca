//! Every column family and every key of a node's storage, in one place. Nothing else builds a key:
//! items ([`item_key`]), tombstones (keyed like items), the TTL expiry index, replication checkpoints,
//! stream definitions, records and consumers, the Raft log and state, and the state machine's meta
//! keys. Values are prost messages, decoded by the module that owns them.

pub mod item_key;

/// A column family of the node's database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    /// Raft log entries, keyed by [`log_key`].
    Log,
    /// Raft's own state (vote, committed and purged log ids, current snapshot) and node-local notes.
    Raft,
    /// State-machine metadata: [`Meta`] keys and transaction tokens.
    Meta,
    /// Table definitions, keyed by table name.
    Tables,
    /// Items, keyed by [`item_key`].
    Items,
    /// Stream definitions ([`stream_key`]) and named consumers' positions ([`consumer_key`]).
    Streams,
    /// Stream records, keyed by [`record_key`].
    StreamRecords,
    /// The TTL expiry index, keyed by [`ttl_key`].
    TtlIndex,
    /// Global tables' deleted items (key attributes and the delete's version), keyed like items.
    Tombstones,
    /// Global tables' replication checkpoints, keyed by [`checkpoint_key`].
    Replication,
    /// Point-in-time recovery: each PITR table's changes not yet archived to the backup store, keyed by
    /// [`pitr_key`]. Only this short tail travels in snapshots; the window is in the store.
    PitrLog,
}

impl Family {
    /// Every column family.
    pub const ALL: [Family; 11] = [
        Family::Log,
        Family::Raft,
        Family::Meta,
        Family::Tables,
        Family::Items,
        Family::Streams,
        Family::StreamRecords,
        Family::TtlIndex,
        Family::Tombstones,
        Family::Replication,
        Family::PitrLog,
    ];

    /// The families a state-machine snapshot carries, in the order its file numbers them.
    pub const SNAPSHOT: [Family; 9] = [
        Family::Meta,
        Family::Tables,
        Family::Items,
        Family::Streams,
        Family::StreamRecords,
        Family::TtlIndex,
        Family::Tombstones,
        Family::Replication,
        Family::PitrLog,
    ];

    /// The snapshot family of this name.
    pub fn snapshot_family(name: &str) -> Option<Family> {
        Family::SNAPSHOT.into_iter().find(|f| f.name() == name)
    }

    /// The column family's name in RocksDB.
    pub const fn name(self) -> &'static str {
        match self {
            Family::Log => "raft_log",
            Family::Raft => "raft_state",
            Family::Meta => "sm_meta",
            Family::Tables => "tables",
            Family::Items => "items",
            Family::Streams => "streams",
            Family::StreamRecords => "stream_records",
            Family::TtlIndex => "ttl_index",
            Family::Tombstones => "tombstones",
            Family::Replication => "replication",
            Family::PitrLog => "pitr_log",
        }
    }
}

/// The state machine's meta keys (in [`Family::Meta`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Meta {
    /// The last applied log id (bincode `Option<LogId>`).
    Applied,
    /// The last applied membership (bincode).
    Membership,
    /// The region's hybrid logical clock: the last write timestamp assigned, big-endian microseconds.
    Clock,
}

impl Meta {
    pub const fn key(self) -> &'static [u8] {
        match self {
            Meta::Applied => b"applied",
            Meta::Membership => b"membership",
            Meta::Clock => b"clock",
        }
    }
}

/// Raft's own keys (in [`Family::Raft`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RaftKey {
    Vote,
    Committed,
    LastPurged,
    /// Which snapshot is current, and its file.
    CurrentSnapshot,
    /// A snapshot being installed (its meta and file): present while the state machine's column
    /// families hold part of it, so that a restart finishes the install.
    InstallingSnapshot,
}

impl RaftKey {
    pub const fn key(self) -> &'static [u8] {
        match self {
            RaftKey::Vote => b"vote",
            RaftKey::Committed => b"committed",
            RaftKey::LastPurged => b"last_purged",
            RaftKey::CurrentSnapshot => b"current_snapshot",
            RaftKey::InstallingSnapshot => b"installing_snapshot",
        }
    }
}

/// A u64 value (the clock, a trim point) as stored: big-endian.
pub fn encode_u64(value: u64) -> [u8; 8] {
    value.to_be_bytes()
}

/// A big-endian u64 value (the clock, a trim point), 0 when absent or malformed.
pub fn decode_u64(bytes: Option<&[u8]>) -> u64 {
    bytes.and_then(|b| b.try_into().ok()).map_or(0, u64::from_be_bytes)
}

/// The key of a Raft log entry: its index, big-endian.
pub fn log_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

/// The index a log key holds.
pub fn log_index(key: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(key.try_into().ok()?))
}

/// The prefix every key of one table starts with, in every family keyed by table.
pub fn table_prefix(table_id: u64) -> Vec<u8> {
    table_id.to_be_bytes().to_vec()
}

/// The first key past every key of the table.
pub fn table_end(table_id: u64) -> Vec<u8> {
    (table_id + 1).to_be_bytes().to_vec()
}

/// Every key of one table: `[table_prefix, table_end)`.
pub fn table_range(table_id: u64) -> (Vec<u8>, Vec<u8>) {
    (table_prefix(table_id), table_end(table_id))
}

/// The key of a table's definition: its name.
pub fn table_key(name: &str) -> &[u8] {
    name.as_bytes()
}

/// The smallest key greater than `key` itself.
pub fn key_after(key: &[u8]) -> Vec<u8> {
    let mut next = key.to_vec();
    next.push(0);
    next
}

/// The smallest key greater than every key that starts with `prefix`. Every prefix Tern scans by
/// starts with a table id, a stream id or a fixed name, so it is never all `0xFF` bytes.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return end;
        }
    }
    unreachable!("key prefixes start with an id or a name below 0xFF…")
}

/// The TTL index key of an item expiring at `expiry` (epoch seconds): table id, expiry, storage key.
pub fn ttl_key(table_id: u64, expiry: u64, storage_key: &[u8]) -> Vec<u8> {
    [&table_id.to_be_bytes()[..], &expiry.to_be_bytes()[..], storage_key].concat()
}

/// The expiry and storage key a TTL index key holds.
pub fn parse_ttl_key(key: &[u8]) -> Option<(u64, &[u8])> {
    let expiry = u64::from_be_bytes(key.get(8..16)?.try_into().ok()?);
    Some((expiry, &key[16..]))
}

/// The key of a table's replication checkpoint for one source region.
pub fn checkpoint_key(table_id: u64, source_region: &str) -> Vec<u8> {
    [&table_id.to_be_bytes()[..], source_region.as_bytes()].concat()
}

/// A stream position: the log index of the entry that wrote a record and the record's number within
/// it. Its 64-bit form, `index << 16 | n`, orders records in log order and is DynamoDB's sequence
/// number (written as 21 decimal digits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Seq {
    pub index: u64,
    pub n: u16,
}

impl Seq {
    /// Most records one entry can write.
    pub const PER_ENTRY: u64 = 1 << 16;

    /// The first position an entry's records can take.
    pub const fn first_of(index: u64) -> Seq {
        Seq { index, n: 0 }
    }

    /// The last position an entry's records can take.
    pub const fn last_of(index: u64) -> Seq {
        Seq { index, n: u16::MAX }
    }

    /// The 64-bit sequence number.
    pub const fn number(self) -> u64 {
        (self.index << 16) | self.n as u64
    }

    pub const fn from_number(number: u64) -> Seq {
        Seq { index: number >> 16, n: (number & 0xFFFF) as u16 }
    }

    /// As DynamoDB Streams writes a sequence number: 21 decimal digits.
    pub fn text(self) -> String {
        format!("{:021}", self.number())
    }

    /// A sequence number given as text.
    pub fn parse(text: &str) -> Option<Seq> {
        text.parse().ok().map(Seq::from_number)
    }

    /// The position right after this one.
    pub const fn next(self) -> Seq {
        Seq::from_number(self.number() + 1)
    }
}

/// The key of a stream's definition: its id, big-endian (8 bytes).
pub fn stream_key(stream_id: u64) -> [u8; 8] {
    stream_id.to_be_bytes()
}

/// Whether a key of [`Family::Streams`] is a stream definition (named consumers' keys are longer).
pub fn is_stream_key(key: &[u8]) -> bool {
    key.len() == 8
}

/// The key of a named consumer's position: the stream id, `/`, the name.
pub fn consumer_key(stream_id: u64, name: &str) -> Vec<u8> {
    [stream_id.to_be_bytes().as_slice(), b"/", name.as_bytes()].concat()
}

/// The key of a stream record: the stream id and the record's sequence number, big-endian.
pub fn record_key(stream_id: u64, seq: Seq) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&stream_id.to_be_bytes());
    key[8..].copy_from_slice(&seq.number().to_be_bytes());
    key
}

/// The first key past every record of a stream.
pub fn records_end(stream_id: u64) -> Vec<u8> {
    (stream_id + 1).to_be_bytes().to_vec()
}

/// The stream and position a record key holds.
pub fn parse_record_key(key: &[u8]) -> Option<(u64, Seq)> {
    let stream_id = u64::from_be_bytes(key.get(..8)?.try_into().ok()?);
    let number = u64::from_be_bytes(key.get(8..16)?.try_into().ok()?);
    Some((stream_id, Seq::from_number(number)))
}

/// The key of a change in a table's PITR log: the table id, the change's local commit time
/// (microseconds), and the item's storage key within the table (without the table's prefix). Changes
/// of one entry share a time; a later change of the same item in it replaces the earlier.
pub fn pitr_key(table_id: u64, at_micros: u64, item_key: &[u8]) -> Vec<u8> {
    [&table_id.to_be_bytes()[..], &at_micros.to_be_bytes()[..], item_key].concat()
}

/// The time and item key a PITR log key holds.
pub fn parse_pitr_key(key: &[u8]) -> Option<(u64, &[u8])> {
    let at = u64::from_be_bytes(key.get(8..16)?.try_into().ok()?);
    Some((at, &key[16..]))
}

/// The first PITR log key of a table after `at_micros`.
pub fn pitr_after(table_id: u64, at_micros: u64) -> Vec<u8> {
    pitr_key(table_id, at_micros.saturating_add(1), &[])
}

/// The key of a backup in the catalog (in [`Family::Meta`]).
pub fn backup_key(backup_id: &str) -> Vec<u8> {
    [BACKUP_PREFIX, backup_id.as_bytes()].concat()
}

/// The prefix of every backup's catalog key.
pub const BACKUP_PREFIX: &[u8] = b"backup/";

/// The key of an export in the catalog (in [`Family::Meta`]).
pub fn export_key(export_id: &str) -> Vec<u8> {
    [EXPORT_PREFIX, export_id.as_bytes()].concat()
}

/// The prefix of every export's catalog key.
pub const EXPORT_PREFIX: &[u8] = b"export/";

/// The key of an import in the catalog (in [`Family::Meta`]).
pub fn import_key(import_id: &str) -> Vec<u8> {
    [IMPORT_PREFIX, import_id.as_bytes()].concat()
}

/// The prefix of every import's catalog key.
pub const IMPORT_PREFIX: &[u8] = b"import/";

/// The key of a failed restore's reason (in [`Family::Meta`]), kept until a table of the name is
/// created again.
pub fn restore_failure_key(table_name: &str) -> Vec<u8> {
    [b"restore-failure/".as_slice(), table_name.as_bytes()].concat()
}

/// The key of a transaction's ClientRequestToken record (in [`Family::Meta`]).
pub fn token_key(token: &str) -> Vec<u8> {
    format!("txn-token/{token}").into_bytes()
}

/// The prefix of the tokens' expiry queue.
pub const TOKEN_EXPIRY_PREFIX: &[u8] = b"txn-expiry/";

/// The expiry-queue key of a token applied at `applied_at` (microseconds).
pub fn token_expiry_key(applied_at: u64, token: &str) -> Vec<u8> {
    [TOKEN_EXPIRY_PREFIX, &applied_at.to_be_bytes(), token.as_bytes()].concat()
}

/// The time and token an expiry-queue key holds.
pub fn parse_token_expiry_key(key: &[u8]) -> Option<(u64, &str)> {
    let rest = key.strip_prefix(TOKEN_EXPIRY_PREFIX)?;
    let at = u64::from_be_bytes(rest.get(..8)?.try_into().ok()?);
    Some((at, std::str::from_utf8(&rest[8..]).ok()?))
}

/// The key of a client session call's remembered outcome (in [`Family::Meta`]): the session, then
/// the call's sequence number, so a session's calls below a number are one range.
pub fn session_key(session: &str, sequence: u64) -> Vec<u8> {
    [b"session/".as_slice(), session.as_bytes(), b"/", &sequence.to_be_bytes()].concat()
}

/// The key of what the state machine keeps of a session (in [`Family::Meta`]).
pub fn session_state_key(session: &str) -> Vec<u8> {
    [SESSION_STATE_PREFIX, session.as_bytes()].concat()
}

/// The prefix of every session's state key.
pub const SESSION_STATE_PREFIX: &[u8] = b"session-state/";

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_sequence_number_is_the_index_and_the_record_number() {
        let seq = Seq { index: 7, n: 3 };
        assert_eq!(seq.number(), 7 << 16 | 3);
        assert_eq!(Seq::from_number(seq.number()), seq);
        assert_eq!(seq.text(), "000000000000000458755");
        assert_eq!(Seq::parse(&seq.text()), Some(seq));
        assert_eq!(Seq::last_of(7).next(), Seq::first_of(8));
        assert!(Seq::first_of(9) > Seq::last_of(8));
        assert_eq!(Seq { index: 5, n: 0 }.text(), "000000000000000327680");
        assert_eq!(Seq::from_number(5).text(), "000000000000000000005");
        assert!(Seq::from_number(9).text() < Seq::from_number(10).text());
    }

    #[test]
    fn keys_decode_back() {
        assert_eq!(parse_ttl_key(&ttl_key(3, 10, b"key")), Some((10, b"key".as_slice())));
        assert_eq!(parse_pitr_key(&pitr_key(3, 10, b"key")), Some((10, b"key".as_slice())));
        assert!(pitr_key(3, 10, b"zz") < pitr_after(3, 10) && pitr_after(3, 10) <= pitr_key(3, 11, b""));
        assert_eq!(parse_record_key(&record_key(4, Seq { index: 9, n: 2 })), Some((4, Seq { index: 9, n: 2 })));
        assert_eq!(parse_token_expiry_key(&token_expiry_key(42, "t-1")), Some((42, "t-1")));
        assert!(session_key("s", 1) < session_key("s", 2) && session_key("s", 255) < session_key("s", 256));
        assert_eq!(log_index(&log_key(12)), Some(12));
        assert!(is_stream_key(&stream_key(5)));
        assert!(!is_stream_key(&consumer_key(5, "billing")));
        assert!(consumer_key(5, "").as_slice() > stream_key(5).as_slice(), "consumers sort after their stream");
    }

    #[test]
    fn prefix_end_is_past_every_extension() {
        assert_eq!(prefix_end(&[1, 2, 3]), vec![1, 2, 4]);
        assert_eq!(prefix_end(&[1, 0xFF]), vec![2]);
    }

    #[test]
    fn ttl_keys_sort_by_expiry_within_a_table() {
        assert!(ttl_key(3, 10, b"zz") < ttl_key(3, 11, b"aa"));
        assert!(ttl_key(3, u64::MAX, b"zz") < table_end(3));
    }

    proptest! {
        #[test]
        fn record_keys_sort_in_log_order(a in any::<(u64, u16)>(), b in any::<(u64, u16)>()) {
            let (a, b) = (Seq { index: a.0 >> 16, n: a.1 }, Seq { index: b.0 >> 16, n: b.1 });
            prop_assert_eq!(record_key(1, a).cmp(&record_key(1, b)), a.cmp(&b));
            prop_assert!(record_key(1, a).as_slice() < records_end(1).as_slice());
        }

        #[test]
        fn every_key_of_a_table_lies_in_its_range(id in 0u64..u64::MAX, expiry in any::<u64>(), rest in proptest::collection::vec(any::<u8>(), 0..8)) {
            let (start, end) = table_range(id);
            for key in [ttl_key(id, expiry, &rest), checkpoint_key(id, "eu-west"), [start.clone(), rest.clone()].concat()] {
                prop_assert!(key >= start && key < end);
            }
        }
    }
}
