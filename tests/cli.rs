//! Bad usage is exit 2 with a message that names what is wrong.

mod support;

use std::time::Duration;

use support::{code, run_grpclb};

fn stderr_of(args: &[&str]) -> (i32, String) {
    let out = run_grpclb(args, Duration::from_secs(30));
    (
        code(&out),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_targets_and_flags_are_usage_errors() {
    let cases: &[(&[&str], &str)] = &[
        (&["bench", "ipv4:10.0.0.1"], "has no port"),
        (&["bench", "http://x:80"], "unknown scheme"),
        (
            &["bench", "ipv4:127.0.0.1:1", "--lb", "fastest"],
            "unknown policy",
        ),
        (
            &["bench", "ipv4:127.0.0.1:1", "--concurrency", "0"],
            "--concurrency must be at least 1",
        ),
        (
            &["bench", "ipv4:127.0.0.1:1", "--max-deviation", "3"],
            "between 0 and 1",
        ),
        (
            &["bench", "ipv4:127.0.0.1:1", "--max-errors", "lots"],
            "neither a count",
        ),
        (
            &["bench", "ipv4:127.0.0.1:1", "--mode", "both"],
            "--clusterip-target",
        ),
        (
            &[
                "bench",
                "127.0.0.1:1",
                "--mode",
                "clusterip",
                "--assert-even",
            ],
            "--expect-endpoints",
        ),
        (
            &["bench", "ipv4:127.0.0.1:1", "--duration", "soon"],
            "not a duration",
        ),
        (
            &["bench", "ipv4:127.0.0.1:1", "--timeout", "20000y"],
            "--timeout",
        ),
        (
            &["bench", "ipv4:127.0.0.1:1", "--rate", "1e-20", "-n", "2"],
            "--rate",
        ),
        (
            &["bench", "ipv4:127.0.0.1:1", "--duration", "20000y"],
            "--duration",
        ),
        (
            &["bench", "ipv4:127.0.0.1:1", "--warmup", "20000y"],
            "--warmup",
        ),
        (
            &["bench", "ipv4:127.0.0.1:1", "-c", "100000000"],
            "--concurrency",
        ),
        (
            &[
                "bench",
                "127.0.0.1:1",
                "--mode",
                "clusterip",
                "--connections",
                "100000000",
            ],
            "--connections",
        ),
        (
            &[
                "bench",
                "ipv4:127.0.0.1:1",
                "--call",
                "echo",
                "--payload-bytes",
                "1000000000000",
            ],
            "--payload-bytes",
        ),
        (
            &["bench", "ipv4:127.0.0.1:1", "--threads", "0"],
            "--threads",
        ),
        (&["serve", "--listen", "nowhere"], "not an IP:port"),
        (&["demo", "--pods", "0"], "between 1 and"),
    ];
    for (args, fragment) in cases {
        let (status, stderr) = stderr_of(args);
        assert_eq!(status, 2, "{args:?}: {stderr}");
        assert!(
            stderr.contains(fragment),
            "{args:?}: {stderr:?} lacks {fragment:?}"
        );
    }
}

#[test]
fn a_port_in_use_is_exit_3_with_advice() {
    let holder = std::net::TcpListener::bind("127.0.0.92:0").expect("bind");
    let address = holder.local_addr().expect("address").to_string();
    let (status, stderr) = stderr_of(&["serve", "--listen", &address]);
    assert_eq!(status, 3, "{stderr}");
    assert!(
        stderr.contains("cannot listen on") && stderr.contains("--listen"),
        "{stderr}"
    );
}
