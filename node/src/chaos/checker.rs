//! The checker: after the final heal, each region's copy of the table against the history. Last
//! writer wins by version, so for every key the acknowledged operation with the greatest version must
//! be what every region holds, unless an operation that may have applied (acknowledged with a greater
//! version, or unknown) replaced it. Unknown outcomes are allowed either way, never counted as loss.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::history::{Op, OpKind, Outcome, Version};

/// What a region holds for a key: an item's value with its version, or a tombstone's version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Held {
    /// None for a tombstone (a delete not yet purged).
    pub value: Option<String>,
    pub version: Version,
}

/// A region's copy of the table: key to what it holds (absent: nothing, not even a tombstone).
pub type Copy = BTreeMap<String, Held>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AnomalyKind {
    /// Regions hold different items or versions for the key.
    Divergence,
    /// An acknowledged write is gone, and nothing that may have applied with a greater version replaced it.
    LostWrite,
    /// An acknowledged delete was undone by an older write.
    Resurrection,
    /// A value no operation that may have applied wrote.
    PhantomValue,
    /// The region holds the version an acknowledged operation was given, with another value.
    VersionMismatch,
}

#[derive(Debug, Clone, Serialize)]
pub struct Anomaly {
    pub kind: AnomalyKind,
    pub key: String,
    /// The region whose copy shows it (every region, for a divergence).
    pub region: String,
    pub detail: String,
}

/// Every anomaly in the final copies (by region) against the history.
pub fn check(ops: &[Op], copies: &BTreeMap<String, Copy>) -> Vec<Anomaly> {
    let mut by_key: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
    for op in ops {
        by_key.entry(&op.key).or_default().push(op);
    }
    let keys: BTreeSet<&str> =
        by_key.keys().copied().chain(copies.values().flat_map(|c| c.keys().map(String::as_str))).collect();
    let mut anomalies = Vec::new();
    for key in keys {
        let key_ops = by_key.get(key).map(Vec::as_slice).unwrap_or(&[]);
        let live: BTreeSet<Option<(&String, &Version)>> =
            copies.values().map(|c| c.get(key).and_then(|h| h.value.as_ref().map(|v| (v, &h.version)))).collect();
        if live.len() > 1 {
            anomalies.push(Anomaly {
                kind: AnomalyKind::Divergence,
                key: key.to_string(),
                region: "*".into(),
                detail: copies
                    .iter()
                    .map(|(region, c)| format!("{region}: {}", shown(c.get(key))))
                    .collect::<Vec<_>>()
                    .join("; "),
            });
        }
        for (region, copy) in copies {
            anomalies.extend(check_key(key, key_ops, region, copy.get(key)));
        }
    }
    anomalies
}

fn shown(held: Option<&Held>) -> String {
    match held {
        None => "absent".into(),
        Some(Held { value: None, version }) => format!("tombstone @{}/{}", version.micros, version.origin),
        Some(Held { value: Some(value), version }) => format!("{value:?} @{}/{}", version.micros, version.origin),
    }
}

