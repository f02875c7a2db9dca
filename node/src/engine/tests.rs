//! The engine contract, checked against every engine: RocksDB and the in-memory one.

use super::*;

fn engines() -> Vec<(&'static str, Box<dyn Engine>, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let rocks = Rocks::open(&dir.path().join("db")).expect("opening RocksDB");
    vec![("rocks", Box::new(rocks), Some(dir)), ("memory", Box::new(Memory::new()), None)]
}

fn keys(scan: Scan<'_>) -> Vec<Vec<u8>> {
    scan.map(|entry| entry.expect("a readable entry").0).collect()
}

fn writes(ops: impl FnOnce(&mut WriteSet)) -> WriteSet {
    let mut set = WriteSet::default();
    ops(&mut set);
    set
}

#[test]
fn puts_deletes_and_ranges_apply_in_order() {
    for (name, engine, _dir) in engines() {
        engine
            .write(
                writes(|w| {
                    for k in [b"a", b"b", b"c", b"d"] {
                        w.put(Family::Items, k, k);
                    }
                    w.put(Family::Tables, b"b", b"other family");
                    w.delete(Family::Items, b"a");
                    w.put(Family::Items, b"a", b"again");
                    w.delete_range(Family::Items, b"b", b"d");
                    w.delete_range(Family::Items, b"d", b"d"); // Empty.
                }),
                true,
            )
            .unwrap();
        assert_eq!(engine.latest().get(Family::Items, b"a").unwrap(), Some(b"again".to_vec()), "{name}");
        assert_eq!(engine.latest().get(Family::Items, b"b").unwrap(), None, "{name}");
        assert_eq!(engine.latest().get(Family::Tables, b"b").unwrap(), Some(b"other family".to_vec()), "{name}");
        assert_eq!(
            keys(engine.latest().scan(Family::Items, b"", None, Direction::Forward)),
            vec![b"a".to_vec(), b"d".to_vec()]
        );
        engine
            .write(
                writes(|w| {
                    w.delete_range(Family::Items, b"a", b"z");
                    w.put(Family::Items, b"c", b"after the range delete");
                }),
                false,
            )
            .unwrap();
        assert_eq!(
            keys(engine.latest().scan(Family::Items, b"", None, Direction::Forward)),
            vec![b"c".to_vec()],
            "{name}"
        );
        let inverted = writes(|w| {
            w.put(Family::Items, b"x", b"");
            w.delete_range(Family::Items, b"d", b"a");
        });
        assert!(engine.write(inverted, false).is_err(), "{name}: a range ending before its start fails the write");
        assert_eq!(engine.latest().get(Family::Items, b"x").unwrap(), None, "{name}: and nothing of it applies");
    }
}

#[test]
fn scans_respect_bounds_and_direction() {
    for (name, engine, _dir) in engines() {
        engine
            .write(
                writes(|w| {
                    for k in [&b"k1"[..], b"k2", b"k2\0", b"k3", b"l"] {
                        w.put(Family::StreamRecords, k, b"");
                    }
                }),
                false,
            )
            .unwrap();
        let forward = keys(engine.latest().scan(Family::StreamRecords, b"k2", Some(b"k3"), Direction::Forward));
        assert_eq!(forward, vec![b"k2".to_vec(), b"k2\0".to_vec()], "{name}");
        let reverse = keys(engine.latest().scan(Family::StreamRecords, b"k", Some(b"l"), Direction::Reverse));
        assert_eq!(reverse, vec![b"k3".to_vec(), b"k2\0".to_vec(), b"k2".to_vec(), b"k1".to_vec()], "{name}");
        assert_eq!(
            engine.latest().first(Family::StreamRecords, b"k", Some(b"l"), Direction::Reverse).unwrap().map(|(k, _)| k),
            Some(b"k3".to_vec())
        );
        assert!(keys(engine.latest().scan(Family::StreamRecords, b"m", None, Direction::Forward)).is_empty(), "{name}");
        assert!(keys(engine.latest().scan(Family::Items, b"", None, Direction::Reverse)).is_empty(), "{name}");
    }
}

#[test]
fn a_view_does_not_see_later_writes() {
    for (name, engine, _dir) in engines() {
        engine.write(writes(|w| w.put(Family::Items, b"x", b"1")), false).unwrap();
        let view = engine.view();
        engine.write(writes(|w| w.put(Family::Items, b"x", b"2")), false).unwrap();
        engine.write(writes(|w| w.put(Family::Items, b"y", b"2")), false).unwrap();
        assert_eq!(view.get(Family::Items, b"x").unwrap(), Some(b"1".to_vec()), "{name}");
        assert_eq!(keys(view.scan(Family::Items, b"", None, Direction::Forward)), vec![b"x".to_vec()], "{name}");
        assert_eq!(engine.latest().get(Family::Items, b"x").unwrap(), Some(b"2".to_vec()), "{name}");
    }
}
