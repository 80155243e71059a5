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

impl Event {
    fn pod(&self) -> &str {
        match self {
            Event::Joined(pod) | Event::Removed(pod) | Event::Killed(pod) => pod,
        }
    }
}

/// An event and when it happened.
#[derive(Debug, Clone)]
pub struct Happened {
    pub at: SystemTime,
    pub event: Event,
}

/// The explanation printed after the tables: a heading and one line per
/// run (`runs` pairs each report with what happened during it).
pub fn explain(scenario: Scenario, runs: &[(&Report, &[Happened])]) -> Vec<String> {
    let mut lines = vec!["What you see:".to_string()];
    for (report, happened) in runs {
        let seen = Seen { report, happened };
        // A request count can end a run before the script's first step.
        let line = if happened.is_empty() && scenario != Scenario::MaxConnectionAge {
            format!(
                "the run ended after {:.1}s, before the scenario changed any pod; \
                 give it time with --duration (e.g. --duration 6s).",
                report.elapsed_s
            )
        } else {
            match (scenario, report.mode.as_str()) {
                (Scenario::ScaleUp, "clusterip") => seen.scale_up_pinned(),
                (Scenario::ScaleUp, _) => seen.scale_up_balanced(),
                (Scenario::Rollout, "clusterip") => seen.rollout_pinned(),
                (Scenario::Rollout, _) => seen.rollout_balanced(),
                (Scenario::MaxConnectionAge, "clusterip") => seen.aged_pinned(),
                (Scenario::MaxConnectionAge, _) => seen.aged_balanced(),
                (Scenario::Kill, "clusterip") => seen.kill_pinned(),
                (Scenario::Kill, _) => seen.kill_balanced(),
            }
        };
        lines.push(format!("  {}: {line}", report.mode));
    }
    lines
}

/// One run and the events during it.
struct Seen<'a> {
    report: &'a Report,
    happened: &'a [Happened],
}

