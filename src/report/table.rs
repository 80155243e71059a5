//! The human report: a per-endpoint table and a summary, laid out for the
//! reader's width (see [`Style`]).

use comfy_table::{Cell, CellAlignment, Table};

use super::style::{Style, fit, new_table, wrap};
use super::timeline::{sparkline, squeeze};
use super::{Latency, Report};
use crate::record::codes_text;
use crate::verdict::NOTHING_ASKED;

/// Which columns a layout of the endpoint table shows. The richest comes
/// first; narrower terminals drop the least useful columns first.
#[derive(Debug, Clone, Copy)]
struct Columns {
    /// Cells of the share bar; 0 drops the bar.
    bar: usize,
    /// Cells of the calls-over-time sparkline, shown when the pool changed
    /// during the run; 0 drops it.
    timeline: usize,
    max: bool,
    p90: bool,
    p50: bool,
}

const LAYOUTS: [Columns; 10] = [
    columns(20, 20, true, true, true),
    columns(10, 20, true, true, true),
    columns(0, 20, true, true, true),
    columns(0, 12, false, true, true),
    columns(20, 0, true, true, true),
    columns(10, 0, true, true, true),
    columns(0, 0, true, true, true),
    columns(0, 0, false, true, true),
    columns(0, 0, false, false, true),
    columns(0, 0, false, false, false),
];

const fn columns(bar: usize, timeline: usize, max: bool, p90: bool, p50: bool) -> Columns {
    Columns {
        bar,
        timeline,
        max,
        p90,
        p50,
    }
}

