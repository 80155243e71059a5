//! `grpclb merge` over reports that real `grpclb bench` runs wrote against
//! real `grpclb serve` backends on loopback.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use base64::Engine;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::Deserializer;
use serde_json::Value;

use grpclb::pick::Policy;
use grpclb::record::{EndpointKey, Tallies, Tally};
use grpclb::verdict::{Assertions, Balancing, judge};
use support::{Backend, assert_accounted, backends, code, grpclb_bin, ipv4_target, run_bounded};

const LIMIT: Duration = Duration::from_secs(90);

/// Runs `grpclb bench TARGET ARGS… -o json -q` as client `name` (its
/// `POD_NAME`), expects exit 0 and returns the document.
fn bench_as(name: &str, target: &str, args: &[&str]) -> Value {
    let out = run_bounded(
        Command::new(grpclb_bin())
            .args(["bench", target, "-o", "json", "-q"])
            .args(args)
            .env("POD_NAME", name)
            .env("POD_ZONE", format!("zone-{name}")),
        LIMIT,
    );
    assert_eq!(
        code(&out),
        0,
        "bench as {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("bench prints one JSON document")
}

/// Writes documents to files in `dir`, one per document, and returns their paths.
fn write_all(dir: &Path, docs: &[(&str, &Value)]) -> Vec<PathBuf> {
    docs.iter()
        .map(|(name, doc)| {
            let path = dir.join(name);
            std::fs::write(&path, serde_json::to_vec_pretty(doc).expect("encode")).expect("write");
            path
        })
        .collect()
}

/// Runs `grpclb merge ARGS… FILES…`.
fn merge(args: &[&str], files: &[PathBuf]) -> Output {
    run_bounded(
        Command::new(grpclb_bin())
            .arg("merge")
            .args(args)
            .args(files)
            .stdin(Stdio::null()),
        LIMIT,
    )
}

fn merge_json(args: &[&str], files: &[PathBuf], expect: i32) -> Value {
    let mut full = vec!["-o", "json"];
    full.extend_from_slice(args);
    let out = merge(&full, files);
    assert_eq!(
        code(&out),
        expect,
        "merge {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let merged: Value = serde_json::from_slice(&out.stdout).expect("merge prints JSON");
    merged
}

fn decode(text: &Value) -> Histogram<u64> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.as_str().expect("histogram is a string"))
        .expect("base64");
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .expect("HdrHistogram V2")
}

/// Every (value, count) recorded.
fn recorded(h: &Histogram<u64>) -> Vec<(u64, u64)> {
    h.iter_recorded()
        .map(|v| (v.value_iterated_to(), v.count_at_value()))
        .collect()
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

fn endpoint<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["endpoints"]
        .as_array()
        .expect("endpoints")
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("no endpoint {name} in {doc}"))
}

fn validator() -> jsonschema::Validator {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/report.schema.json"
    ))
    .expect("docs/report.schema.json");
    let schema: Value = serde_json::from_str(&text).expect("the schema is JSON");
    jsonschema::draft202012::new(&schema).expect("a valid draft 2020-12 schema")
}

fn assert_valid(validator: &jsonschema::Validator, doc: &Value) {
    let errors: Vec<String> = validator
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "schema violations: {errors:#?}");
}

/// Three clients that ran at once (a shared `--start-at`) over the same
/// three backends, round_robin.
struct Three {
    docs: Vec<Value>,
    start_at: SystemTime,
}

fn three() -> &'static Three {
    static THREE: OnceLock<Three> = OnceLock::new();
    THREE.get_or_init(|| {
        let pods = backends("mrg", 201, 3);
        let target = ipv4_target(&pods);
        let start_at = SystemTime::now() + Duration::from_secs(2);
        let at = humantime::format_rfc3339_seconds(start_at + Duration::from_secs(1)).to_string();
        let start_at = humantime::parse_rfc3339(&at).expect("a time");
        let docs = std::thread::scope(|scope| {
            let runs: Vec<_> = (1..=3)
                .map(|i| {
                    let (target, at) = (&target, &at);
                    scope.spawn(move || {
                        bench_as(
                            &format!("client-{i}"),
                            target,
                            &[
                                "--lb",
                                "round_robin",
                                "-n",
                                "1500",
                                "-c",
                                "3",
                                "--start-at",
                                at,
                            ],
                        )
                    })
                })
                .collect();
            runs.into_iter()
                .map(|r| r.join().expect("bench thread"))
                .collect()
        });
        drop(pods);
        Three { docs, start_at }
    })
}