fn check_key(key: &str, ops: &[&Op], region: &str, held: Option<&Held>) -> Vec<Anomaly> {
    let anomaly = |kind, detail: String| Anomaly { kind, key: key.to_string(), region: region.to_string(), detail };
    let mut found = Vec::new();
    // The acknowledged operation with the greatest version.
    let top = ops.iter().filter_map(|op| op.version().map(|v| (v, *op))).max_by(|a, b| a.0.cmp(b.0));
    let held_version = held.map(|h| &h.version);
    // An acknowledged operation given exactly the held version must be what is held.
    if let Some(held) = held {
        if let Some(op) = ops.iter().find(|op| op.version() == Some(&held.version)) {
            if op.value != held.value {
                found.push(anomaly(
                    AnomalyKind::VersionMismatch,
                    format!("holds {} but op {} was given that version for {:?}", shown(Some(held)), op.id, op.value),
                ));
            }
        }
    }
    match held.and_then(|h| h.value.as_ref()) {
        Some(value) => {
            let writer = ops.iter().find(|op| op.value.as_ref() == Some(value));
            match writer {
                None => {
                    found.push(anomaly(AnomalyKind::PhantomValue, format!("holds {value:?}, which no operation wrote")))
                }
                Some(op) if !op.may_have_applied() => found.push(anomaly(
                    AnomalyKind::PhantomValue,
                    format!("holds {value:?}, written by op {} which failed for certain", op.id),
                )),
                // Each value is written once: held at another version than its write was given, it
                // was applied again or restamped, and whatever it stands for can hide a lost write.
                Some(op) => {
                    if let Some(version) = op.version().filter(|v| held_version != Some(*v)) {
                        found.push(anomaly(
                            AnomalyKind::VersionMismatch,
                            format!(
                                "holds {} but op {} wrote it acknowledged at {}/{}",
                                shown(held),
                                op.id,
                                version.micros,
                                version.origin
                            ),
                        ));
                    }
                }
            }
            if let Some((top_version, top_op)) = top {
                if held_version < Some(top_version) {
                    let kind =
                        if top_op.kind == OpKind::Delete { AnomalyKind::Resurrection } else { AnomalyKind::LostWrite };
                    found.push(anomaly(
                        kind,
                        format!(
                            "holds {} though op {} ({:?}) was acknowledged at the greater version {}/{}",
                            shown(held),
                            top_op.id,
                            top_op.kind,
                            top_version.micros,
                            top_version.origin
                        ),
                    ));
                }
            }
        }
        // Absent or a tombstone: the greatest acknowledged operation must be a delete, or a delete that
        // may have applied after it must exist (an unknown one, or one acknowledged later).
        None => match top {
            Some((top_version, top_op)) if top_op.kind != OpKind::Delete => {
                let explained = match held_version {
                    Some(tombstone) => tombstone > top_version && tombstone_made_by_a_delete(ops, tombstone),
                    None => ops.iter().any(|op| {
                        op.kind == OpKind::Delete
                            && match &op.outcome {
                                Outcome::Ok { version } => version > top_version,
                                Outcome::Unknown { .. } => true,
                                Outcome::Failed { .. } => false,
                            }
                    }),
                };
                if !explained {
                    found.push(anomaly(
                        AnomalyKind::LostWrite,
                        format!(
                        "holds {} though op {} wrote {:?}, acknowledged at {}/{}, and no later delete may have applied",
                        shown(held),
                        top_op.id,
                        top_op.value,
                        top_version.micros,
                        top_version.origin
                    ),
                    ));
                }
            }
            _ => {}
        },
    }
    // A tombstone comes from a delete: one acknowledged at its version, or one whose outcome is unknown.
    if let Some(Held { value: None, version }) = held {
        if !tombstone_made_by_a_delete(ops, version) {
            found.push(anomaly(
                AnomalyKind::PhantomValue,
                format!("holds {}, which no delete that may have applied made", shown(held)),
            ));
        }
    }
    found
}

