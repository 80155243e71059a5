//! What a new user meets first: JSON that is alone on stdout whatever the
//! exit code, `--output-file`, colour only where asked, completions and
//! manual pages, and `resolve --watch` summaries that count what they printed.

#[path = "support/dnsmasq.rs"]
mod dnsmasq;
mod support;

use std::process::Output;
use std::time::Duration;

use dnsmasq::Dnsmasq;
use support::{Backend, backends, code, ipv4_target, json, run_grpclb};

const LIMIT: Duration = Duration::from_secs(60);

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Stdout is empty or exactly one JSON document.
fn assert_only_json(args: &[&str], out: &Output) {
    let text = String::from_utf8_lossy(&out.stdout);
    if text.trim().is_empty() {
        return;
    }
    if let Err(e) = serde_json::from_str::<serde_json::Value>(&text) {
        panic!("{args:?}: stdout is not one JSON document ({e}):\n{text}");
    }
}

#[test]
fn json_output_is_alone_on_stdout_in_every_exit_path() {
    let pods = backends("first", 201, 2);
    let target = ipv4_target(&pods);
    let cases: Vec<(Vec<&str>, i32)> = vec![
        (vec!["bench", &target, "-n", "400", "-o", "json"], 0),
        (
            vec![
                "bench",
                &target,
                "-n",
                "400",
                "--expect-endpoints",
                "3",
                "-o",
                "json",
            ],
            1,
        ),
        (
            vec!["bench", &target, "--concurrency", "0", "-o", "json"],
            2,
        ),
        (
            vec!["bench", "ipv4:127.0.0.1:1", "-n", "20", "-o", "json"],
            3,
        ),
        (vec!["resolve", &target, "-o", "json"], 0),
        (
            vec!["bench", "dns://127.0.0.1:1/nowhere.test:80", "-o", "json"],
            3,
        ),
    ];
    for (args, expected) in cases {
        let out = run_grpclb(&args, LIMIT);
        assert_eq!(code(&out), expected, "{args:?}: {}", stderr(&out));
        assert_only_json(&args, &out);
        if expected <= 1 {
            assert!(!out.stdout.is_empty(), "{args:?}: no document");
        }
    }
}

#[test]
fn output_file_holds_the_document_while_stdout_shows_tables() {
    let pods = backends("file", 204, 2);
    let target = ipv4_target(&pods);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("spread.json");
    let path_text = path.to_string_lossy().to_string();
    let out = run_grpclb(
        &[
            "bench",
            &target,
            "-n",
            "300",
            "-O",
            &path_text,
            "--assert-even",
        ],
        LIMIT,
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("file-1") && stdout.contains("verdict"),
        "{stdout}"
    );
    let document: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("the file exists")).expect("JSON");
    assert_eq!(document["requests"], 300);

    let unwritable = run_grpclb(
        &[
            "bench",
            &target,
            "-n",
            "10",
            "-O",
            "/nonexistent-dir/x.json",
        ],
        LIMIT,
    );
    assert_eq!(code(&unwritable), 3, "{}", stderr(&unwritable));
    assert!(
        stderr(&unwritable).contains("--output-file"),
        "{}",
        stderr(&unwritable)
    );

    let resolved = dir.path().join("endpoints.json");
    let out = run_grpclb(
        &["resolve", &target, "-O", &resolved.to_string_lossy()],
        LIMIT,
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let document: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&resolved).expect("written")).expect("JSON");
    assert_eq!(document["endpoints"].as_array().map(Vec::len), Some(2));
}

