//! `grpclb demo`: the embedded default and the scenarios, end to end.

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::{assert_accounted, code, json, requests_by_name, run_grpclb};

#[test]
fn demo_shows_clusterip_concentrated_and_headless_even() {
    let out = run_grpclb(
        &["demo", "--requests", "1500", "--output", "json", "--quiet"],
        Duration::from_secs(60),
    );
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let doc = json(&out);
    let runs = doc["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 2);
    let (clusterip, headless) = (&runs[0], &runs[1]);
    assert_eq!(clusterip["mode"], "clusterip");
    assert_eq!(headless["mode"], "headless");
    for run in runs {
        assert_accounted(run);
        assert_eq!(
            run["endpoints"].as_array().map(Vec::len),
            Some(3),
            "every pod has a row: {run}"
        );
    }
    let shares = |run: &serde_json::Value| -> Vec<f64> {
        run["endpoints"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| e["share"].as_f64().unwrap_or(-1.0))
            .collect()
    };
    assert!(
        shares(clusterip).contains(&1.0),
        "one pod takes everything: {:?}",
        shares(clusterip)
    );
    assert_eq!(clusterip["verdict"]["even"], false);
    assert!(
        shares(headless)
            .iter()
            .all(|s| (s - 1.0 / 3.0).abs() < 0.01),
        "{:?}",
        shares(headless)
    );
    assert_eq!(headless["verdict"]["even"], true);
}

#[test]
fn demo_table_explains_itself() {
    let out = run_grpclb(
        &["demo", "--requests", "300", "--quiet"],
        Duration::from_secs(60),
    );
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    for fragment in [
        "clusterip share",
        "headless share",
        "What you see",
        "per connection, not per call",
    ] {
        assert!(
            text.contains(fragment),
            "{fragment:?} missing from:\n{text}"
        );
    }
}

/// A scenario's whole run must end well within this: both modes take
/// about 13 s; this only guards against a hang, it is no speed test.
const SCENARIO_LIMIT: Duration = Duration::from_secs(40);

/// Runs `grpclb demo --scenario NAME -o json -q`, expects exit 0 within
/// the limit and every call accounted for, and returns the clusterip and
/// headless reports.
fn scenario(name: &str) -> (Value, Value) {
    let started = Instant::now();
    let out = run_grpclb(
        &["demo", "--scenario", name, "-o", "json", "-q"],
        SCENARIO_LIMIT + Duration::from_secs(5),
    );
    let took = started.elapsed();
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(took < SCENARIO_LIMIT, "--scenario {name} took {took:?}");
    let doc = json(&out);
    let runs = doc["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 2, "{doc}");
    assert_eq!(runs[0]["mode"], "clusterip");
    assert_eq!(runs[1]["mode"], "headless");
    for run in runs {
        assert_accounted(run);
    }
    (runs[0].clone(), runs[1].clone())
}

/// Calls the pod named `name` got (0 when it has no row).
fn calls(report: &Value, name: &str) -> u64 {
    requests_by_name(report)
        .into_iter()
        .find(|(n, _)| n == name)
        .map_or(0, |(_, calls)| calls)
}

/// The row of the pod named `name`.
fn row<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["endpoints"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("{name} has a row: {report}"))
}

/// The addresses the resolver removed during the run.
fn removed(report: &Value) -> Vec<String> {
    report["changes"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| c["removed"].as_array().cloned().unwrap_or_default())
        .filter_map(|a| a.as_str().map(String::from))
        .collect()
}

#[test]
fn scale_up_newcomers_stay_idle_through_clusterip_and_get_calls_headless() {
    let (clusterip, headless) = scenario("scale-up");
    for newcomer in ["pod-3", "pod-4"] {
        // The pods' pool followed the resolver through the clusterip run,
        // so the newcomers have rows there: idle behind the Service.
        assert_eq!(row(&clusterip, newcomer)["requests"], 0, "{clusterip}");
        assert!(calls(&headless, newcomer) > 0, "{newcomer}: {headless}");
        let row = row(&headless, newcomer);
        assert!(row["joined_s"].as_f64().unwrap_or(-1.0) > 0.0, "{row}");
        assert!(row["discovery_lag_s"].is_number(), "{row}");
    }
    let pinned: u64 = ["pod-1", "pod-2"]
        .iter()
        .map(|p| calls(&clusterip, p))
        .sum();
    assert_eq!(pinned, clusterip["requests"].as_u64().unwrap_or(0));
    // Judged on the time each pod was ready, the headless run is fair.
    assert_eq!(headless["verdict"]["even"], true, "{}", headless["verdict"]);
}

#[test]
fn rollout_moves_headless_calls_to_the_new_pods() {
    let (clusterip, headless) = scenario("rollout");
    for new in ["pod-4", "pod-5", "pod-6"] {
        assert!(calls(&headless, new) > 0, "{new}: {headless}");
    }
    // Calls a newcomer answered behind the Service are on its own row, and
    // every pod has one row.
    let rows = clusterip["endpoints"].as_array().map_or(0, Vec::len);
    assert_eq!(rows, 6, "{clusterip}");
    let gone = removed(&headless);
    assert_eq!(gone.len(), 3, "every old pod was removed: {headless}");
    for old in ["pod-1", "pod-2", "pod-3"] {
        let row = row(&headless, old);
        let address = row["address"].as_str().unwrap_or("");
        assert!(
            gone.iter().any(|a| a == address),
            "{old} removed: {headless}"
        );
        assert!(row["left_s"].as_f64().unwrap_or(-1.0) > 0.0, "{row}");
    }
}

#[test]
fn max_connection_age_moves_the_clusterip_connection_between_pods() {
    let (clusterip, headless) = scenario("max-connection-age");
    let reached = requests_by_name(&clusterip)
        .iter()
        .filter(|(_, calls)| *calls > 0)
        .count();
    assert!(reached > 1, "one connection, redialled: {clusterip}");
    assert!(headless["ok"].as_u64().unwrap_or(0) > 0, "{headless}");
}

#[test]
fn kill_leaves_the_dead_pod_not_ready_and_every_call_accounted() {
    let (clusterip, headless) = scenario("kill");
    let rows = headless["endpoints"].as_array().expect("endpoints");
    let not_ready: Vec<&Value> = rows
        .iter()
        .filter(|e| e["state"]["now"].as_str().is_some_and(|s| s != "ready"))
        .collect();
    assert_eq!(not_ready.len(), 1, "one pod died: {headless}");
    let others_served = rows
        .iter()
        .filter(|e| e["name"] != not_ready[0]["name"])
        .all(|e| e["ok"].as_u64().unwrap_or(0) > 0);
    assert!(others_served, "{headless}");
    // The clusterip connection was on the killed pod: it was cut and redialled.
    let generations = clusterip["generations"][0]["generations"]
        .as_array()
        .map_or(0, Vec::len);
    assert!(generations >= 2, "redialled: {clusterip}");
}

#[test]
fn scenario_table_ends_with_two_lines_that_say_what_happened() {
    let out = run_grpclb(
        &["demo", "--scenario", "scale-up", "--duration", "2s", "-q"],
        SCENARIO_LIMIT,
    );
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let explanation = text
        .split("What you see:")
        .nth(1)
        .unwrap_or_else(|| panic!("no explanation in:\n{text}"));
    let lines: Vec<&str> = explanation.trim().lines().collect();
    assert_eq!(lines.len(), 2, "{explanation}");
    assert!(
        lines[0].trim_start().starts_with("clusterip: "),
        "{explanation}"
    );
    assert!(lines[0].contains("got 0 calls"), "{explanation}");
    assert!(
        lines[1].trim_start().starts_with("headless: "),
        "{explanation}"
    );
}

#[test]
fn unknown_scenario_is_a_usage_error_naming_the_choices() {
    let out = run_grpclb(&["demo", "--scenario", "nope"], Duration::from_secs(20));
    assert_eq!(code(&out), 2);
    let err = String::from_utf8_lossy(&out.stderr);
    for fragment in ["nope", "scale-up", "rollout", "max-connection-age", "kill"] {
        assert!(err.contains(fragment), "{fragment:?} missing from:\n{err}");
    }
}

#[test]
fn scenario_help_says_what_each_one_does() {
    let out = run_grpclb(&["demo", "--help"], Duration::from_secs(20));
    assert_eq!(code(&out), 0);
    let help = String::from_utf8_lossy(&out.stdout);
    for line in [
        ("scale-up:", "2 more join mid-run"),
        ("rollout:", "replaced one by one"),
        ("max-connection-age:", "GOAWAY"),
        ("kill:", "dies mid-run"),
    ] {
        let (name, what) = line;
        assert!(
            help.lines().any(|l| l.contains(name) && l.contains(what)),
            "{name} {what:?} not on one line of:\n{help}"
        );
    }
}