fn three_files(dir: &Path) -> Vec<PathBuf> {
    let docs = &three().docs;
    write_all(
        dir,
        &[
            ("c1.json", &docs[0]),
            ("c2.json", &docs[1]),
            ("c3.json", &docs[2]),
        ],
    )
}

#[test]
fn three_clients_merge_to_the_sums_of_their_counts_histograms_and_verdict() {
    let Three { docs, start_at } = three();
    for doc in docs {
        assert_accounted(doc);
        let started = humantime::parse_rfc3339(doc["started_at"].as_str().unwrap()).unwrap();
        assert!(
            started >= *start_at,
            "--start-at held: {started:?} vs {start_at:?}"
        );
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let merged = merge_json(&["--assert-even"], &three_files(dir.path()), 0);
    assert_accounted(&merged);
    assert_valid(&validator(), &merged);

    // Counts are the sums, in total and per endpoint (matched by name and address).
    for field in ["requests", "ok", "errors"] {
        let sum: u64 = docs.iter().map(|d| u(&d[field])).sum();
        assert_eq!(u(&merged[field]), sum, "{field}");
    }
    assert_eq!(u(&merged["requests"]), 4500);
    let mut rows: Vec<(EndpointKey, Tally)> = Vec::new();
    for row in merged["endpoints"].as_array().unwrap() {
        let name = row["name"].as_str().unwrap();
        let parts: Vec<&Value> = docs.iter().map(|d| endpoint(d, name)).collect();
        for part in &parts {
            assert_eq!(part["address"], row["address"]);
        }
        let ok: u64 = parts.iter().map(|p| u(&p["ok"])).sum();
        let errors: u64 = parts.iter().map(|p| u(&p["errors"])).sum();
        assert_eq!((u(&row["ok"]), u(&row["errors"])), (ok, errors), "{name}");
        // The merged histogram is exactly the union of the clients' ones.
        let mut union = Histogram::<u64>::new(3).unwrap();
        for part in &parts {
            for (value, count) in recorded(&decode(&part["latency_histogram"])) {
                union.record_n(value, count).unwrap();
            }
        }
        assert_eq!(
            recorded(&decode(&row["latency_histogram"])),
            recorded(&union)
        );
        rows.push((
            EndpointKey {
                name: name.into(),
                address: row["address"].as_str().unwrap().into(),
            },
            Tally {
                ok,
                errors,
                ..Tally::default()
            },
        ));
    }

    // Percentiles of the merge are those of every call of every client.
    let mut union = Histogram::<u64>::new(3).unwrap();
    for doc in docs {
        for (value, count) in recorded(&decode(&doc["latency_histogram"])) {
            union.record_n(value, count).unwrap();
        }
    }
    assert_eq!(union.len(), 4500);
    for (field, quantile) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0)] {
        let want = union.value_at_quantile(quantile) as f64 / 1000.0;
        let got = merged["latency_ms"][field].as_f64().unwrap();
        assert!(
            (got - want).abs() <= want * 1e-3 + 1e-3,
            "{field}: merged {got} ms, union {want} ms"
        );
    }

    // The verdict is the verdict of the summed counts, with every client's
    // calls in flight in round_robin's bound.
    let assertions = Assertions {
        spread: true,
        all_endpoints_hit: true,
        ..Assertions::default()
    };
    let balancing = Balancing::PerCall {
        policy: Policy::RoundRobin,
        concurrency: 9,
    };
    let want = judge(
        &Tallies {
            rows,
            ..Tallies::default()
        },
        &assertions,
        balancing,
    );
    assert_eq!(merged["verdict"], serde_json::to_value(&want).unwrap());
    assert_eq!(merged["verdict"]["passed"], true);
    assert_eq!(
        merged["balancing"],
        serde_json::json!({"per": "call", "policy": "round_robin", "concurrency": 9})
    );
    let clients: Vec<&str> = merged["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(clients, ["client-1", "client-2", "client-3"]);
    assert!(merged.get("measured_by").is_none());
    assert!(
        !merged["notices"].to_string().contains("do not overlap"),
        "windows that start together overlap: {}",
        merged["notices"]
    );
}