#[test]
fn colour_only_when_asked_or_on_a_terminal() {
    let pods = backends("colour", 206, 2);
    let target = ipv4_target(&pods);
    let run = |extra: &[&str]| {
        let mut args = vec!["bench", target.as_str(), "-n", "200", "--assert-even"];
        args.extend(extra);
        let out = run_grpclb(&args, LIMIT);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // stdout is a pipe here: auto means no colour.
    assert!(!run(&[]).contains('\x1b'));
    assert!(!run(&["--color", "never"]).contains('\x1b'));
    let coloured = run(&["--color", "always"]);
    assert!(coloured.contains("\x1b[32mPASS\x1b[0m"), "{coloured}");
}

#[test]
fn completions_and_manual_pages_generate() {
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let out = run_grpclb(&["completions", shell], LIMIT);
        assert_eq!(code(&out), 0, "{shell}: {}", stderr(&out));
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(
            script.contains("bench") && script.contains("assert-even"),
            "{shell}"
        );
    }
    let out = run_grpclb(&["man"], LIMIT);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains(".TH grpclb 1"));
    let out = run_grpclb(&["man", "resolve"], LIMIT);
    assert!(String::from_utf8_lossy(&out.stdout).contains(".TH grpclb-resolve 1"));
}

#[test]
fn help_is_true_and_ends_with_examples() {
    let help = |sub: &str| {
        let out = run_grpclb(&[sub, "--help"], LIMIT);
        assert_eq!(code(&out), 0);
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(help("demo").contains("[default: 5000 unless --duration]"));
    let resolve = help("resolve");
    assert!(
        !resolve.contains("clusterip") && !resolve.contains("balance onto"),
        "{resolve}"
    );
    assert!(
        help("bench").contains("possible values: round_robin, pick_first, random, least_request")
    );
    assert!(help("register").contains("possible values: plain, json"));
    for sub in [
        "bench",
        "serve",
        "resolve",
        "demo",
        "register",
        "merge",
        "list",
        "describe",
        "completions",
        "man",
    ] {
        let text = help(sub);
        let examples = text
            .split("Examples:")
            .nth(1)
            .unwrap_or_else(|| panic!("{sub}: no examples"));
        let count = examples
            .lines()
            .filter(|l| l.trim_start().starts_with("grpclb") || l.contains(" grpclb "))
            .count();
        assert!(count >= 2, "{sub}: {count} examples\n{examples}");
    }
}

#[test]
fn watch_summary_counts_the_lines_it_printed() {
    let out = run_grpclb(
        &[
            "resolve",
            "ipv4:127.0.0.1:1,127.0.0.1:2,127.0.0.1:3",
            "--watch",
            "-z",
            "1s",
            "-o",
            "json",
        ],
        LIMIT,
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let added = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|line| line["event"] == "added")
        .count();
    assert_eq!(added, 3, "{stdout}");
    assert!(stderr(&out).contains("3 added"), "{}", stderr(&out));
}

#[test]
fn weights_naming_no_endpoint_are_a_usage_error_listing_the_endpoints() {
    let pods = backends("w", 209, 2);
    let target = ipv4_target(&pods);
    let out = run_grpclb(
        &["bench", &target, "-n", "100", "--weights", "w-1=9,w-3=1"],
        LIMIT,
    );
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let message = stderr(&out);
    assert!(
        message.contains("w-3") && message.contains("w-1") && message.contains("w-2"),
        "{message}"
    );
}

#[test]
fn two_servers_with_one_name_are_flagged_and_open_loop_says_its_rate() {
    let a = Backend::start("127.0.0.211", "twin");
    let b = Backend::start("127.0.0.212", "twin");
    let pods = [a, b];
    let target = ipv4_target(&pods);
    let out = run_grpclb(
        &["bench", &target, "-n", "200", "--rate", "400", "-o", "json"],
        LIMIT,
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let report = json(&out);
    let notices = report["notices"].to_string();
    assert!(notices.contains("cannot tell them apart"), "{report}");
    assert_eq!(report["open_loop_rate"], 400.0);
    let out = run_grpclb(&["bench", &target, "-n", "100", "--rate", "400"], LIMIT);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("open loop at 400 calls/s"), "{stdout}");
    assert!(
        stdout.contains("note: ") && stdout.contains("twin"),
        "{stdout}"
    );
}

#[test]
fn a_name_that_does_not_exist_says_so() {
    let dns = Dnsmasq::start(&[("127.0.0.213", "echo.test")]);
    let target = format!("dns://{}/nope.test:50051", dns.server());
    let out = run_grpclb(&["bench", &target, "-n", "10"], LIMIT);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    let message = stderr(&out);
    assert!(
        message.contains("nope.test does not exist (NXDOMAIN)"),
        "{message}"
    );
    assert!(!message.contains("no ready endpoints"), "{message}");
}

#[test]
fn a_refresh_that_fails_during_a_bench_leaves_a_notice() {
    let pod = Backend::start("127.0.0.214", "dns-pod");
    let dns = Dnsmasq::start(&[("127.0.0.214", "echo.test")]);
    let target = format!("dns://{}/echo.test:{}", dns.server(), pod.address.port());
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        drop(dns);
    });
    let out = run_grpclb(
        &[
            "bench",
            &target,
            "-z",
            "8s",
            "--dns-refresh",
            "300ms",
            "-c",
            "2",
            "-o",
            "json",
        ],
        LIMIT,
    );
    killer.join().expect("the DNS server stopped");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let report = json(&out);
    assert!(
        report["notices"].to_string().contains("DNS refresh failed"),
        "{report}"
    );
}

