//! `grpclb demo`: the embedded default, end to end.

mod support;

use std::time::Duration;

use support::{assert_accounted, code, json, run_grpclb};

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
