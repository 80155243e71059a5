//! Rendering what `grpclb resolve` shows: the endpoint table, one line per
//! change of `--watch`, its closing summary, and their JSON forms.

use std::time::SystemTime;

use comfy_table::Table;
use serde::Serialize;

use super::style::{Style, fit, new_table};
use crate::resolve::{Change, Endpoint, lease_hex};
use crate::watch::WatchSummary;

/// The `grpclb resolve -o json` document: the design's keys, in its order.
pub fn endpoints_json(
    target: &str,
    source: &str,
    endpoints: &[Endpoint],
) -> Result<String, serde_json::Error> {
    serde_json::to_string_pretty(&Document {
        target: target.to_string(),
        source,
        endpoints,
    })
}

/// One line of `grpclb resolve --watch -o json`: `{"at", "event", "endpoint"}`, at now.
pub fn change_json(change: &Change) -> Result<String, serde_json::Error> {
    serde_json::to_string(&ChangeLine { at: now(), change })
}

/// One line of the table form of `--watch`, at now.
pub fn change_text(change: &Change, before: Option<&Endpoint>) -> String {
    change_line(&now(), change, before)
}

/// A notice of the table form of `--watch`, at now.
pub fn notice_text(notice: &str) -> String {
    format!("{}  notice   {notice}", now())
}

/// The closing line of `--watch`; `first` of the added were the first set
/// (printed as `added` lines in JSON).
pub fn watch_summary(s: &WatchSummary, first: usize) -> String {
    let first = if first > 0 {
        format!(" ({first} in the first set)")
    } else {
        String::new()
    };
    format!(
        "watched {:.1}s ({}): {} added{first}, {} removed, {} changed; now {}, {} ready",
        s.watched_s,
        s.ended,
        s.added,
        s.removed,
        s.changed,
        plural(s.endpoints, "endpoint"),
        s.ready
    )
}

/// `time  event  address  pod  what`, for the table form of `--watch`.
fn change_line(at: &str, change: &Change, before: Option<&Endpoint>) -> String {
    let (event, endpoint, what) = match change {
        Change::Added(e) => ("added", e, format!("{} ({})", conditions(e), e.origin)),
        Change::Removed(e) => ("removed", e, String::new()),
        Change::Changed(e) => (
            "changed",
            e,
            before.map(|b| differences(b, e)).unwrap_or_default(),
        ),
    };
    let pod = endpoint.name.as_deref().unwrap_or("-");
    format!("{at}  {event:<8} {:<22} {pod:<24} {what}", endpoint.address)
        .trim_end()
        .to_string()
}

/// The conditions in words: "ready", "not ready", "terminating, serving".
fn conditions(e: &Endpoint) -> String {
    match (e.ready, e.serving, e.terminating) {
        (true, _, false) => "ready".into(),
        (true, _, true) => "ready, terminating".into(),
        (false, true, true) => "terminating, serving".into(),
        (false, false, true) => "terminating".into(),
        (false, _, false) => "not ready".into(),
    }
}

/// What changed between two versions of one endpoint, as `field: a → b`.
fn differences(before: &Endpoint, after: &Endpoint) -> String {
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    let text = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".into());
    let mut out = Vec::new();
    for (field, a, b) in [
        ("ready", yes_no(before.ready), yes_no(after.ready)),
        ("serving", yes_no(before.serving), yes_no(after.serving)),
        (
            "terminating",
            yes_no(before.terminating),
            yes_no(after.terminating),
        ),
    ] {
        if a != b {
            out.push(format!("{field}: {a} → {b}"));
        }
    }
    for (field, a, b) in [
        ("pod", text(&before.name), text(&after.name)),
        ("node", text(&before.node), text(&after.node)),
        ("zone", text(&before.zone), text(&after.zone)),
        ("source", before.origin.clone(), after.origin.clone()),
    ] {
        if a != b {
            out.push(format!("{field}: {a} → {b}"));
        }
    }
    if before.lease != after.lease {
        out.push(format!(
            "lease: {} → {}",
            before.lease.map_or("-".into(), lease_hex),
            after.lease.map_or("-".into(), lease_hex)
        ));
    }
    out.join(", ")
}

/// `target (source): N endpoints, R ready`.
pub fn headline(target: &str, source: &str, endpoints: &[Endpoint]) -> String {
    let ready = endpoints.iter().filter(|e| e.ready).count();
    let mut line = format!(
        "{target} ({source}): {}, {ready} ready",
        plural(endpoints.len(), "endpoint")
    );
    if ready == 0 {
        line.push_str(" — nothing to balance onto");
    }
    line
}

/// Which columns a layout of the endpoint table shows (richest first).
#[derive(Debug, Clone, Copy)]
struct Columns {
    /// ready / serving / terminating as three columns, else one `state`.
    conditions_apart: bool,
    node_zone: bool,
    ttl: bool,
    source: bool,
    lease: bool,
}

const LAYOUTS: [Columns; 6] = [
    Columns {
        conditions_apart: true,
        node_zone: true,
        ttl: true,
        source: true,
        lease: true,
    },
    Columns {
        conditions_apart: false,
        node_zone: true,
        ttl: true,
        source: true,
        lease: true,
    },
    Columns {
        conditions_apart: false,
        node_zone: false,
        ttl: true,
        source: true,
        lease: true,
    },
    Columns {
        conditions_apart: false,
        node_zone: false,
        ttl: false,
        source: true,
        lease: true,
    },
    Columns {
        conditions_apart: false,
        node_zone: false,
        ttl: false,
        source: false,
        lease: true,
    },
    Columns {
        conditions_apart: false,
        node_zone: false,
        ttl: false,
        source: false,
        lease: false,
    },
];

