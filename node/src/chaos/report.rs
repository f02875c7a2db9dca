//! The chaos run's report: JSON with every figure and, for each anomaly, the history slice and the
//! nemesis events around it; a short human summary; and a timeline picture (SVG) of each region's
//! throughput and latency with the faults shaded, as Jepsen draws them.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use plotters::prelude::*;
use serde::Serialize;

use super::checker::{Anomaly, Copy};
use super::history::{Op, Outcome};
use super::nemesis::Event;

/// What the run gathered.
pub struct Inputs<'a> {
    pub table: String,
    pub seed: u64,
    pub started_at: time::OffsetDateTime,
    pub duration: Duration,
    pub ops: Vec<Op>,
    pub events: Vec<Event>,
    pub convergence: Vec<Option<Duration>>,
    pub final_convergence: Option<Duration>,
    pub anomalies: Vec<Anomaly>,
    pub copies: &'a BTreeMap<String, Copy>,
    pub timeout: Duration,
    /// What the heal after the last cycle could not undo.
    pub final_heal_error: Option<String>,
    /// Ctrl-C ended the cycles early.
    pub interrupted: bool,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct Counts {
    pub total: usize,
    pub ok: usize,
    pub failed: usize,
    pub unknown: usize,
}

impl Counts {
    fn add(&mut self, op: &Op) {
        self.total += 1;
        match op.outcome {
            Outcome::Ok { .. } => self.ok += 1,
            Outcome::Failed { .. } => self.failed += 1,
            Outcome::Unknown { .. } => self.unknown += 1,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Convergence {
    /// Milliseconds from each heal to identical regions (writers quiet meanwhile); null: not within the timeout.
    pub per_cycle_ms: Vec<Option<u64>>,
    pub p50_ms: Option<u64>,
    pub p99_ms: Option<u64>,
    pub max_ms: Option<u64>,
    pub not_converged: usize,
    pub after_final_heal_ms: Option<u64>,
    pub timeout_ms: u64,
}

/// An anomaly with what led to it.
#[derive(Debug, Clone, Serialize)]
pub struct Found {
    #[serde(flatten)]
    pub anomaly: Anomaly,
    /// The last operations on the key.
    pub history: Vec<Op>,
    /// The faults around them.
    pub nemesis: Vec<Event>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub table: String,
    pub seed: u64,
    pub started_at: String,
    pub duration_secs: f64,
    pub cycles: usize,
    pub operations: Counts,
    pub operations_by_region: BTreeMap<String, Counts>,
    pub faults_by_kind: BTreeMap<String, usize>,
    pub fault_errors: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub final_heal_error: Option<String>,
    pub interrupted: bool,
    pub convergence: Convergence,
    pub anomalies_by_kind: BTreeMap<String, usize>,
    pub items_by_region: BTreeMap<String, usize>,
    pub anomalies: Vec<Found>,
    pub faults: Vec<Event>,
    #[serde(skip)]
    ops: Vec<Op>,
}

/// The q-quantile of sorted values (nearest rank).
fn quantile(sorted: &[u64], q: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

const SHOWN_OPS: usize = 40;
const AROUND: u64 = 10_000_000;

impl Report {
    pub fn new(inputs: Inputs<'_>) -> Report {
        let mut operations = Counts::default();
        let mut operations_by_region: BTreeMap<String, Counts> = BTreeMap::new();
        for op in &inputs.ops {
            operations.add(op);
            operations_by_region.entry(op.region.clone()).or_default().add(op);
        }
        let mut faults_by_kind = BTreeMap::new();
        for event in &inputs.events {
            *faults_by_kind.entry(event.fault.name().to_string()).or_insert(0) += 1;
        }
        let per_cycle_ms: Vec<Option<u64>> =
            inputs.convergence.iter().map(|d| d.map(|d| d.as_millis() as u64)).collect();
        let mut converged: Vec<u64> = per_cycle_ms.iter().flatten().copied().collect();
        converged.sort_unstable();
        let not_converged =
            per_cycle_ms.iter().filter(|d| d.is_none()).count() + usize::from(inputs.final_convergence.is_none());
        let convergence = Convergence {
            p50_ms: quantile(&converged, 0.5),
            p99_ms: quantile(&converged, 0.99),
            max_ms: converged.last().copied(),
            not_converged,
            after_final_heal_ms: inputs.final_convergence.map(|d| d.as_millis() as u64),
            timeout_ms: inputs.timeout.as_millis() as u64,
            per_cycle_ms,
        };
        let mut anomalies_by_kind: BTreeMap<String, usize> = BTreeMap::new();
        for anomaly in &inputs.anomalies {
            let name = serde_json::to_value(anomaly.kind).ok().and_then(|v| v.as_str().map(str::to_string));
            *anomalies_by_kind.entry(name.unwrap_or_default()).or_insert(0) += 1;
        }
        if not_converged > 0 {
            anomalies_by_kind.insert("not-converged".into(), not_converged);
        }
        let anomalies = inputs
            .anomalies
            .into_iter()
            .map(|anomaly| {
                let mut history: Vec<Op> = inputs.ops.iter().filter(|op| op.key == anomaly.key).cloned().collect();
                history.sort_by_key(|op| op.start_micros);
                let history = history.split_off(history.len().saturating_sub(SHOWN_OPS));
                let from = history.first().map_or(0, |op| op.start_micros.saturating_sub(AROUND));
                let to = history.last().map_or(u64::MAX, |op| op.end_micros.saturating_add(AROUND));
                let nemesis =
                    inputs.events.iter().filter(|e| e.end_micros >= from && e.start_micros <= to).cloned().collect();
                Found { anomaly, history, nemesis }
            })
            .collect();
        Report {
            table: inputs.table,
            seed: inputs.seed,
            started_at: inputs.started_at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
            duration_secs: inputs.duration.as_secs_f64(),
            cycles: inputs.events.len(),
            operations,
            operations_by_region,
            fault_errors: inputs.events.iter().filter(|e| e.error.is_some()).count(),
            faults_by_kind,
            final_heal_error: inputs.final_heal_error,
            interrupted: inputs.interrupted,
            convergence,
            anomalies_by_kind,
            items_by_region: inputs
                .copies
                .iter()
                .map(|(region, copy)| (region.clone(), copy.values().filter(|h| h.value.is_some()).count()))
                .collect(),
            anomalies,
            faults: inputs.events,
            ops: inputs.ops,
        }
    }

    /// Ran to the end, no anomaly, every fault injected and healed, and every heal converged.
    pub fn clean(&self) -> bool {
        self.anomalies_by_kind.is_empty()
            && self.fault_errors == 0
            && self.final_heal_error.is_none()
            && !self.interrupted
    }

    pub fn summary(&self) -> String {
        let ms = |v: Option<u64>| v.map_or("-".to_string(), |v| format!("{v} ms"));
        let ops = &self.operations;
        let mut out = format!(
            "chaos: table {} seed {}: {} cycles in {:.0} s\n",
            self.table, self.seed, self.cycles, self.duration_secs
        );
        let faults: Vec<String> = self.faults_by_kind.iter().map(|(k, n)| format!("{k} {n}")).collect();
        out += &format!("faults: {} ({} failed to inject or heal)\n", faults.join(", "), self.fault_errors);
        if let Some(error) = &self.final_heal_error {
            out += &format!("THE FINAL HEAL FAILED: {error}\n");
        }
        out += &format!(
            "operations: {} ({} acknowledged, {} failed, {} unknown)\n",
            ops.total, ops.ok, ops.failed, ops.unknown
        );
        let c = &self.convergence;
        out += &format!(
            "convergence after a heal: p50 {} p99 {} max {}; after the final heal {}; {} not within {} s\n",
            ms(c.p50_ms),
            ms(c.p99_ms),
            ms(c.max_ms),
            ms(c.after_final_heal_ms),
            c.not_converged,
            c.timeout_ms / 1000
        );
        let items: Vec<String> = self.items_by_region.iter().map(|(r, n)| format!("{r} {n}")).collect();
        out += &format!("items: {}\n", items.join(", "));
        if self.interrupted {
            out += "INTERRUPTED before the last cycle\n";
        }
        if self.anomalies_by_kind.is_empty() {
            out += "anomalies: none\n";
        } else {
            let kinds: Vec<String> = self.anomalies_by_kind.iter().map(|(k, n)| format!("{k} {n}")).collect();
            out += &format!("ANOMALIES: {}\n", kinds.join(", "));
            for found in self.anomalies.iter().take(10) {
                let a = &found.anomaly;
                out += &format!("  {:?} {} in {}: {}\n", a.kind, a.key, a.region, a.detail);
            }
        }
        out
    }

    /// report.json, summary.txt, timeline.svg and history.jsonl (every operation, one per line) in `dir`.
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        let json = serde_json::to_vec_pretty(self)?;
        std::fs::write(dir.join("report.json"), json).context("cannot write report.json")?;
        let mut history = Vec::new();
        for op in &self.ops {
            serde_json::to_writer(&mut history, op)?;
            history.push(b'\n');
        }
        std::fs::write(dir.join("history.jsonl"), history).context("cannot write history.jsonl")?;
        std::fs::write(dir.join("summary.txt"), self.summary()).context("cannot write summary.txt")?;
        self.draw(&dir.join("timeline.svg"))
    }

    /// Per region: acknowledged and other operations per second, and latency p50/p99 per second.
    fn draw(&self, path: &Path) -> anyhow::Result<()> {
        let seconds = self.duration_secs.ceil().max(1.0) as usize;
        let regions: Vec<&String> = self.operations_by_region.keys().collect();
        // About four pixels a second, so a long run's faults stay apart.
        let width = (seconds as u32 * 4).clamp(1400, 8000);
        let root = SVGBackend::new(path, (width, 260 * 2 * regions.len().max(1) as u32)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e}"))?;
        let areas = root.split_evenly((regions.len().max(1) * 2, 1));
        for (i, region) in regions.iter().enumerate() {
            let mut ok = vec![0f64; seconds + 1];
            let mut other = vec![0f64; seconds + 1];
            let mut latencies: Vec<Vec<u64>> = vec![Vec::new(); seconds + 1];
            for op in self.ops.iter().filter(|op| &op.region == *region) {
                let second = ((op.end_micros / 1_000_000) as usize).min(seconds);
                if matches!(op.outcome, Outcome::Ok { .. }) {
                    ok[second] += 1.0;
                } else {
                    other[second] += 1.0;
                }
                latencies[second].push(op.end_micros.saturating_sub(op.start_micros));
            }
            for second in &mut latencies {
                second.sort_unstable();
            }
            let per_second = |q: f64| -> Vec<(f64, f64)> {
                latencies
                    .iter()
                    .enumerate()
                    .filter(|(_, l)| !l.is_empty())
                    .map(|(s, l)| (s as f64, quantile(l, q).unwrap_or(0) as f64 / 1000.0))
                    .collect()
            };
            let (p50, p99) = (per_second(0.5), per_second(0.99));
            let top_rate = ok.iter().chain(&other).fold(1.0f64, |a, b| a.max(*b)) * 1.1;
            let top_latency = p99.iter().fold(1.0f64, |a, (_, b)| a.max(*b)) * 1.1;
            let x = 0f64..seconds as f64;
            let charts = [
                (format!("{region}: operations per second (acknowledged; failed or unknown)"), top_rate),
                (format!("{region}: latency per second, ms (p50, p99)"), top_latency),
            ];
            for (j, (caption, top)) in charts.iter().enumerate() {
                let mut chart = ChartBuilder::on(&areas[i * 2 + j])
                    .caption(caption, ("sans-serif", 16))
                    .margin(8)
                    .x_label_area_size(28)
                    .y_label_area_size(56)
                    .build_cartesian_2d(x.clone(), 0f64..*top)
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                chart
                    .configure_mesh()
                    .x_desc("seconds since the start")
                    .disable_x_mesh()
                    .light_line_style(WHITE)
                    .y_labels(6)
                    .draw()
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                // The faults, shaded, each labelled with its kind.
                for event in &self.faults {
                    let (from, to) = (event.start_micros as f64 / 1e6, event.end_micros as f64 / 1e6);
                    let shade = if event.error.is_some() { BLACK.mix(0.08) } else { RED.mix(0.12) };
                    chart
                        .draw_series(std::iter::once(Rectangle::new([(from, 0.0), (to, *top)], shade.filled())))
                        .map_err(|e| anyhow::anyhow!("{e}"))?;
                    if j == 0 {
                        chart
                            .draw_series(std::iter::once(Text::new(
                                event.fault.name().to_string(),
                                (from, *top * 0.97),
                                ("sans-serif", 10).into_font().color(&RED.mix(0.8)),
                            )))
                            .map_err(|e| anyhow::anyhow!("{e}"))?;
                    }
                }
                let lines: Vec<(Vec<(f64, f64)>, RGBColor)> = if j == 0 {
                    let series = |v: &[f64]| v.iter().enumerate().map(|(s, n)| (s as f64, *n)).collect();
                    vec![(series(&ok), BLUE), (series(&other), RGBColor(230, 120, 0))]
                } else {
                    vec![(p50.clone(), BLUE), (p99.clone(), RGBColor(230, 120, 0))]
                };
                for (points, color) in lines {
                    chart
                        .draw_series(LineSeries::new(points, color.stroke_width(1)))
                        .map_err(|e| anyhow::anyhow!("{e}"))?;
                }
            }
        }
        root.present().map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank() {
        let values: Vec<u64> = (1..=100).collect();
        assert_eq!(quantile(&values, 0.5), Some(50));
        assert_eq!(quantile(&values, 0.99), Some(99));
        assert_eq!(quantile(&[7], 0.99), Some(7));
        assert_eq!(quantile(&[], 0.5), None);
    }
}
