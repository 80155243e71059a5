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