/// Renders one run as a title, the per-endpoint table and a summary, to fit
/// `style.width` columns.
pub fn render(report: &Report, style: &Style) -> String {
    let failing = failing_names(report);
    let table = fit(
        &LAYOUTS,
        style,
        |_| vec![0, 1],
        |columns| endpoint_table(report, columns, &failing, style),
    );
    let mut title = format!(
        "{} · {} · {} · {}",
        report.mode, report.policy, report.target, report.call
    );
    if let Some(rate) = report.open_loop_rate {
        title.push_str(&format!(" · open loop at {rate} calls/s"));
    }
    let mut lines = vec![wrap(&title, style, 2), table.to_string()];
    let totals = format!(
        "{} requests, {} ok, {} errors in {:.2}s = {:.0} req/s;",
        report.requests, report.ok, report.errors, report.elapsed_s, report.rps,
    );
    let latency = format!(
        "latency p50 {} p90 {} p99 {} max {} ms",
        ms(report.latency_ms.p50),
        ms(report.latency_ms.p90),
        ms(report.latency_ms.p99),
        ms(report.latency_ms.max),
    );
    let one_line = format!("{totals} {latency}");
    if style
        .width
        .is_none_or(|w| one_line.chars().count() <= w as usize)
    {
        lines.push(one_line);
    } else {
        lines.push(wrap(&totals, style, 2));
        lines.push(wrap(&latency, style, 2));
    }
    if let (Some(load), Some(client)) = (&report.load, &report.client) {
        for line in super::client_line(load, client).lines() {
            lines.push(wrap(line, style, 2));
        }
    }
    for (code, messages) in &report.error_messages {
        for message in messages {
            lines.push(wrap(&format!("  {code}: {message}"), style, 4));
        }
    }
    if let Some(tls) = &report.tls {
        let tls_line = format!(
            "tls: roots {} · server name {} · client certificate {}",
            tls.roots,
            tls.server_name,
            if tls.client_certificate { "yes" } else { "no" }
        );
        lines.push(wrap(&tls_line, style, 2));
        if let Some(warning) = &tls.warning {
            lines.push(wrap(&format!("WARNING: {warning}"), style, 2));
        }
    }
    if !report.metadata.is_empty() {
        let metadata = format!("metadata: {}", report.metadata.join(" · "));
        lines.push(wrap(&metadata, style, 2));
    }
    for change in &report.changes {
        lines.push(wrap(
            &format!(
                "  at {:+.2}s: added [{}] removed [{}]",
                change.at_s,
                change.added.join(", "),
                change.removed.join(", ")
            ),
            style,
            4,
        ));
    }
    for e in &report.endpoints {
        if let Some(state) = e
            .state
            .as_ref()
            // Milliseconds of connecting (a pod that joined) are not news.
            .filter(|s| s.now != "ready" || s.unavailable_s >= 0.005)
        {
            let last = state.transitions.last();
            let why = last
                .and_then(|t| t.reason.as_deref())
                .map_or(String::new(), |r| format!(" ({r})"));
            let since = last.map_or(String::new(), |t| format!(" since {:+.2}s", t.at_s));
            lines.push(wrap(
                &format!(
                    "  state: {} {}{since}{why}; unavailable {:.2}s of the run",
                    e.name, state.now, state.unavailable_s
                ),
                style,
                4,
            ));
        }
    }
    if let Some(line) = report.lag.as_ref().and_then(|lag| lag.line()) {
        lines.push(wrap(&line, style, 2));
    }
    for connection in report
        .generations
        .iter()
        .filter(|c| c.generations.len() > 1)
    {
        lines.push(wrap(&generations_line(connection), style, 4));
    }
    for notice in &report.notices {
        lines.push(wrap(&format!("  note: {notice}"), style, 4));
    }
    let v = &report.verdict;
    lines.push(wrap(
        &format!(
            "spread: max deviation {:.1}% · cv {:.3} · chi² p {:.3} · max/min {} · {}",
            v.max_deviation * 100.0,
            v.cv,
            v.chi2_p,
            v.max_ratio.map_or("∞".to_string(), |r| format!("{r:.2}")),
            spread_word(report)
        ),
        style,
        2,
    ));
    if !v.bounds.is_empty() {
        lines.push(wrap(&format!("bound: {}", bound_line(v)), style, 2));
    }
    if v.checked != NOTHING_ASKED || !v.judged {
        let headline = v.headline();
        let painted = if let Some(rest) = headline.strip_prefix("PASS") {
            format!("{}{rest}", style.good("PASS"))
        } else if let Some(rest) = headline.strip_prefix("FAIL") {
            format!("{}{rest}", style.bad("FAIL"))
        } else {
            headline.clone()
        };
        lines.push(wrap(&format!("verdict: {painted}"), style, 2));
        if v.passed == Some(false) {
            lines.push(wrap(&format!("  checked: {}", v.checked), style, 4));
        }
        for failure in &v.failures {
            lines.push(style.bad(&wrap(&format!("  ✗ {failure}"), style, 4)));
        }
    }
    if let Some(settle) = &v.settle {
        lines.push(match settle.settled_after_s {
            Some(after) => format!(
                "settled: the checks held from {after:.1}s on ({} windows)",
                settle.windows
            ),
            None => format!(
                "settled: no, not within {:.0}s ({} windows; the last is shown)",
                settle.deadline_s, settle.windows
            ),
        });
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

/// Picks one percentile out of a latency summary.
type Percentile = fn(&Latency) -> f64;

/// The endpoint table in one layout; rows the verdict names are coloured.
fn endpoint_table(report: &Report, columns: Columns, failing: &[&str], style: &Style) -> Table {
    let mut header = vec!["endpoint", "address", "requests", "share"];
    if columns.bar > 0 {
        header.push("");
    }
    let timeline = if changed(report) { columns.timeline } else { 0 };
    if timeline > 0 {
        header.push("calls over time");
    }
    let squeezed: Vec<Vec<u64>> = report
        .endpoints
        .iter()
        .map(|e| {
            e.timeline
                .as_ref()
                .map_or_else(Vec::new, |t| squeeze(&t.calls(), timeline))
        })
        .collect();
    let peak = squeezed.iter().flatten().copied().max().unwrap_or(0);
    header.push("errors");
    let latencies: Vec<(&str, Percentile)> = [
        (columns.p50, "p50 ms", (|l| l.p50) as Percentile),
        (columns.p90, "p90 ms", |l| l.p90),
        (true, "p99 ms", |l| l.p99),
        (columns.max, "max ms", |l| l.max),
    ]
    .into_iter()
    .filter(|(shown, _, _)| *shown)
    .map(|(_, name, value)| (name, value))
    .collect();
    header.extend(latencies.iter().map(|(name, _)| *name));
    let mut table = new_table(header.iter().map(|h| h.to_string()).collect());
    for (e, calls) in report.endpoints.iter().zip(&squeezed) {
        let mut row = vec![
            e.name.clone(),
            e.address.clone(),
            e.requests.to_string(),
            format!("{:.1}%", e.share * 100.0),
        ];
        if columns.bar > 0 {
            row.push(bar(e.share, columns.bar));
        }
        if timeline > 0 {
            row.push(sparkline(calls, timeline, peak));
        }
        row.push(if e.errors == 0 {
            "0".to_string()
        } else {
            codes_text(&e.error_codes)
        });
        row.extend(latencies.iter().map(|(_, value)| ms(value(&e.latency_ms))));
        let colour = (failing.contains(&e.name.as_str()) || e.errors > 0)
            .then(|| style.bad_cell())
            .flatten();
        table.add_row(row.into_iter().map(|text| match colour {
            Some(c) => Cell::new(text).fg(c),
            None => Cell::new(text),
        }));
    }
    let drawn = usize::from(columns.bar > 0) + usize::from(timeline > 0);
    let numeric = [2, 3].into_iter().chain(4 + drawn..header.len());
    for column in numeric {
        if let Some(c) = table.column_mut(column) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    table
}

/// True when the pool changed during the run (endpoints joined, left, went
/// unready, or a connection landed on another pod): then the table shows
/// each endpoint's calls over time.
fn changed(report: &Report) -> bool {
    !report.changes.is_empty()
        || !report.epochs.is_empty()
        || report.generations.iter().any(|c| c.generations.len() > 1)
        || report
            .endpoints
            .iter()
            .any(|e| e.state.as_ref().is_some_and(|s| s.unavailable_s > 0.0))
}

/// What the spread statistics say under the verdict's model: even, UNEVEN,
/// or that the run is too small to tell.
pub(super) fn spread_word(report: &Report) -> String {
    let v = &report.verdict;
    let endpoints = report.endpoint_rows().count();
    match &v.too_few_to_tell {
        // Fewer connections than pods cannot reach them all: ClusterIP's
        // pinning, not a balancer's bad luck.
        Some(unit) if unit == "connections" && report.connections < endpoints => format!(
            "uneven by construction: {} for {endpoints} endpoints",
            if report.connections == 1 {
                "1 connection".to_string()
            } else {
                format!("{} connections", report.connections)
            }
        ),
        Some(unit) => format!("too few {unit} to tell"),
        None if v.even => "even".into(),
        None => "UNEVEN".into(),
    }
}

/// Endpoints named by a failed check.
fn failing_names(report: &Report) -> Vec<&str> {
    report
        .verdict
        .failed
        .iter()
        .flat_map(|f| f.endpoints.iter().map(String::as_str))
        .collect()
}

/// The fair range per endpoint, once when every endpoint shares it.
fn bound_line(v: &crate::verdict::Verdict) -> String {
    let first = &v.bounds[0];
    let ranges = if v
        .bounds
        .iter()
        .all(|b| (b.low, b.high) == (first.low, first.high))
    {
        format!(
            "{}..{} of {} calls per endpoint",
            first.low, first.high, v.calls
        )
    } else {
        let each: Vec<String> = v
            .bounds
            .iter()
            .map(|b| format!("{} {}..{}", b.name, b.low, b.high))
            .collect();
        format!("of {} calls: {}", v.calls, each.join(", "))
    };
    format!("{ranges} ({})", v.model)
}

/// "connection 1 landed on pod-a (+0.00s) → pod-b (+2.01s) → …": which pod
/// each reconnection through the Service address reached.
fn generations_line(connection: &super::ConnectionGenerations) -> String {
    const SHOWN: usize = 8;
    let mut hops: Vec<String> = connection
        .generations
        .iter()
        .take(SHOWN)
        .map(|g| format!("{} ({:+.2}s)", g.pod.as_deref().unwrap_or("?"), g.at_s))
        .collect();
    if connection.generations.len() > SHOWN {
        hops.push(format!("… {} more", connection.generations.len() - SHOWN));
    }
    format!(
        "  {} landed on {} ({} connections)",
        connection.connection,
        hops.join(" → "),
        connection.generations.len()
    )
}

/// A bar of up to `width` cells proportional to a share of all calls.
fn bar(share: f64, width: usize) -> String {
    let cells = (share.clamp(0.0, 1.0) * width as f64).round() as usize;
    "█".repeat(cells)
}

fn ms(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.2}")
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::record::{EndpointKey, Recorder, Tallies};
    use crate::report::RunInfo;
    use crate::report::style::widest_line;
    use crate::verdict::{Assertions, Balancing, judge};

    /// A three-pod run with Kubernetes-length names and addresses.
    fn report() -> Report {
        let keys: Vec<EndpointKey> = (1..=3)
            .map(|i| EndpointKey {
                name: format!("echo-5d9c7f8b6-abcd{i}"),
                address: format!("10.244.12.{i}:50051"),
            })
            .collect();
        let mut record = Recorder::default();
        for (i, key) in keys.iter().enumerate() {
            for n in 0..(100 * (i as u64 + 1)) {
                record.ok(key.clone(), Duration::from_micros(300 + n));
            }
        }
        let tallies = Tallies::new(&record, &keys);
        let assertions = Assertions {
            spread: true,
            all_endpoints_hit: true,
            ..Assertions::default()
        };
        let balancing = Balancing::PerCall {
            policy: crate::pick::Policy::RoundRobin,
            concurrency: 8,
        };
        let verdict = judge(&tallies, &assertions, balancing);
        let info = RunInfo {
            mode: "headless".into(),
            policy: "round_robin".into(),
            target: "kubernetes:///echo.default:grpc".into(),
            call: "grpc.health.v1.Health/Check".into(),
            connections: 3,
            open_loop_rate: None,
            elapsed_s: 1.0,
            started_at: std::time::SystemTime::UNIX_EPOCH,
            balancing,
            measured_by: None,
        };
        Report::build(info, &tallies, vec![], vec![], verdict)
    }

    fn at(width: u16) -> Style {
        Style {
            width: Some(width),
            colour: false,
        }
    }

    #[test]
    fn the_table_fits_80_100_and_160_columns_without_breaking_names() {
        let report = report();
        for width in [80, 100, 160] {
            let text = render(&report, &at(width));
            assert!(widest_line(&text) <= width as usize, "{width}:\n{text}");
            for e in &report.endpoints {
                assert!(text.contains(&e.name), "{width}: {} broken\n{text}", e.name);
                assert!(
                    text.contains(&e.address),
                    "{width}: {} broken\n{text}",
                    e.address
                );
            }
        }
        let wide = render(&report, &at(160));
        assert!(wide.contains('█') && wide.contains("max ms"), "{wide}");
        let narrow = render(&report, &at(80));
        assert!(
            !narrow.contains('█') && !narrow.contains("max ms"),
            "{narrow}"
        );
        assert!(narrow.contains("p99 ms"), "{narrow}");
    }

    #[test]
    fn calls_over_time_show_only_when_the_pool_changed() {
        let mut report = report();
        assert!(!render(&report, &at(160)).contains("calls over time"));
        report.changes.push(crate::report::ChangeReport {
            at_s: 0.5,
            added: vec![],
            removed: vec!["10.244.12.3:50051".into()],
        });
        for e in &mut report.endpoints {
            e.timeline = Some(crate::report::TimelineReport {
                bucket_s: 0.1,
                ok: vec![10, 10, 10, 10, 10, 0, 0, 0, 0, 0],
                errors: vec![0; 10],
            });
        }
        let wide = render(&report, &at(160));
        assert!(wide.contains("calls over time"), "{wide}");
        assert!(wide.contains("█████     "), "{wide}");
        let narrow = render(&report, &at(80));
        assert!(widest_line(&narrow) <= 80, "{narrow}");
    }

    #[test]
    fn one_connection_over_three_pods_is_uneven_by_construction_not_by_chance() {
        let mut report = report();
        report.mode = "clusterip".into();
        report.connections = 1;
        report.verdict.too_few_to_tell = Some("connections".into());
        assert_eq!(
            spread_word(&report),
            "uneven by construction: 1 connection for 3 endpoints"
        );
        report.connections = 3;
        assert_eq!(spread_word(&report), "too few connections to tell");
    }

    #[test]
    fn unlimited_width_shows_every_column() {
        let text = render(&report(), &Style::PLAIN);
        for column in ["p50 ms", "p90 ms", "p99 ms", "max ms", "█"] {
            assert!(text.contains(column), "{column}\n{text}");
        }
    }

    #[test]
    fn failing_rows_and_the_verdict_are_coloured_only_when_asked() {
        let report = report();
        let coloured = render(
            &report,
            &Style {
                width: Some(160),
                colour: true,
            },
        );
        assert!(coloured.contains("\x1b[31mFAIL\x1b[0m"), "{coloured}");
        assert!(coloured.contains("\x1b[31m  ✗"), "{coloured}");
        assert!(!render(&report, &at(160)).contains('\x1b'));
    }
}
