//! What a scenario's user just saw, in two lines computed from the
//! reports: one for the clusterip run, one for the headless run.

use std::time::SystemTime;

use super::scenario::CONNECTION_AGE;
use crate::plan::Scenario;
use crate::report::{EndpointReport, Report, parse_rfc3339};

/// Something the script did to the pods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A new pod was started and listed.
    Joined(String),
    /// A pod was unlisted, then drained.
    Removed(String),
    /// A pod was killed without GOAWAY.
    Killed(String),
}

/// An event and when it happened.
#[derive(Debug, Clone)]
pub struct Happened {
    pub at: SystemTime,
    pub event: Event,
}

/// The explanation printed after the tables: a heading and one line per
/// run (`runs` pairs each report with what happened during it).
pub fn explain(scenario: Scenario, runs: &[(&Report, &[Happened])]) -> String {
    let mut text = String::from("What you see:\n");
    for (report, happened) in runs {
        let seen = Seen { report, happened };
        let line = match (scenario, report.mode.as_str()) {
            (Scenario::ScaleUp, "clusterip") => seen.scale_up_pinned(),
            (Scenario::ScaleUp, _) => seen.scale_up_balanced(),
            (Scenario::Rollout, "clusterip") => seen.rollout_pinned(),
            (Scenario::Rollout, _) => seen.rollout_balanced(),
            (Scenario::MaxConnectionAge, "clusterip") => seen.aged_pinned(),
            (Scenario::MaxConnectionAge, _) => seen.aged_balanced(),
            (Scenario::Kill, "clusterip") => seen.kill_pinned(),
            (Scenario::Kill, _) => seen.kill_balanced(),
        };
        text.push_str(&format!("  {}: {line}\n", report.mode));
    }
    text.truncate(text.trim_end().len());
    text
}

/// One run and the events during it.
struct Seen<'a> {
    report: &'a Report,
    happened: &'a [Happened],
}

