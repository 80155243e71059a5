//! Any unary method against the official C-core stack (Debian
//! `python3-grpcio`): a user's own service, compiled at test time by
//! Debian's `python3-grpc-tools`, with server reflection (v1alpha) from
//! `grpcio-reflection` in the venv `scripts/test.sh` makes.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use support::{
    Process, assert_accounted, can_run, code, json, requests_by_name, run_grpclb, spawn_until_line,
};

const LIMIT: Duration = Duration::from_secs(90);

/// The venv's interpreter (Debian's python3 with grpcio-reflection added),
/// when `scripts/test.sh` has made it; else the test cannot run (a failure in CI).
fn peer_python() -> Option<String> {
    let path = format!(
        "{}/target/python-peers/bin/python",
        env!("CARGO_MANIFEST_DIR")
    );
    let present = Path::new(&path).exists();
    can_run((!present).then(|| {
        format!("{path} is missing (grpcio-reflection in a venv; scripts/test.sh creates it)")
    }))
    .then_some(path)
}

/// A C-core server of `lbtest.v1.Greeter`.
struct Peer {
    name: String,
    address: String,
    _process: Process,
    _out: tempfile::TempDir,
}

fn peer(python: &str, ip: &str, name: &str, extra: &[&str]) -> Peer {
    let out = tempfile::tempdir().expect("temp dir");
    let script = format!(
        "{}/tests/peers/method_server.py",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut command = Command::new(python);
    command
        .args([&script, ip, name])
        .arg(out.path())
        .args(extra);
    let (process, line) = spawn_until_line(command, "listening on", Duration::from_secs(30));
    let address = line
        .split("listening on ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .expect("address")
        .to_string();
    Peer {
        name: name.to_string(),
        address,
        _process: process,
        _out: out,
    }
}

fn target(peers: &[Peer]) -> String {
    let list: Vec<&str> = peers.iter().map(|p| p.address.as_str()).collect();
    format!("ipv4:{}", list.join(","))
}

fn bench(args: &[&str]) -> Output {
    let mut full = vec!["bench"];
    full.extend_from_slice(args);
    full.extend(["-o", "json", "-q"]);
    run_grpclb(&full, LIMIT)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn c_core_method_through_reflection_spreads_evenly_with_responses_printed() {
    let Some(python) = peer_python() else { return };
    let peers: Vec<Peer> = (1..=3)
        .map(|i| {
            peer(
                &python,
                &format!("127.0.0.{}", 180 + i),
                &format!("py-greeter-{i}"),
                &[],
            )
        })
        .collect();
    let out = bench(&[
        &target(&peers),
        "--call",
        "lbtest.v1.Greeter/Hello",
        "--data",
        r#"{"name": "grpclb", "count": 7}"#,
        "-n",
        "600",
        "-c",
        "3",
        "--assert-even",
        "--print-responses",
        "2",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let report = json(&out);
    assert_accounted(&report);
    assert_eq!(report["call"], "lbtest.v1.Greeter/Hello");
    assert_eq!(report["verdict"]["passed"], true, "{report}");
    let counts = requests_by_name(&report);
    for p in &peers {
        let n = counts
            .iter()
            .find(|(n, _)| *n == p.name)
            .map_or(0, |(_, c)| *c);
        assert!(n.abs_diff(200) <= 3, "{} got {n}: {counts:?}", p.name);
    }
    let err = stderr(&out);
    let samples: Vec<&str> = err.lines().filter(|l| l.starts_with("response ")).collect();
    assert_eq!(samples.len(), 2, "{err}");
    for line in samples {
        assert!(
            line.contains(r#""message":"hello grpclb""#) && line.contains(r#""count":7"#),
            "{line}"
        );
        let p = peers
            .iter()
            .find(|p| line.contains(&format!("from {}:", p.name)));
        let p = p.unwrap_or_else(|| panic!("no server named in {line}"));
        assert!(
            line.contains(&format!(r#""server":"{}""#, p.name)),
            "{line}"
        );
    }
}

#[test]
fn c_core_server_sees_each_data_line_as_sent_in_turn() {
    let Some(python) = peer_python() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("seen.jsonl");
    let log_arg = log.to_string_lossy().into_owned();
    let peers = [
        peer(&python, "127.0.0.184", "py-log-1", &["--log", &log_arg]),
        peer(&python, "127.0.0.185", "py-log-2", &["--log", &log_arg]),
    ];
    let sent = [
        r#"{"name": "a", "count": 1}"#,
        r#"{"name": "b", "tags": ["x", "y"]}"#,
        r#"{"name": "c", "detail": {"loud": true, "big": "9007199254740993"}}"#,
        r#"{"name": "d", "count": -5, "detail": {}}"#,
    ];
    let lines = dir.path().join("requests.jsonl");
    std::fs::write(&lines, sent.join("\n")).expect("write");
    let out = bench(&[
        &target(&peers),
        "--call",
        "lbtest.v1.Greeter/Hello",
        "--data-lines",
        &lines.to_string_lossy(),
        "-n",
        "40",
        "-c",
        "2",
        "--warmup",
        "0s",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let report = json(&out);
    assert_accounted(&report);
    // What the servers decoded, printed by protobuf's own proto3 JSON printer:
    // each line exactly as sent.
    let expected: Vec<serde_json::Value> = sent
        .iter()
        .map(|s| serde_json::from_str(s).expect("json"))
        .collect();
    let seen_text = std::fs::read_to_string(&log).expect("the servers' log");
    let mut by_line: BTreeMap<usize, u64> = BTreeMap::new();
    for line in seen_text.lines() {
        let seen: serde_json::Value = serde_json::from_str(line).expect("logged JSON");
        let index = expected.iter().position(|e| *e == seen).unwrap_or_else(|| {
            panic!("the server saw {seen}, which was never sent ({expected:?})")
        });
        *by_line.entry(index).or_default() += 1;
    }
    // Every call (identify + measured) reached a server, the lines in turn.
    let total: u64 = by_line.values().sum();
    assert!(total >= 40, "{total} calls seen: {by_line:?}");
    assert_eq!(by_line.len(), sent.len(), "{by_line:?}");
    let (min, max) = (by_line.values().min(), by_line.values().max());
    assert!(
        max.zip(min).is_some_and(|(a, b)| a - b <= 1),
        "uneven cycling: {by_line:?}"
    );
}

#[test]
fn c_core_errors_count_by_code_with_their_messages() {
    let Some(python) = peer_python() else { return };
    let peers = [
        peer(&python, "127.0.0.186", "py-fail-1", &[]),
        peer(&python, "127.0.0.187", "py-fail-2", &[]),
    ];
    let out = bench(&[
        &target(&peers),
        "--call",
        "lbtest.v1.Greeter/Fail",
        "--data",
        r#"{"name": "x"}"#,
        "-n",
        "40",
        "-c",
        "2",
    ]);
    // No call succeeded: exit 3, with the report still printed and the
    // servers' own words on stderr.
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the servers answered INVALID_ARGUMENT: \"py-fail-"),
        "{}",
        stderr(&out)
    );
    let report = json(&out);
    assert_accounted(&report);
    assert_eq!(report["errors"], 40);
    for p in &peers {
        let row = report["endpoints"]
            .as_array()
            .expect("endpoints")
            .iter()
            .find(|e| e["name"] == p.name.as_str())
            .unwrap_or_else(|| panic!("no row for {} in {report}", p.name));
        assert_eq!(row["error_codes"]["INVALID_ARGUMENT"], 20, "{row}");
        assert_eq!(
            row["error_messages"]["INVALID_ARGUMENT"],
            serde_json::json!([format!("{} refuses x", p.name)]),
            "{row}"
        );
    }
    let all = report["error_messages"]["INVALID_ARGUMENT"]
        .as_array()
        .expect("messages");
    assert_eq!(all.len(), 2, "{report}");
}

#[test]
fn c_core_without_reflection_needs_a_proto_file() {
    let Some(python) = peer_python() else { return };
    let p = peer(&python, "127.0.0.188", "py-plain", &["--no-reflection"]);
    let out = bench(&[&p.address, "--call", "lbtest.v1.Greeter/Hello", "-n", "5"]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("does not offer server reflection"), "{err}");
    assert!(err.contains("--proto FILE"), "{err}");
    let out = run_grpclb(&["list", &p.address], LIMIT);
    assert_eq!(code(&out), 3, "{}", stderr(&out));

    let proto = format!("{}/tests/peers/lbtest.proto", env!("CARGO_MANIFEST_DIR"));
    let out = bench(&[
        &p.address,
        "--mode",
        "clusterip",
        "--call",
        "lbtest.v1.Greeter/Hello",
        "--proto",
        &proto,
        "--data",
        r#"{"name": "files"}"#,
        "-n",
        "20",
        "--print-responses",
        "1",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_accounted(&json(&out));
    assert!(
        stderr(&out).contains(r#""message":"hello files""#),
        "{}",
        stderr(&out)
    );
}

#[test]
fn c_core_streaming_method_is_refused() {
    let Some(python) = peer_python() else { return };
    let p = peer(&python, "127.0.0.189", "py-stream", &[]);
    let out = bench(&[&p.address, "--call", "lbtest.v1.Greeter/Watch"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("lbtest.v1.Greeter/Watch is a server-streaming method"),
        "{}",
        stderr(&out)
    );
    let out = run_grpclb(&["describe", &p.address, "lbtest.v1.Greeter"], LIMIT);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("returns (stream lbtest.v1.HelloReply);  // server-streaming"),
        "{text}"
    );
    assert!(text.contains("message lbtest.v1.Detail {"), "{text}");
}
