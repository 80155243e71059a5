//! The human report: a per-endpoint table and a summary.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{CellAlignment, ContentArrangement, Table};

use super::Report;
use crate::record::codes_text;
use crate::verdict::{NOT_JUDGED, NOTHING_ASKED};

const BAR_WIDTH: usize = 20;

/// Renders one run as a title, the per-endpoint table and a summary.
pub fn render(report: &Report) -> String {
    let mut table = Table::new();
    table
        .load_style(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(vec![
            "endpoint", "address", "requests", "share", "", "errors", "p50 ms", "p90 ms", "p99 ms",
            "max ms",
        ]);
    for e in &report.endpoints {
        table.add_row(vec![
            e.name.clone(),
            e.address.clone(),
            e.requests.to_string(),
            format!("{:.1}%", e.share * 100.0),
            bar(e.share),
            if e.errors == 0 {
                "0".to_string()
            } else {
                codes_text(&e.error_codes)
            },
            ms(e.latency_ms.p50),
            ms(e.latency_ms.p90),
            ms(e.latency_ms.p99),
            ms(e.latency_ms.max),
        ]);
    }
    for column in [2, 3, 5, 6, 7, 8, 9] {
        if let Some(c) = table.column_mut(column) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    let mut out = format!(
        "{} · {} · {} · {}\n{table}\n",
        report.mode, report.policy, report.target, report.call
    );
    out.push_str(&format!(
        "{} requests, {} ok, {} errors in {:.2}s = {:.0} req/s; latency p50 {} p90 {} p99 {} max {} ms\n",
        report.requests,
        report.ok,
        report.errors,
        report.elapsed_s,
        report.rps,
        ms(report.latency_ms.p50),
        ms(report.latency_ms.p90),
        ms(report.latency_ms.p99),
        ms(report.latency_ms.max),
    ));
    for (code, messages) in &report.error_messages {
        for message in messages {
            out.push_str(&format!("  {code}: {message}\n"));
        }
    }
    if let Some(tls) = &report.tls {
        out.push_str(&format!(
            "tls: roots {} · server name {} · client certificate {}\n",
            tls.roots,
            tls.server_name,
            if tls.client_certificate { "yes" } else { "no" }
        ));
        if let Some(warning) = &tls.warning {
            out.push_str(&format!("WARNING: {warning}\n"));
        }
    }
    if !report.metadata.is_empty() {
        out.push_str(&format!("metadata: {}\n", report.metadata.join(" · ")));
    }
    for change in &report.changes {
        out.push_str(&format!(
            "  at {:+.2}s: added [{}] removed [{}]\n",
            change.at_s,
            change.added.join(", "),
            change.removed.join(", ")
        ));
    }
    for notice in &report.notices {
        out.push_str(&format!("  note: {notice}\n"));
    }
    let v = &report.verdict;
    out.push_str(&format!(
        "spread: max deviation {:.1}% · cv {:.3} · chi² p {:.3} · max/min {} · {}\n",
        v.max_deviation * 100.0,
        v.cv,
        v.chi2_p,
        v.max_ratio.map_or("∞".to_string(), |r| format!("{r:.2}")),
        if v.even { "even" } else { "UNEVEN" }
    ));
    if !v.bounds.is_empty() {
        out.push_str(&format!("bound: {}\n", bound_line(v)));
    }
    if v.checked == NOT_JUDGED {
        out.push_str(&format!("verdict: {NOT_JUDGED}\n"));
    } else if v.checked != NOTHING_ASKED {
        let status = if v.passed { "PASS" } else { "FAIL" };
        out.push_str(&format!("verdict: {status} ({})\n", v.checked));
        for failure in &v.failures {
            out.push_str(&format!("  ✗ {failure}\n"));
        }
    }
    if let Some(settle) = &v.settle {
        match settle.settled_after_s {
            Some(after) => out.push_str(&format!(
                "settled: the checks held from {after:.1}s on ({} windows)\n",
                settle.windows
            )),
            None => out.push_str(&format!(
                "settled: no, not within {:.0}s ({} windows; the last is shown)\n",
                settle.deadline_s, settle.windows
            )),
        }
    }
    out
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

/// A bar proportional to a share of all calls.
fn bar(share: f64) -> String {
    let cells = (share.clamp(0.0, 1.0) * BAR_WIDTH as f64).round() as usize;
    "█".repeat(cells)
}

fn ms(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.2}")
    }
}