fn tombstone_made_by_a_delete(ops: &[&Op], version: &Version) -> bool {
    ops.iter().any(|op| {
        op.kind == OpKind::Delete
            && match &op.outcome {
                Outcome::Ok { version: acknowledged } => acknowledged == version,
                Outcome::Unknown { .. } => true,
                Outcome::Failed { .. } => false,
            }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(micros: u64, origin: &str) -> Version {
        Version { micros, origin: origin.into() }
    }

    fn op(id: u64, kind: OpKind, value: Option<&str>, outcome: Outcome) -> Op {
        Op {
            id,
            region: "us-east".into(),
            writer: 0,
            kind,
            key: "k".into(),
            value: value.map(str::to_string),
            start_micros: id * 10,
            end_micros: id * 10 + 5,
            outcome,
        }
    }

    fn ok(micros: u64, origin: &str) -> Outcome {
        Outcome::Ok { version: v(micros, origin) }
    }

    fn unknown() -> Outcome {
        Outcome::Unknown { error: "timed out".into() }
    }

    fn copies(held: &[(&str, Option<Held>)]) -> BTreeMap<String, Copy> {
        held.iter()
            .map(|(region, h)| (region.to_string(), h.iter().map(|h| ("k".to_string(), h.clone())).collect()))
            .collect()
    }

    fn item(value: &str, micros: u64, origin: &str) -> Option<Held> {
        Some(Held { value: Some(value.into()), version: v(micros, origin) })
    }

    fn kinds(anomalies: &[Anomaly]) -> Vec<AnomalyKind> {
        anomalies.iter().map(|a| a.kind).collect()
    }

    #[test]
    fn the_last_acknowledged_writer_everywhere_is_no_anomaly() {
        let ops = [
            op(0, OpKind::Put, Some("a"), ok(10, "us-east")),
            op(1, OpKind::Put, Some("b"), ok(20, "eu-west")),
            op(2, OpKind::Update, Some("c"), Outcome::Failed { error: "ConditionalCheckFailedException".into() }),
        ];
        let copies = copies(&[("us-east", item("b", 20, "eu-west")), ("eu-west", item("b", 20, "eu-west"))]);
        assert!(check(&ops, &copies).is_empty());
    }

    #[test]
    fn an_older_value_where_a_newer_write_was_acknowledged_is_a_lost_write() {
        let ops = [op(0, OpKind::Put, Some("a"), ok(10, "us-east")), op(1, OpKind::Put, Some("b"), ok(20, "eu-west"))];
        let copies = copies(&[("us-east", item("a", 10, "us-east"))]);
        assert_eq!(kinds(&check(&ops, &copies)), [AnomalyKind::LostWrite]);
    }

    #[test]
    fn a_missing_item_is_lost_unless_a_later_or_unknown_delete_explains_it() {
        let put = op(0, OpKind::Put, Some("a"), ok(10, "us-east"));
        assert_eq!(kinds(&check(std::slice::from_ref(&put), &copies(&[("us-east", None)]))), [AnomalyKind::LostWrite]);
        let earlier_delete = op(1, OpKind::Delete, None, ok(5, "eu-west"));
        assert_eq!(
            kinds(&check(&[put.clone(), earlier_delete], &copies(&[("us-east", None)]))),
            [AnomalyKind::LostWrite]
        );
        let unknown_delete = op(1, OpKind::Delete, None, unknown());
        assert!(check(&[put.clone(), unknown_delete.clone()], &copies(&[("us-east", None)])).is_empty());
        // A tombstone older than the write does not explain it, even with an unknown delete.
        let old_tombstone = Some(Held { value: None, version: v(7, "eu-west") });
        assert_eq!(
            kinds(&check(&[put.clone(), unknown_delete], &copies(&[("us-east", old_tombstone)]))),
            [AnomalyKind::LostWrite]
        );
        let later_delete = op(1, OpKind::Delete, None, ok(15, "eu-west"));
        let tombstone = Some(Held { value: None, version: v(15, "eu-west") });
        assert!(check(&[put, later_delete], &copies(&[("us-east", tombstone)])).is_empty());
    }

    #[test]
    fn a_value_held_at_another_version_than_its_write_was_given_is_a_mismatch() {
        // b's acknowledged write is hidden by a applied again later: only the versions show it.
        let ops = [op(0, OpKind::Put, Some("a"), ok(10, "us-east")), op(1, OpKind::Put, Some("b"), ok(20, "eu-west"))];
        assert_eq!(
            kinds(&check(&ops, &copies(&[("us-east", item("a", 40, "us-east"))]))),
            [AnomalyKind::VersionMismatch]
        );
    }

    #[test]
    fn a_tombstone_no_delete_made_is_a_phantom() {
        let ops = [op(0, OpKind::Put, Some("a"), ok(10, "us-east")), op(1, OpKind::Delete, None, ok(20, "eu-west"))];
        let stray = Some(Held { value: None, version: v(30, "us-east") });
        assert_eq!(kinds(&check(&ops, &copies(&[("us-east", stray)]))), [AnomalyKind::PhantomValue]);
        let made = Some(Held { value: None, version: v(20, "eu-west") });
        assert!(check(&ops, &copies(&[("us-east", made)])).is_empty());
    }

    #[test]
    fn an_item_older_than_an_acknowledged_delete_is_a_resurrection() {
        let ops = [op(0, OpKind::Put, Some("a"), ok(10, "us-east")), op(1, OpKind::Delete, None, ok(20, "eu-west"))];
        let copies = copies(&[("us-east", item("a", 10, "us-east"))]);
        assert_eq!(kinds(&check(&ops, &copies)), [AnomalyKind::Resurrection]);
    }

    #[test]
    fn a_value_nobody_wrote_or_a_failed_write_is_a_phantom() {
        let ops = [
            op(0, OpKind::Put, Some("a"), ok(10, "us-east")),
            op(1, OpKind::Update, Some("b"), Outcome::Failed { error: "ConditionalCheckFailedException".into() }),
        ];
        assert_eq!(kinds(&check(&ops, &copies(&[("us-east", item("z", 30, "us-east"))]))), [AnomalyKind::PhantomValue]);
        assert_eq!(kinds(&check(&ops, &copies(&[("us-east", item("b", 30, "us-east"))]))), [AnomalyKind::PhantomValue]);
    }

    #[test]
    fn an_unknown_write_may_win_with_a_greater_version() {
        let ops = [op(0, OpKind::Put, Some("a"), ok(10, "us-east")), op(1, OpKind::Put, Some("b"), unknown())];
        assert!(check(&ops, &copies(&[("us-east", item("b", 30, "eu-west"))])).is_empty());
        assert!(check(&ops, &copies(&[("us-east", item("a", 10, "us-east"))])).is_empty());
    }

    #[test]
    fn regions_that_differ_are_a_divergence_and_the_version_must_match_its_write() {
        let ops = [op(0, OpKind::Put, Some("a"), ok(10, "us-east")), op(1, OpKind::Put, Some("b"), unknown())];
        let copies = copies(&[("us-east", item("a", 10, "us-east")), ("eu-west", item("b", 10, "us-east"))]);
        assert_eq!(kinds(&check(&ops, &copies)), [AnomalyKind::Divergence, AnomalyKind::VersionMismatch]);
    }
}