impl Seen<'_> {
    fn scale_up_pinned(&self) -> String {
        let joined = self.named(|e| matches!(e, Event::Joined(_)));
        let busiest = self.busiest();
        format!(
            "{} that joined at {} got {} calls; the one connection stayed where it was first sent{}.",
            pods_phrase(&joined),
            self.when(|e| matches!(e, Event::Joined(_))),
            self.calls_of(&joined),
            busiest
                .map(|e| format!(" ({} served {})", e.name, percent(e.share)))
                .unwrap_or_default()
        )
    }

    fn scale_up_balanced(&self) -> String {
        let joined = self.named(|e| matches!(e, Event::Joined(_)));
        let share: f64 = joined
            .iter()
            .filter_map(|n| self.row(n))
            .map(|e| e.share)
            .sum();
        format!(
            "the resolver listed {} at {} and the pool picked them per call: they got {} of all calls{}.",
            pods_phrase(&joined),
            self.when(|e| matches!(e, Event::Joined(_))),
            percent(share),
            self.each_got(&joined)
        )
    }

    fn rollout_pinned(&self) -> String {
        let served = self.served();
        format!(
            "the one connection moved only when its pod drained (GOAWAY): {} served calls, {} errors; \
             the other pods got nothing.",
            pods_phrase(&served),
            self.report.errors
        )
    }

    fn rollout_balanced(&self) -> String {
        let joined = self.named(|e| matches!(e, Event::Joined(_)));
        let removed = self.named(|e| matches!(e, Event::Removed(_)));
        format!(
            "{} replaced {} at {}; every new pod got calls once listed{}, with {} errors over {} calls.",
            pods_phrase(&joined),
            removed.join(", "),
            self.when(|e| matches!(e, Event::Removed(_))),
            self.each_got(&joined),
            self.report.errors,
            self.report.requests
        )
    }

    fn aged_pinned(&self) -> String {
        let served = self.served();
        format!(
            "each connection got GOAWAY after ~{:?} and redialled the Service, landing on a random pod: \
             {} of {} pods served calls{}, {} errors.",
            CONNECTION_AGE.age,
            served.len(),
            self.report.endpoint_rows().count(),
            self.busiest()
                .map(|e| format!(" (busiest {} with {})", e.name, percent(e.share)))
                .unwrap_or_default(),
            self.report.errors
        )
    }

    fn aged_balanced(&self) -> String {
        format!(
            "every pod's connection was recycled too, and per-call picking kept the spread even \
             (busiest {}), {} errors.",
            self.busiest()
                .map(|e| format!("{} with {}", e.name, percent(e.share)))
                .unwrap_or_else(|| "none".into()),
            self.report.errors
        )
    }

    fn kill_pinned(&self) -> String {
        let killed = self.named(|e| matches!(e, Event::Killed(_)));
        let others: Vec<String> = self
            .served()
            .into_iter()
            .filter(|n| !killed.contains(n))
            .collect();
        let after = if others.is_empty() {
            "the connection found no other pod before the run ended".to_string()
        } else {
            format!(
                "then the connection was redialled onto {}",
                others.join(", ")
            )
        };
        format!(
            "{} held the one connection and was killed at {}: {} calls failed, {after}.",
            pods_phrase(&killed),
            self.when(|e| matches!(e, Event::Killed(_))),
            self.report.errors
        )
    }

    fn kill_balanced(&self) -> String {
        let killed = self.named(|e| matches!(e, Event::Killed(_)));
        let state = killed
            .first()
            .and_then(|n| self.row(n))
            .and_then(|e| e.state.as_ref())
            .map(|s| format!(" and is now {}", s.now.replace('_', " ")))
            .unwrap_or_default();
        format!(
            "{} was killed at {}{state}; the other pods took its share, {} calls in flight failed, \
             and all {} calls are accounted for ({} ok + {} errors).",
            pods_phrase(&killed),
            self.when(|e| matches!(e, Event::Killed(_))),
            self.report.errors,
            self.report.requests,
            self.report.ok,
            self.report.errors
        )
    }

    /// The pods named by the events `matches` picks.
    fn named(&self, matches: impl Fn(&Event) -> bool) -> Vec<String> {
        self.happened
            .iter()
            .filter(|h| matches(&h.event))
            .map(|h| match &h.event {
                Event::Joined(n) | Event::Removed(n) | Event::Killed(n) => n.clone(),
            })
            .collect()
    }

    /// When the events `matches` picks happened, in seconds of the
    /// measured window (`+2.0s`, or `+1.2s, +2.7s, +4.2s`).
    fn when(&self, matches: impl Fn(&Event) -> bool) -> String {
        let start = parse_rfc3339(&self.report.started_at).ok();
        let mut times: Vec<String> = Vec::new();
        for h in self.happened.iter().filter(|h| matches(&h.event)) {
            let Some(start) = start else { break };
            let text = format!("{:+.1}s", signed_seconds(start, h.at));
            if !times.contains(&text) {
                times.push(text);
            }
        }
        if times.is_empty() {
            "some point".into()
        } else {
            times.join(", ")
        }
    }

    fn row(&self, name: &str) -> Option<&EndpointReport> {
        self.report.endpoint_rows().find(|e| e.name == name)
    }

    /// Calls the named pods got in total (none: no row).
    fn calls_of(&self, names: &[String]) -> u64 {
        names
            .iter()
            .filter_map(|n| self.row(n))
            .map(|e| e.requests)
            .sum()
    }

    /// ` (pod-3 24%, pod-4 23%)`: each named pod's share of all calls.
    fn each_got(&self, names: &[String]) -> String {
        let parts: Vec<String> = names
            .iter()
            .map(|n| format!("{n} {}", percent(self.row(n).map_or(0.0, |e| e.share))))
            .collect();
        if parts.is_empty() {
            String::new()
        } else {
            format!(" ({})", parts.join(", "))
        }
    }

    /// The pods that served at least one call, in the report's order.
    fn served(&self) -> Vec<String> {
        self.report
            .endpoint_rows()
            .filter(|e| e.requests > 0)
            .map(|e| e.name.clone())
            .collect()
    }

    fn busiest(&self) -> Option<&EndpointReport> {
        self.report
            .endpoint_rows()
            .max_by(|a, b| a.share.total_cmp(&b.share))
    }
}

/// `pod-3`, `the 2 pods pod-3 and pod-4`.
fn pods_phrase(names: &[String]) -> String {
    match names {
        [] => "no pod".into(),
        [one] => one.clone(),
        [init @ .., last] => format!("the {} pods {} and {last}", names.len(), init.join(", ")),
    }
}

fn percent(share: f64) -> String {
    format!("{:.0}%", share * 100.0)
}

/// `at` in seconds after `start` (negative: before).
fn signed_seconds(start: SystemTime, at: SystemTime) -> f64 {
    match at.duration_since(start) {
        Ok(after) => after.as_secs_f64(),
        Err(before) => -before.duration().as_secs_f64(),
    }
}
