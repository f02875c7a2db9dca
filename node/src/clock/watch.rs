//! How far this node's wall clock is from its region's: each peer's clock is measured NTP's way (our
//! times before and after its reading), and a node leads only while its clock agrees, within the
//! allowed offset, with a majority of the region's voters (itself among them). A leader whose clock is
//! ahead would stamp versions in the future, and every region applying them would raise its clock for
//! good; last writer wins would then favour that node's writes over later ones.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use crate::raft::types::NodeId;

/// Samples kept per peer; the one with the shortest round trip is the estimate.
const SAMPLES: usize = 8;
/// A peer not measured for this long (three readings missed) no longer counts as agreeing, and its
/// older readings no longer count at all (a clock that jumped shows at once).
const FRESH_FOR: Duration = Duration::from_millis(1500);
/// A node that refused to lead refuses for at least this long (a follower gives up on a silent leader
/// after about 1.2 s, so a shorter refusal would only refuse calls), and agrees again only within
/// this fraction of the allowed offset: no flapping at the bound.
const REFUSE_AT_LEAST: Duration = Duration::from_secs(3);
const RECOVER_WITHIN: f64 = 0.8;

/// One reading of a peer's clock against this node's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// The peer's clock minus this node's, in microseconds.
    pub offset_micros: i64,
    /// The round trip of the reading: the estimate is good to half of it.
    pub round_trip_micros: u64,
    pub at: Instant,
}

impl Sample {
    /// A reading: this node's clock when it asked (`sent_micros`), the peer's clock in its answer, and
    /// the round trip (measured on the monotonic clock, so a step of the wall clock meanwhile cannot
    /// shrink it); the peer read its clock at the midpoint, give or take half the round trip.
    pub fn measure(sent_micros: u64, peer_micros: u64, round_trip: Duration, at: Instant) -> Sample {
        let round_trip_micros = round_trip.as_micros() as u64;
        let midpoint = sent_micros + round_trip_micros / 2;
        Sample { offset_micros: peer_micros as i64 - midpoint as i64, round_trip_micros, at }
    }
}

/// Whether this node may lead, and why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// This node's clock minus its region's (the median of the voters' clocks, its own among them).
    pub offset_micros: i64,
    /// The voters whose clocks agree with this node's, itself included.
    pub agreeing: usize,
    pub voters: usize,
    /// Why this node does not lead; none when it may.
    pub refusal: Option<String>,
}

impl Verdict {
    pub fn may_lead(&self) -> bool {
        self.refusal.is_none()
    }
}

/// The readings of the peers' clocks, and the verdict they give.
#[derive(Debug)]
pub struct ClockWatch {
    id: NodeId,
    max_offset: Duration,
    samples: BTreeMap<NodeId, VecDeque<Sample>>,
    /// When this node last refused to lead for its clock.
    refused_at: Option<Instant>,
}

impl ClockWatch {
    pub fn new(id: NodeId, max_offset: Duration) -> ClockWatch {
        ClockWatch { id, max_offset, samples: BTreeMap::new(), refused_at: None }
    }

    pub fn record(&mut self, peer: NodeId, sample: Sample) {
        let samples = self.samples.entry(peer).or_default();
        if samples.len() == SAMPLES {
            samples.pop_front();
        }
        samples.push_back(sample);
    }

    /// A peer's clock minus ours, by its fresh readings' shortest round trip (the latest of equals); none
    /// when not measured lately.
    pub fn estimate(&self, peer: NodeId, now: Instant) -> Option<Sample> {
        self.samples
            .get(&peer)?
            .iter()
            .filter(|s| now.saturating_duration_since(s.at) < FRESH_FOR)
            .min_by_key(|s| (s.round_trip_micros, std::cmp::Reverse(s.at)))
            .copied()
    }