#[test]
fn merging_one_report_gives_back_its_counts_and_latencies() {
    let doc = &three().docs[0];
    let dir = tempfile::tempdir().expect("tempdir");
    let files = write_all(dir.path(), &[("one.json", doc)]);
    let merged = merge_json(&[], &files, 0);
    for field in [
        "requests",
        "ok",
        "errors",
        "latency_ms",
        "balancing",
        "started_at",
    ] {
        assert_eq!(merged[field], doc[field], "{field}");
    }
    for (a, b) in merged["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .zip(doc["endpoints"].as_array().unwrap())
    {
        assert_eq!(a["requests"], b["requests"]);
        assert_eq!(a["latency_ms"], b["latency_ms"]);
        assert_eq!(
            recorded(&decode(&a["latency_histogram"])),
            recorded(&decode(&b["latency_histogram"]))
        );
    }
}

#[test]
fn stdin_takes_documents_one_per_line_or_concatenated() {
    let docs = &three().docs;
    let dir = tempfile::tempdir().expect("tempdir");
    let lines: String = docs
        .iter()
        .map(|d| format!("{}\n", serde_json::to_string(d).unwrap()))
        .collect();
    let glued: String = docs
        .iter()
        .map(|d| serde_json::to_string_pretty(d).unwrap())
        .collect();
    let expected = merge_json(&[], &three_files(dir.path()), 0);
    for (name, text) in [("lines.jsonl", lines), ("glued.json", glued)] {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let out = run_bounded(
            Command::new(grpclb_bin())
                .args(["merge", "-", "-o", "json"])
                .stdin(std::fs::File::open(&path).unwrap()),
            LIMIT,
        );
        assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
        let merged: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(merged["endpoints"], expected["endpoints"], "{name}");
        let sources: Vec<&str> = merged["clients"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["source"].as_str().unwrap())
            .collect();
        assert_eq!(
            sources,
            [
                "stdin (document 1)",
                "stdin (document 2)",
                "stdin (document 3)"
            ]
        );
    }
}

#[test]
fn a_pod_only_one_client_saw_gets_its_row_and_the_breakdown_shows_who_saw_it() {
    let pods = backends("seen", 211, 3);
    let all = ipv4_target(&pods);
    let two = ipv4_target(&pods[..2]);
    let a = bench_as("sees-all", &all, &["-n", "900", "-c", "3"]);
    let b = bench_as("sees-two", &two, &["-n", "900", "-c", "3"]);
    drop(pods);
    let dir = tempfile::tempdir().expect("tempdir");
    // Targets differ in what they list, so each is rewritten to one name,
    // as one headless Service seen from clients in different zones is.
    let mut docs = [a, b];
    for doc in &mut docs {
        doc["target"] = "kubernetes:///echo.default:grpc".into();
    }
    let files = write_all(dir.path(), &[("a.json", &docs[0]), ("b.json", &docs[1])]);
    let merged = merge_json(&[], &files, 0);
    assert_accounted(&merged);
    assert_eq!(merged["endpoints"].as_array().unwrap().len(), 3);
    let requests = |doc: &Value, name: &str| u(&endpoint(doc, name)["requests"]);
    assert_eq!(requests(&merged, "seen-3"), requests(&docs[0], "seen-3"));
    assert_eq!(
        requests(&merged, "seen-1"),
        requests(&docs[0], "seen-1") + requests(&docs[1], "seen-1")
    );
    assert!(
        docs[1]["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["name"] != "seen-3")
    );
    let seen: Vec<u64> = merged["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| u(&c["endpoints_seen"]))
        .collect();
    assert_eq!(seen, [3, 2]);

    // Judged as a whole, the pod that one client missed is short.
    let out = merge(&["--assert-even"], &files);
    assert_eq!(code(&out), 1, "{}", String::from_utf8_lossy(&out.stdout));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("seen-3"), "{text}");
    assert!(
        text.contains("1 of 2 clients saw fewer than the 3 endpoints"),
        "{text}"
    );
    assert!(text.contains("2/3"), "{text}");
}

#[test]
fn clients_pinned_to_one_pod_each_merge_even_but_the_breakdown_shows_it() {
    let pods = backends("pin", 231, 3);
    // pick_first sends every call to the first pod listed: each client
    // lists a different one first.
    let rotated = |first: usize| {
        let order: Vec<&Backend> = (0..3).map(|i| &pods[(first + i) % 3]).collect();
        let list: Vec<String> = order.iter().map(|b| b.address.to_string()).collect();
        format!("ipv4:{}", list.join(","))
    };
    let mut docs: Vec<Value> = (0..3)
        .map(|i| {
            bench_as(
                &format!("pinned-{i}"),
                &rotated(i),
                &["--lb", "pick_first", "-n", "1000"],
            )
        })
        .collect();
    drop(pods);
    let target = docs[0]["target"].clone();
    for doc in &mut docs {
        doc["target"] = target.clone();
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let files = write_all(
        dir.path(),
        &[
            ("p0.json", &docs[0]),
            ("p1.json", &docs[1]),
            ("p2.json", &docs[2]),
        ],
    );
    let merged = merge_json(&["--assert-even"], &files, 0);
    assert_eq!(merged["verdict"]["even"], true, "{}", merged["verdict"]);
    let mut pinned_to = BTreeMap::new();
    for client in merged["clients"].as_array().unwrap() {
        assert_eq!(client["even"], false, "{client}");
        assert_eq!(client["busiest"]["share"], 1.0, "{client}");
        assert_eq!(client["idlest"]["share"], 0.0, "{client}");
        pinned_to.insert(client["busiest"]["name"].as_str().unwrap().to_string(), ());
    }
    assert_eq!(pinned_to.len(), 3, "each client pinned to its own pod");
    let out = merge(&["--assert-even"], &files);
    assert_eq!(code(&out), 0);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("the merged spread is even, but 3 of 3 clients were uneven on their own"),
        "{text}"
    );
}

#[test]
fn mode_both_documents_merge_run_by_run_and_match_the_schema() {
    let pods = backends("both", 241, 2);
    let target = ipv4_target(&pods);
    let service = pods[0].address.to_string();
    let args = [
        "--mode",
        "both",
        "--clusterip-target",
        &service,
        "-n",
        "400",
    ];
    let docs = [
        bench_as("b-1", &target, &args),
        bench_as("b-2", &target, &args),
    ];
    drop(pods);
    let validator = validator();
    for doc in &docs {
        assert_valid(&validator, doc);
    }
    for doc in &three().docs {
        assert_valid(&validator, doc);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let files = write_all(dir.path(), &[("b1.json", &docs[0]), ("b2.json", &docs[1])]);
    let merged = merge_json(&[], &files, 0);
    assert_valid(&validator, &merged);
    let runs = merged["runs"].as_array().expect("runs");
    assert_eq!(runs[0]["mode"], "clusterip");
    assert_eq!(runs[1]["mode"], "headless");
    assert_eq!(
        runs[0]["verdict"]["checked"],
        "not judged (shown for contrast)"
    );
    assert_eq!(runs[0]["connections"], 2, "each client's connection counts");
    for run in runs {
        assert_eq!(run["requests"], 800);
        assert_accounted(run);
    }
    // A one-mode document does not merge with a both-modes one.
    let one = write_all(dir.path(), &[("one.json", &three().docs[0])]);
    let out = merge(&[], &[files[0].clone(), one[0].clone()]);
    assert_eq!(code(&out), 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("b1.json holds runs [clusterip, headless]"),
        "{err}"
    );
}

#[test]
fn bad_input_is_refused_naming_the_file_and_the_problem() {
    let good = &three().docs[0];
    let dir = tempfile::tempdir().expect("tempdir");
    let path = |name: &str| dir.path().join(name);
    let write = |name: &str, text: &str| {
        std::fs::write(path(name), text).unwrap();
        path(name)
    };
    // Another client's report, changed.
    let other = |name: &str, change: &dyn Fn(&mut Value)| {
        let mut doc = three().docs[1].clone();
        change(&mut doc);
        write(name, &serde_json::to_string_pretty(&doc).unwrap())
    };
    let changed = |name: &str, change: &dyn Fn(&mut Value)| {
        let mut doc = good.clone();
        change(&mut doc);
        write(name, &serde_json::to_string_pretty(&doc).unwrap())
    };
    let good_path = write("good.json", &serde_json::to_string(good).unwrap());
    let text = serde_json::to_string_pretty(good).unwrap();
    let cases: Vec<(Vec<PathBuf>, &str)> = vec![
        (
            vec![write("notes.txt", "hello, world\n")],
            "notes.txt is not JSON",
        ),
        (
            vec![write("cut.json", &text[..text.len() / 2])],
            "cut.json: malformed JSON: the document ends early",
        ),
        (
            vec![write("trailing.json", &format!("{text}\nDone.\n"))],
            "trailing.json: malformed JSON",
        ),
        (vec![write("empty.json", "")], "empty.json holds no report"),
        (
            vec![write("list.json", "[1, 2]")],
            "list.json is not a grpclb bench report",
        ),
        (
            vec![changed("future.json", &|d| d["schema"] = 2.into())],
            "future.json: unsupported schema: it is schema 2, this grpclb reads schema 1",
        ),
        (
            vec![changed("old.json", &|d| {
                d.as_object_mut().unwrap().remove("schema");
            })],
            "old.json: unsupported schema: it has no schema version",
        ),
        (
            vec![
                good_path.clone(),
                other("echo.json", &|d| d["call"] = "grpclb.v1.Echo/Echo".into()),
            ],
            "good.json measured grpc.health.v1.Health/Check but |echo.json measured grpclb.v1.Echo/Echo",
        ),
        (
            vec![
                good_path.clone(),
                other("elsewhere.json", &|d| {
                    d["target"] = "ipv4:10.0.0.1:80".into()
                }),
            ],
            "good.json targets static:///|elsewhere.json targets ipv4:10.0.0.1:80",
        ),
        (
            vec![changed("row.json", &|d| {
                let ok = u(&d["endpoints"][0]["ok"]);
                d["endpoints"][0]["ok"] = (ok + 1).into();
            })],
            "row.json is corrupt: endpoint mrg-",
        ),
        (
            vec![changed("total.json", &|d| {
                let n = u(&d["requests"]);
                d["requests"] = (n + 5).into();
            })],
            "total.json is corrupt: requests 1505 != ok 1500 + errors 0",
        ),
        (
            vec![changed("hist.json", &|d| {
                d["endpoints"][1]["latency_histogram"] = "AAAA".into()
            })],
            "hist.json is corrupt: endpoint mrg-",
        ),
        (
            vec![good_path.clone(), write("again.json", &text)],
            "good.json and |again.json are the same report",
        ),
        (vec![path("missing.json")], "cannot read"),
    ];
    for (files, message) in cases {
        let out = merge(&[], &files);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(code(&out), 2, "{files:?}: {err}");
        for part in message.split('|') {
            assert!(err.contains(part), "{files:?}: want {part:?} in {err}");
        }
        assert!(out.stdout.is_empty(), "nothing on stdout for bad input");
    }
    // The start time of bench is checked too.
    for (at, message) in [
        ("soon", "not an RFC 3339 time"),
        ("2999-01-01T00:00:00Z", "at most 24h"),
    ] {
        let out = support::run_grpclb(&["bench", "ipv4:127.0.0.1:1", "--start-at", at], LIMIT);
        assert_eq!(code(&out), 2);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(message), "{at}: {err}");
    }
}