/// A DNS server on loopback that answers A queries with `ip` and refuses
/// every AAAA query, as some corporate resolvers do; stops after `limit`.
/// dnsmasq cannot refuse one record type, hence this small one.
fn refusing_aaaa_server(ip: [u8; 4], limit: Duration) -> u16 {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind a UDP port");
    let port = socket.local_addr().expect("address").port();
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("read timeout");
    std::thread::spawn(move || {
        let deadline = std::time::Instant::now() + limit;
        let mut buffer = [0u8; 512];
        while std::time::Instant::now() < deadline {
            let Ok((n, peer)) = socket.recv_from(&mut buffer) else {
                continue;
            };
            let query = &buffer[..n];
            // The question: labels up to a zero byte, then type and class.
            let mut end = 12;
            while end < n && query[end] != 0 {
                end += 1 + query[end] as usize;
            }
            let question_end = end + 5;
            if n < question_end {
                continue;
            }
            let qtype = u16::from_be_bytes([query[end + 1], query[end + 2]]);
            let refuse = qtype == 28;
            let mut reply = query[..2].to_vec(); // id
            reply.extend([0x81, if refuse { 0x85 } else { 0x80 }]); // response, RD, RA, rcode
            reply.extend([0, 1, 0, u8::from(!refuse), 0, 0, 0, 0]);
            reply.extend(&query[12..question_end]);
            if !refuse {
                // Name by pointer to the question, type A, class IN, TTL 30, 4 bytes.
                reply.extend([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4]);
                reply.extend(ip);
            }
            let _ = socket.send_to(&reply, peer);
        }
    });
    port
}

#[test]
fn a_server_that_refuses_aaaa_still_resolves_through_a() {
    let pod = Backend::start("127.0.0.215", "a-only");
    let dns_port = refusing_aaaa_server([127, 0, 0, 215], Duration::from_secs(60));
    let target = format!(
        "dns://127.0.0.1:{dns_port}/echo.test:{}",
        pod.address.port()
    );
    let out = run_grpclb(&["bench", &target, "-n", "200", "-o", "json"], LIMIT);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let report = json(&out);
    assert_eq!(report["endpoints"][0]["name"], "a-only", "{report}");
    let notices = report["notices"].to_string();
    assert!(
        notices.contains("AAAA lookup") && notices.contains("using the A answers"),
        "{report}"
    );
}

#[test]
fn demo_with_one_pod_calls_it_even_and_the_contrast_run_is_not_judged() {
    let out = run_grpclb(
        &["demo", "--pods", "1", "-n", "300", "-o", "json", "-q"],
        LIMIT,
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let doc = json(&out);
    let runs = doc["runs"].as_array().expect("runs");
    for run in runs {
        assert_eq!(run["verdict"]["even"], true, "{run}");
    }
    let clusterip = &runs[0]["verdict"];
    assert_eq!(clusterip["judged"], false, "{clusterip}");
    assert!(clusterip["passed"].is_null(), "{clusterip}");
    assert_eq!(runs[1]["verdict"]["judged"], true);
    let table = run_grpclb(&["demo", "--pods", "1", "-n", "300", "-q"], LIMIT);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        !text.contains("UNEVEN") && !text.contains("uneven"),
        "{text}"
    );
}
