//! What a test needs from the machine (root, a tool), and the one rule for
//! when it is missing: in CI (`CI` set, as every CI system sets it) the
//! test fails with the reason, because a skipped test must never pass for
//! a tested one; elsewhere it prints `SKIPPED: <test>: <why>` on stderr,
//! appends the same line to the file named by `GRPCLB_SKIP_LOG` (which
//! `scripts/test.sh` sets, to count the skips at the end) and the test
//! returns early.
//!
//! ```ignore
//! if !require_root("kernel NAT rules") { return; }
//! ```

use std::io::Write;
use std::path::PathBuf;

/// True when running under CI: `CI` set to anything but empty, `0` or `false`.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false" | "FALSE"))
}

/// Whether the test can run, given what is missing (`None`: nothing).
/// Panics in CI when something is; otherwise reports the skip.
pub fn can_run(missing: Option<String>) -> bool {
    let Some(why) = missing else {
        return true;
    };
    let test = std::thread::current()
        .name()
        .unwrap_or("<unnamed test>")
        .to_string();
    if in_ci() {
        panic!(
            "{test} cannot run: {why}. In CI a test that cannot run fails: run scripts/test.sh, which installs what the tests need and runs as root"
        );
    }
    let binary = std::env::args()
        .next()
        .map(PathBuf::from)
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    // Test binaries are named `<file>-<hash>`.
    let binary = binary.rsplit_once('-').map_or(binary.as_str(), |(b, _)| b);
    let line = format!("SKIPPED: {binary}::{test}: {why}");
    eprintln!("{line}");
    if let Some(log) = std::env::var_os("GRPCLB_SKIP_LOG")
        && let Ok(mut file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
    {
        let _ = writeln!(file, "{line}");
    }
    false
}

/// The test needs root (network namespaces, iptables); `why` says for what.
pub fn require_root(why: &str) -> bool {
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    can_run((!root).then(|| format!("{why} needs root (scripts/test.sh re-runs itself with sudo)")))
}

/// Where `tool` is: on `PATH` or in the sbin directories (not on a user's `PATH`).
pub fn find_tool(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin"].map(PathBuf::from))
        .map(|dir| dir.join(tool))
        .find(|p| p.is_file())
}

/// The test runs `tool`, from Debian's `package`.
pub fn require_tool(tool: &str, package: &str) -> bool {
    can_run(find_tool(tool).is_none().then(|| {
        format!("{tool} is not installed (Debian package {package}; scripts/test.sh installs it)")
    }))
}

/// The C-core gRPC peers: Debian's `/usr/bin/python3` with `python3-grpcio`.
pub fn require_python_grpc() -> bool {
    let imports = std::process::Command::new("/usr/bin/python3")
        .args(["-c", "import grpc"])
        .output()
        .is_ok_and(|o| o.status.success());
    can_run((!imports).then(|| {
        "/usr/bin/python3 cannot import grpc (Debian packages python3-grpcio; scripts/test.sh installs it)".to_string()
    }))
}
