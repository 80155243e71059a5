//! Benching, listing and describing any unary method, against `grpclb
//! serve`'s own `grpclb.v1` service: described through server reflection,
//! through its `.proto` file, and through a descriptor set.

mod support;

use std::time::Duration;

use support::{
    Backend, assert_accounted, backends, code, ipv4_target, json, requests_by_name, run_grpclb,
};

const LIMIT: Duration = Duration::from_secs(90);

fn proto_file() -> String {
    format!("{}/proto/grpclb.proto", env!("CARGO_MANIFEST_DIR"))
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `grpclb bench ARGS… -o json -q` and returns the output (any exit code).
fn bench(args: &[&str]) -> std::process::Output {
    let mut full = vec!["bench"];
    full.extend_from_slice(args);
    full.extend(["-o", "json", "-q"]);
    run_grpclb(&full, LIMIT)
}

/// The calls each pod got, checked within `slack` of `each`.
fn assert_spread(report: &serde_json::Value, pods: &[Backend], each: u64, slack: u64) {
    let counts = requests_by_name(report);
    for pod in pods {
        let n = counts
            .iter()
            .find(|(n, _)| *n == pod.name)
            .map_or(0, |(_, c)| *c);
        assert!(
            n.abs_diff(each) <= slack,
            "{} got {n}: {counts:?}",
            pod.name
        );
    }
}

#[test]
fn echo_described_by_reflection_spreads_evenly_and_prints_responses() {
    let pods = backends("m-refl", 161, 3);
    let out = bench(&[
        &ipv4_target(&pods),
        "--call",
        "grpclb.v1.Echo/Echo",
        "--data",
        r#"{"payload": "aGVsbG8="}"#,
        "-n",
        "300",
        "-c",
        "3",
        "--assert-even",
        "--print-responses",
        "3",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let report = json(&out);
    assert_accounted(&report);
    assert_eq!(report["call"], "grpclb.v1.Echo/Echo");
    assert_eq!(report["verdict"]["passed"], true, "{report}");
    assert_spread(&report, &pods, 100, 3);
    let err = stderr(&out);
    let samples: Vec<&str> = err.lines().filter(|l| l.starts_with("response ")).collect();
    assert_eq!(samples.len(), 3, "{err}");
    for line in samples {
        assert!(line.contains(r#""payload":"aGVsbG8=""#), "{line}");
        // Each sample names the pod that answered, in the line and in the reply.
        let pod = pods
            .iter()
            .find(|p| line.contains(&format!("from {}:", p.name)));
        let pod = pod.unwrap_or_else(|| panic!("no pod named in {line}"));
        assert!(
            line.contains(&format!(r#""name":"{}""#, pod.name)),
            "{line}"
        );
    }
}

#[test]
fn a_proto_file_describes_the_method_without_reflection() {
    let pods = backends("m-proto", 164, 2);
    let proto = proto_file();
    let out = bench(&[
        &ipv4_target(&pods),
        "--call",
        "grpclb.v1.Echo/WhoAmI",
        "--proto",
        &proto,
        "-n",
        "200",
        "-c",
        "2",
        "--assert-even",
        "--print-responses",
        "1",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let report = json(&out);
    assert_accounted(&report);
    assert_eq!(report["call"], "grpclb.v1.Echo/WhoAmI");
    assert_spread(&report, &pods, 100, 2);
    assert!(
        stderr(&out).contains(r#"{"name":"m-proto-"#),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_descriptor_set_describes_the_method_and_lists_offline() {
    let pods = backends("m-set", 166, 2);
    let dir = tempfile::tempdir().expect("temp dir");
    let set = dir.path().join("grpclb.pb");
    std::fs::write(&set, grpclb::proto::FILE_DESCRIPTOR_SET).expect("write descriptor set");
    let set = set.to_string_lossy().into_owned();
    let out = bench(&[
        &ipv4_target(&pods),
        "--call",
        "grpclb.v1.Echo/Echo",
        "--protoset",
        &set,
        "--data",
        r#"{"payload": "c2V0"}"#,
        "-n",
        "100",
        "-c",
        "2",
        "--assert-even",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let report = json(&out);
    assert_accounted(&report);
    assert_spread(&report, &pods, 50, 2);
    // No server is needed to list what a descriptor set describes.
    let out = run_grpclb(&["list", "--protoset", &set, "-o", "json"], LIMIT);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let listing = json(&out);
    assert_eq!(
        listing["services"][0]["name"], "grpclb.v1.Echo",
        "{listing}"
    );
}

#[test]
fn list_and_describe_read_grpclb_serve_through_reflection() {
    let pods = backends("m-list", 168, 1);
    let target = pods[0].address.to_string();
    let out = run_grpclb(&["list", &target, "-o", "json"], LIMIT);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let listing = json(&out);
    let services = listing["services"].as_array().expect("services");
    let health = services
        .iter()
        .find(|s| s["name"] == "grpc.health.v1.Health")
        .unwrap_or_else(|| panic!("no health service in {listing}"));
    let kinds: Vec<(&str, &str)> = health["methods"]
        .as_array()
        .expect("methods")
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap_or(""),
                m["kind"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("grpc.health.v1.Health/Check", "unary"),
            ("grpc.health.v1.Health/Watch", "server-streaming")
        ]
    );
    assert!(
        services.iter().any(|s| s["name"] == "grpclb.v1.Echo"),
        "{listing}"
    );

    let out = run_grpclb(
        &["describe", &target, "grpclb.v1.Echo/Echo", "-o", "json"],
        LIMIT,
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let description = json(&out);
    assert_eq!(description["method"]["kind"], "unary");
    let messages: Vec<&str> = description["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["name"].as_str())
        .collect();
    assert_eq!(
        messages,
        [
            "grpclb.v1.EchoRequest",
            "grpclb.v1.EchoReply",
            "grpclb.v1.ServerIdentity"
        ]
    );

    let out = run_grpclb(&["describe", &target, "grpclb.v1.Echo"], LIMIT);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("service grpclb.v1.Echo {"), "{text}");
    assert!(
        text.contains("rpc Echo(grpclb.v1.EchoRequest) returns (grpclb.v1.EchoReply);  // unary"),
        "{text}"
    );
    assert!(
        text.contains("string pod_ip = 2;  // JSON: podIp"),
        "{text}"
    );
}

#[test]
fn echo_cycles_through_data_lines_in_order() {
    let pods = backends("m-lines", 169, 1);
    let dir = tempfile::tempdir().expect("temp dir");
    let lines = dir.path().join("requests.jsonl");
    // "a", "b", "c" in base64, and a blank line that is skipped.
    std::fs::write(
        &lines,
        "{\"payload\":\"YQ==\"}\n{\"payload\":\"Yg==\"}\n\n{\"payload\":\"Yw==\"}\n",
    )
    .expect("write");
    let out = bench(&[
        &pods[0].address.to_string(),
        "--mode",
        "clusterip",
        "--call",
        "echo",
        "--data-lines",
        &lines.to_string_lossy(),
        "-n",
        "30",
        "-c",
        "1",
        "--warmup",
        "0s",
        "--print-responses",
        "6",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_accounted(&json(&out));
    let payloads: Vec<String> = stderr(&out)
        .lines()
        .filter(|l| l.starts_with("response "))
        .filter_map(|l| l.split(r#""payload":""#).nth(1))
        .map(|rest| rest.split('"').next().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        payloads,
        ["YQ==", "Yg==", "Yw==", "YQ==", "Yg==", "Yw=="],
        "{}",
        stderr(&out)
    );
}

#[test]
fn each_bad_request_gets_its_message_and_exit_code() {
    let pods = backends("m-bad", 170, 1);
    let target = pods[0].address.to_string();
    let dir = tempfile::tempdir().expect("temp dir");
    let lines = dir.path().join("bad.jsonl");
    std::fs::write(&lines, "{\"payload\":\"YQ==\"}\n{\"payload\":[1]}\n").expect("write");
    let lines = lines.to_string_lossy().into_owned();
    let cases: [(&[&str], i32, &[&str]); 9] = [
        (
            &["--call", "grpclb.v1.Echo/Nope"],
            2,
            &["no method \"Nope\"", "Echo, WhoAmI"],
        ),
        (
            &["--call", "grpclb.v1.Nope/Echo"],
            2,
            &[
                "no service grpclb.v1.Nope",
                "grpclb.v1.Echo",
                "grpc.health.v1.Health",
            ],
        ),
        (
            &["--call", "grpc.health.v1.Health/Watch"],
            2,
            &["server-streaming", "unary calls only"],
        ),
        (
            &["--call", "echo", "--data", "{\"payload\": "],
            2,
            &["--data is not valid JSON", "line 1 column"],
        ),
        (
            &[
                "--call",
                "grpclb.v1.Echo/Echo",
                "--data",
                r#"{"payload": 12}"#,
            ],
            2,
            &["field payload of grpclb.v1.EchoRequest expects base64 text (bytes)"],
        ),
        (
            &[
                "--call",
                "grpclb.v1.Echo/Echo",
                "--data",
                r#"{"payload": "YQ==", "size": 3}"#,
            ],
            2,
            &[
                "unknown field size (in grpclb.v1.EchoRequest)",
                "its fields are: payload",
            ],
        ),
        (
            &["--call", "grpclb.v1.Echo/Echo", "--data-lines", &lines],
            2,
            &["bad.jsonl line 2: field payload", "expects base64 text"],
        ),
        (&["--call", "Echo"], 2, &["write pkg.Service/Method"]),
        (
            &[
                "--call",
                "grpclb.v1.Echo/Echo",
                "--data",
                "@/nonexistent/request.json",
            ],
            2,
            &["cannot read --data @", "/nonexistent/request.json"],
        ),
    ];
    for (args, expected_code, fragments) in cases {
        let mut full = vec![target.as_str()];
        full.extend_from_slice(args);
        full.extend(["-n", "10"]);
        let out = bench(&full);
        let err = stderr(&out);
        assert_eq!(code(&out), expected_code, "{args:?}: {err}");
        for fragment in fragments {
            assert!(
                err.contains(fragment),
                "{args:?}: {fragment:?} not in {err}"
            );
        }
        assert!(
            out.stdout.is_empty(),
            "{args:?} printed a report: {}",
            stdout(&out)
        );
    }
}

#[test]
fn an_unreachable_server_is_exit_3() {
    // Nothing listens on port 1 of a loopback address.
    let out = bench(&["127.0.0.171:1", "--call", "grpclb.v1.Echo/Echo"]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no endpoint answered server reflection"),
        "{}",
        stderr(&out)
    );
    let out = run_grpclb(&["describe", "127.0.0.171:1", "grpclb.v1.Echo"], LIMIT);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
}