    /// Whether this node may lead a region of these voters.
    pub fn verdict(&mut self, voters: &BTreeSet<NodeId>, now: Instant) -> Verdict {
        let refusing = self.refused_at.is_some_and(|at| now.saturating_duration_since(at) < REFUSE_AT_LEAST * 4);
        let allowed = if refusing { self.max_offset.mul_f64(RECOVER_WITHIN) } else { self.max_offset };
        let max = allowed.as_micros() as i64;
        let mut offsets = vec![0i64]; // this node's own clock
        let mut agreeing = usize::from(voters.contains(&self.id));
        let mut disagreeing = 0;
        for peer in voters.iter().filter(|p| **p != self.id) {
            let Some(sample) = self.estimate(*peer, now) else { continue };
            offsets.push(sample.offset_micros);
            // The benefit of the doubt: the reading is good to half its round trip.
            if sample.offset_micros.abs() <= max + (sample.round_trip_micros / 2) as i64 {
                agreeing += 1;
            } else {
                disagreeing += 1;
            }
        }
        offsets.sort_unstable();
        let offset_micros = -offsets[(offsets.len() - 1) / 2];
        let majority = voters.len() / 2 + 1;
        let held = self.refused_at.filter(|at| now.saturating_duration_since(*at) < REFUSE_AT_LEAST);
        let refusal = if !voters.contains(&self.id) {
            Some("not a voter".to_string())
        } else if agreeing >= majority && held.is_none() {
            None
        } else {
            let measured = offsets.len() - 1;
            let since = if agreeing >= majority { " (refusing a while longer after being off)" } else { "" };
            Some(format!(
                "clock off by {} ms from its region (max {} ms): {agreeing} of {} voters agree with it, {majority} needed ({measured} peers measured){since}",
                offset_micros / 1000,
                allowed.as_millis(),
                voters.len()
            ))
        };
        // Held only when a peer's clock was measured off (not while peers are merely unreachable).
        if agreeing < majority && disagreeing > 0 && voters.contains(&self.id) {
            self.refused_at = Some(now);
        } else if refusal.is_none() {
            self.refused_at = None;
        }
        Verdict { offset_micros, agreeing, voters: voters.len(), refusal }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(watch: &mut ClockWatch, peer: NodeId, offset_ms: i64, now: Instant) {
        watch.record(peer, Sample { offset_micros: offset_ms * 1000, round_trip_micros: 200, at: now });
    }

    #[test]
    fn a_reading_is_the_peer_clock_against_the_midpoint_of_the_round_trip() {
        let now = Instant::now();
        let sample = Sample::measure(1_000_000, 3_000_500, Duration::from_micros(1_000), now);
        assert_eq!(sample, Sample { offset_micros: 2_000_000, round_trip_micros: 1_000, at: now });
        let behind = Sample::measure(5_000, 4_000, Duration::ZERO, now);
        assert_eq!(behind.offset_micros, -1_000);
    }

    #[test]
    fn the_node_whose_clock_is_off_refuses_and_the_others_lead() {
        let now = Instant::now();
        let voters: BTreeSet<NodeId> = [1, 2, 3].into();
        // Node 3 is 2 s ahead: from 1, node 2 is at 0 and node 3 at +2 s.
        let mut one = ClockWatch::new(1, Duration::from_millis(500));
        at(&mut one, 2, 10, now);
        at(&mut one, 3, 2_000, now);
        let verdict = one.verdict(&voters, now);
        assert!(verdict.may_lead(), "{verdict:?}");
        assert_eq!((verdict.agreeing, verdict.offset_micros), (2, -10_000), "the median clock is node 2's");

        let mut three = ClockWatch::new(3, Duration::from_millis(500));
        at(&mut three, 1, -2_000, now);
        at(&mut three, 2, -1_990, now);
        let verdict = three.verdict(&voters, now);
        assert!(!verdict.may_lead());
        assert_eq!((verdict.agreeing, verdict.offset_micros), (1, 1_990_000));
        assert!(verdict.refusal.unwrap().starts_with("clock off by 1990 ms from its region (max 500 ms)"));
    }

    #[test]
    fn a_node_that_refused_keeps_refusing_a_while_and_recovers_only_well_within_the_bound() {
        let start = Instant::now();
        let voters: BTreeSet<NodeId> = [1, 2, 3].into();
        let mut watch = ClockWatch::new(1, Duration::from_millis(500));
        at(&mut watch, 2, 600, start);
        at(&mut watch, 3, 600, start);
        assert!(!watch.verdict(&voters, start).may_lead(), "600 ms off");
        // Back within the bound, but only just, and at once: still refusing.
        let soon = start + Duration::from_millis(500);
        at(&mut watch, 2, 450, soon);
        at(&mut watch, 3, 450, soon);
        let verdict = watch.verdict(&voters, soon);
        assert!(!verdict.may_lead(), "{verdict:?}");
        assert!(verdict.refusal.unwrap().starts_with("clock off by -450 ms from its region (max 400 ms)"));
        // Well within, past the hold: it may lead again; and the full bound applies once more.
        let later = soon + REFUSE_AT_LEAST;
        at(&mut watch, 2, 300, later);
        at(&mut watch, 3, 300, later);
        assert!(watch.verdict(&voters, later).may_lead());
        let after = later + Duration::from_millis(500);
        at(&mut watch, 2, 450, after);
        at(&mut watch, 3, 450, after);
        assert!(watch.verdict(&voters, after).may_lead(), "450 ms is within 500 ms");
    }

    #[test]
    fn unmeasured_or_stale_peers_do_not_agree_and_a_single_voter_always_may_lead() {
        let now = Instant::now();
        let mut watch = ClockWatch::new(1, Duration::from_millis(500));
        assert!(watch.verdict(&[1].into(), now).may_lead());
        assert!(!watch.verdict(&[1, 2, 3].into(), now).may_lead(), "no peer measured yet");
        at(&mut watch, 2, 0, now);
        assert!(watch.verdict(&[1, 2, 3].into(), now).may_lead());
        assert!(!watch.verdict(&[1, 2, 3].into(), now + FRESH_FOR).may_lead(), "the reading went stale");
        assert!(!watch.verdict(&[2, 3].into(), now).may_lead(), "a learner does not lead");
    }

    #[test]
    fn the_estimate_is_the_reading_with_the_shortest_round_trip() {
        let now = Instant::now();
        let mut watch = ClockWatch::new(1, Duration::from_millis(500));
        watch.record(2, Sample { offset_micros: 900_000, round_trip_micros: 1_800_000, at: now });
        watch.record(2, Sample { offset_micros: 1_000, round_trip_micros: 300, at: now });
        watch.record(2, Sample { offset_micros: 400_000, round_trip_micros: 800_000, at: now });
        assert_eq!(watch.estimate(2, now).map(|s| s.offset_micros), Some(1_000));
        for _ in 0..SAMPLES {
            watch.record(2, Sample { offset_micros: 700_000, round_trip_micros: 5_000, at: now });
        }
        assert_eq!(watch.estimate(2, now).map(|s| s.offset_micros), Some(700_000), "old readings are dropped");
        let verdict = watch.verdict(&[1, 2, 3].into(), now);
        assert_eq!(verdict.offset_micros, 0, "the median of 0 (this node), +700 ms (node 2) and node 3 unmeasured");
    }
}