/// The endpoint table: address, pod, node, zone, conditions, source, and
/// TTL / lease when the source knows them; narrower terminals merge the
/// conditions into one column, then drop node and zone, TTL, source, lease.
pub fn endpoint_table(endpoints: &[Endpoint], style: &Style) -> String {
    fit(
        &LAYOUTS,
        style,
        |_| vec![0, 1],
        |columns| table_in(endpoints, columns),
    )
    .to_string()
}

fn table_in(endpoints: &[Endpoint], columns: Columns) -> Table {
    let with_ttl = columns.ttl && endpoints.iter().any(|e| e.ttl_s.is_some());
    let with_lease = columns.lease && endpoints.iter().any(|e| e.lease.is_some());
    let mut header = vec!["address", "pod"];
    if columns.node_zone {
        header.extend(["node", "zone"]);
    }
    if columns.conditions_apart {
        header.extend(["ready", "serving", "terminating"]);
    } else {
        header.push("state");
    }
    if columns.source {
        header.push("source");
    }
    if with_ttl {
        header.push("ttl");
    }
    if with_lease {
        header.push("lease");
    }
    let mut table = new_table(header.iter().map(|h| h.to_string()).collect());
    let yes_no = |b: bool| if b { "yes" } else { "no" }.to_string();
    let text = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".into());
    for e in endpoints {
        let mut row = vec![e.address.clone(), text(&e.name)];
        if columns.node_zone {
            row.extend([text(&e.node), text(&e.zone)]);
        }
        if columns.conditions_apart {
            row.extend([yes_no(e.ready), yes_no(e.serving), yes_no(e.terminating)]);
        } else {
            row.push(conditions(e));
        }
        if columns.source {
            row.push(e.origin.clone());
        }
        if with_ttl {
            row.push(e.ttl_s.map_or("-".into(), |t| format!("{t}s")));
        }
        if with_lease {
            row.push(e.lease.map_or("-".into(), lease_hex));
        }
        table.add_row(row);
    }
    table
}

/// `resolve --output json`: the design's document, keys in its order.
#[derive(Serialize)]
struct Document<'a> {
    target: String,
    source: &'a str,
    endpoints: &'a [Endpoint],
}

/// One line of `resolve --watch --output json`: `{"at", "event", "endpoint"}`.
#[derive(Serialize)]
struct ChangeLine<'a> {
    at: String,
    #[serde(flatten)]
    change: &'a Change,
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// Now, as RFC 3339 UTC with milliseconds.
fn now() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_line_names_what_changed() {
        let before = Endpoint {
            name: Some("echo-1".into()),
            ..Endpoint::new("10.0.0.1:80", "echo-a")
        };
        let after = Endpoint {
            ready: false,
            serving: true,
            terminating: true,
            ..before.clone()
        };
        let line = change_line("T", &Change::Changed(after), Some(&before));
        assert!(line.starts_with("T  changed  10.0.0.1:80"), "{line}");
        assert!(line.contains("echo-1"), "{line}");
        assert!(
            line.ends_with("ready: yes → no, terminating: no → yes"),
            "{line}"
        );
    }

    #[test]
    fn added_line_says_conditions_and_source() {
        let e = Endpoint::new("10.0.0.2:80", "A echo.test");
        let line = change_line("T", &Change::Added(e), None);
        assert!(line.ends_with("ready (A echo.test)"), "{line}");
    }

    #[test]
    fn table_shows_ttl_only_when_known() {
        let plain = endpoint_table(&[Endpoint::new("10.0.0.1:80", "static")], &Style::PLAIN);
        assert!(!plain.contains("ttl"));
        let dns = endpoint_table(
            &[Endpoint {
                ttl_s: Some(30),
                ..Endpoint::new("10.0.0.1:80", "A echo.test")
            }],
            &Style::PLAIN,
        );
        assert!(dns.contains("ttl") && dns.contains("30s"), "{dns}");
    }

    #[test]
    fn the_etcd_table_fits_80_100_and_160_columns_without_breaking_addresses() {
        let endpoints: Vec<Endpoint> = (7..10)
            .map(|i| Endpoint {
                name: Some(format!("echo-5d9c7f8b6-abcd{i}")),
                ttl_s: Some(9),
                lease: Some(7587899065911235335 + i),
                ..Endpoint::new(
                    format!("10.244.1.{i}:50051"),
                    format!("/grpclb/echo/10.244.1.{i}:50051"),
                )
            })
            .collect();
        for width in [80u16, 100, 160] {
            let style = Style {
                width: Some(width),
                colour: false,
            };
            let text = endpoint_table(&endpoints, &style);
            assert!(
                crate::report::style::widest_line(&text) <= width as usize,
                "{width}:\n{text}"
            );
            for e in &endpoints {
                assert!(text.contains(&e.address), "{width}: {}\n{text}", e.address);
                assert!(text.contains(e.label()), "{width}\n{text}");
            }
        }
        let wide = endpoint_table(&endpoints, &Style::PLAIN);
        assert!(
            wide.contains("terminating") && wide.contains("694da1ff7f285"),
            "{wide}"
        );
    }

    #[test]
    fn json_change_has_event_endpoint_and_time() {
        let change = Change::Removed(Endpoint::new("10.0.0.1:80", "x"));
        let line = serde_json::to_string(&ChangeLine {
            at: "T".into(),
            change: &change,
        })
        .unwrap();
        assert!(
            line.starts_with(r#"{"at":"T","event":"removed","endpoint":{"address":"10.0.0.1:80""#),
            "{line}"
        );
    }
}