impl Seen<'_> {
    fn scale_up_pinned(&self) -> String {
        let joined = self.pods(|e| matches!(e, Event::Joined(_)));
        let rowless = joined.iter().all(|n| self.row(n).is_none());
        let stayed = match self.busiest() {
            Some(e) => format!("stayed on {}, which served {}", e.name, percent(e.share)),
            None => "served nothing".into(),
        };
        format!(
            "{} joined the Service at {} and got {}{}; the one connection was {} and {stayed}.",
            and_list(&joined),
            self.when(|e| matches!(e, Event::Joined(_))),
            calls(self.calls_of(&joined)),
            if rowless { " (no row above)" } else { "" },
            match self.redials() {
                0 => "never redialled".to_string(),
                n => format!("redialled {}", times(n)),
            }
        )
    }

    fn scale_up_balanced(&self) -> String {
        let joined = self.pods(|e| matches!(e, Event::Joined(_)));
        let since = self.first_at(|e| matches!(e, Event::Joined(_)));
        let after = since.map(|s| self.shares_after(s, &joined));
        let share: f64 = after.iter().flatten().map(|(_, s)| s).sum();
        format!(
            "the pool learned of {} at {} and sent them calls {}; since joining they got {} of the calls ({}).",
            and_list(&joined),
            self.when(|e| matches!(e, Event::Joined(_))),
            self.discovery(),
            percent(share),
            each(after.as_deref().unwrap_or_default())
        )
    }

    fn rollout_pinned(&self) -> String {
        let path = self.landed_on();
        let idle = self.idle_pods();
        format!(
            "the one connection moved only when its pod was drained (GOAWAY): {}; {}, and {} never got a call.",
            match path.as_slice() {
                [] => "it reached no pod".to_string(),
                [(pod, _)] => format!("it stayed on {pod}"),
                [(first, _), moves @ ..] => std::iter::once(first.clone())
                    .chain(
                        moves
                            .iter()
                            .map(|(pod, at_s)| format!("{pod} ({at_s:+.2}s)"))
                    )
                    .collect::<Vec<_>>()
                    .join(" → "),
            },
            errors(self.report.errors),
            if idle.is_empty() {
                "every pod".to_string()
            } else {
                and_list(&idle)
            }
        )
    }

    fn rollout_balanced(&self) -> String {
        let joined = self.pods(|e| matches!(e, Event::Joined(_)));
        let removed = self.pods(|e| matches!(e, Event::Removed(_)));
        let drain = self
            .report
            .lag
            .as_ref()
            .and_then(|l| l.drain.as_ref())
            .map_or_else(
                || "none after being unlisted".to_string(),
                |l| format!("its last call {:.2}s (max) after being unlisted", l.max_s),
            );
        format!(
            "{} replaced {} one by one; each new pod got calls {}, each old one {drain}; {} over {}.",
            and_list(&joined),
            and_list(&removed),
            self.discovery(),
            errors(self.report.errors),
            calls(self.report.requests)
        )
    }

    fn aged_pinned(&self) -> String {
        let served = self.served();
        format!(
            "the pods sent GOAWAY every ~{:?}, so the one connection was redialled {} through the Service \
             and {} of {} pods served calls (busiest {}); {}.",
            CONNECTION_AGE.age,
            times(self.redials()),
            served.len(),
            self.report.endpoint_rows().count(),
            self.busiest().map_or_else(
                || "none".into(),
                |e| format!("{} {}", e.name, percent(e.share))
            ),
            errors(self.report.errors)
        )
    }

    fn aged_balanced(&self) -> String {
        format!(
            "every pod's connection was recycled too, but each call was picked over the ready pods: \
             busiest {}, {}.",
            self.busiest().map_or_else(
                || "none".into(),
                |e| format!("{} {}", e.name, percent(e.share))
            ),
            errors(self.report.errors)
        )
    }

    fn kill_pinned(&self) -> String {
        let killed = self.pods(|e| matches!(e, Event::Killed(_)));
        let victim = killed.first().map_or("no pod", String::as_str);
        let at = self.first_at(|e| matches!(e, Event::Killed(_)));
        let next = at.and_then(|at| {
            self.report
                .generations
                .iter()
                .flat_map(|c| &c.generations)
                .filter(|g| g.at_s >= at - 0.05)
                .find_map(|g| g.pod.as_ref().filter(|p| *p != victim).map(|p| (p, g.at_s)))
        });
        let then = match next {
            Some((pod, at_s)) => format!("the connection was redialled onto {pod} at {at_s:+.2}s"),
            None => "the connection found no other pod before the run ended".into(),
        };
        format!(
            "{victim} held the one connection and was killed at {}: {} failed, then {then}.",
            self.when(|e| matches!(e, Event::Killed(_))),
            calls(self.report.errors)
        )
    }

    fn kill_balanced(&self) -> String {
        let killed = self.pods(|e| matches!(e, Event::Killed(_)));
        let victim = killed.first().map_or("no pod", String::as_str);
        let state = self
            .row(victim)
            .and_then(|e| e.state.as_ref())
            .map(|s| format!(" and is now {}", s.now.replace('_', " ")))
            .unwrap_or_default();
        let others: Vec<String> = self
            .report
            .endpoint_rows()
            .filter(|e| e.name != victim)
            .map(|e| e.name.clone())
            .collect();
        let after = self
            .first_at(|e| matches!(e, Event::Killed(_)))
            .map(|at| self.shares_after(at, &others))
            .unwrap_or_default();
        format!(
            "{victim} was killed at {}{state}; after it the others took {} of the calls ({}), \
             {} in flight failed, and all {} are accounted for.",
            self.when(|e| matches!(e, Event::Killed(_))),
            percent(after.iter().map(|(_, s)| s).sum()),
            each(&after),
            calls(self.report.errors),
            calls(self.report.requests)
        )
    }

    /// The pods named by the events `matches` picks, in order.
    fn pods(&self, matches: impl Fn(&Event) -> bool) -> Vec<String> {
        self.happened
            .iter()
            .filter(|h| matches(&h.event))
            .map(|h| h.event.pod().to_string())
            .collect()
    }

    /// When the first event `matches` picks happened, in seconds of the
    /// measured window.
    fn first_at(&self, matches: impl Fn(&Event) -> bool) -> Option<f64> {
        let start = parse_rfc3339(&self.report.started_at).ok()?;
        let first = self.happened.iter().find(|h| matches(&h.event))?;
        Some(signed_seconds(start, first.at))
    }

    /// When the events `matches` picks happened: `+2.0s`, or `+1.2s, +2.7s`.
    fn when(&self, matches: impl Fn(&Event) -> bool) -> String {
        let Ok(start) = parse_rfc3339(&self.report.started_at) else {
            return "some point".into();
        };
        let mut times: Vec<String> = Vec::new();
        for h in self.happened.iter().filter(|h| matches(&h.event)) {
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

    /// `0.01s (max) after being listed`, from the discovery lag.
    fn discovery(&self) -> String {
        match self.report.lag.as_ref().and_then(|l| l.discovery.as_ref()) {
            Some(lag) => format!("{:.2}s (max) after being listed", lag.max_s),
            None => "once listed".into(),
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

    /// Each named pod's share of the calls sent in the buckets that start
    /// at or after `from_s`.
    fn shares_after(&self, from_s: f64, names: &[String]) -> Vec<(String, f64)> {
        let after = |e: &EndpointReport| -> u64 {
            e.timeline.as_ref().map_or(0, |t| {
                t.calls()
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i as f64 * t.bucket_s >= from_s)
                    .map(|(_, n)| n)
                    .sum()
            })
        };
        let total: u64 = self.report.endpoint_rows().map(after).sum();
        names
            .iter()
            .map(|n| {
                let mine = self.row(n).map_or(0, after);
                let share = if total == 0 {
                    0.0
                } else {
                    mine as f64 / total as f64
                };
                (n.clone(), share)
            })
            .collect()
    }

    /// The pods that served at least one call.
    fn served(&self) -> Vec<String> {
        self.report
            .endpoint_rows()
            .filter(|e| e.requests > 0)
            .map(|e| e.name.clone())
            .collect()
    }

    /// The pods (listed at the start or joined later) that got no call.
    fn idle_pods(&self) -> Vec<String> {
        let mut pods: Vec<String> = self
            .report
            .endpoint_rows()
            .map(|e| e.name.clone())
            .collect();
        for joined in self.pods(|e| matches!(e, Event::Joined(_))) {
            if !pods.contains(&joined) {
                pods.push(joined);
            }
        }
        pods.retain(|p| self.row(p).is_none_or(|e| e.requests == 0));
        pods.sort();
        pods
    }

    /// The pods the Service connection landed on, in order, and when.
    fn landed_on(&self) -> Vec<(String, f64)> {
        let mut path: Vec<(String, f64)> = Vec::new();
        for generation in self.report.generations.iter().flat_map(|c| &c.generations) {
            let Some(pod) = &generation.pod else { continue };
            if path.last().map(|(last, _)| last) != Some(pod) {
                path.push((pod.clone(), generation.at_s));
            }
        }
        path
    }

    /// How many times the Service connection was dialled again.
    fn redials(&self) -> usize {
        self.report
            .generations
            .iter()
            .map(|c| c.generations.len().saturating_sub(1))
            .sum()
    }

    fn busiest(&self) -> Option<&EndpointReport> {
        self.report
            .endpoint_rows()
            .max_by(|a, b| a.share.total_cmp(&b.share))
    }
}

/// `pod-3`, `pod-3 and pod-4`, `pod-4, pod-5 and pod-6`.
fn and_list(names: &[String]) -> String {
    match names {
        [] => "no pod".into(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// `pod-3 25%, pod-4 25%`.
fn each(shares: &[(String, f64)]) -> String {
    shares
        .iter()
        .map(|(name, share)| format!("{name} {}", percent(*share)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn percent(share: f64) -> String {
    // `+ 0.0` turns an empty sum's -0.0 into 0.
    format!("{:.0}%", share * 100.0 + 0.0)
}

fn calls(n: u64) -> String {
    format!("{n} call{}", if n == 1 { "" } else { "s" })
}

fn errors(n: u64) -> String {
    format!("{n} error{}", if n == 1 { "" } else { "s" })
}

fn times(n: usize) -> String {
    match n {
        1 => "once".into(),
        n => format!("{n} times"),
    }
}

/// `at` in seconds after `start` (negative: before).
fn signed_seconds(start: SystemTime, at: SystemTime) -> f64 {
    match at.duration_since(start) {
        Ok(after) => after.as_secs_f64(),
        Err(before) => -before.duration().as_secs_f64(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_are_listed_as_a_sentence() {
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(and_list(&names(&[])), "no pod");
        assert_eq!(and_list(&names(&["pod-3"])), "pod-3");
        assert_eq!(
            and_list(&names(&["pod-4", "pod-5", "pod-6"])),
            "pod-4, pod-5 and pod-6"
        );
    }

    #[test]
    fn an_empty_share_reads_zero_and_counts_agree_in_number() {
        let nothing: f64 = std::iter::empty::<f64>().sum();
        assert_eq!(percent(nothing), "0%");
        assert_eq!(calls(1), "1 call");
        assert_eq!(errors(2), "2 errors");
        assert_eq!(times(1), "once");
    }
}
