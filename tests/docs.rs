//! The documentation's shell examples run as written. A ```sh block right
//! after a `<!-- run-on-loopback -->` comment in README.md or docs/*.md is
//! run with bash (`set -euo pipefail`), with the `grpclb` under test first
//! on PATH, in a fresh directory, against the real processes the block
//! starts itself on loopback. It must exit 0 within its time limit.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod support;

/// Longest a block may run.
const LIMIT: Duration = Duration::from_secs(180);

/// The marker that precedes a block the tests run.
const MARKER: &str = "<!-- run-on-loopback -->";

/// A marked block: where it is, and its text.
struct Example {
    file: PathBuf,
    line: usize,
    script: String,
}

fn examples() -> Vec<Example> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read a doc");
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if line.trim() != MARKER {
                continue;
            }
            let fence = lines[i + 1..]
                .iter()
                .position(|l| !l.trim().is_empty())
                .map(|p| i + 1 + p);
            let Some(start) = fence.filter(|&f| lines[f].trim() == "```sh") else {
                panic!(
                    "{}:{}: {MARKER} must precede a ```sh block",
                    file.display(),
                    i + 1
                );
            };
            let end = lines[start + 1..]
                .iter()
                .position(|l| l.trim() == "```")
                .map(|p| start + 1 + p)
                .unwrap_or_else(|| panic!("{}:{}: unclosed block", file.display(), start + 1));
            found.push(Example {
                file: file.clone(),
                line: start + 1,
                script: lines[start + 1..end].join("\n"),
            });
        }
    }
    found
}

/// The tools a block calls besides grpclb and the shell's own, present or not.
fn missing_tools(script: &str) -> Vec<&'static str> {
    ["etcd", "etcdctl", "jq"]
        .into_iter()
        .filter(|tool| {
            script
                .split(|c: char| !c.is_ascii_alphanumeric())
                .any(|w| w == *tool)
        })
        .filter(|tool| {
            !Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .collect()
}

#[test]
fn the_docs_mark_examples_to_run() {
    let examples = examples();
    let files: Vec<String> = examples
        .iter()
        .map(|e| {
            e.file
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    for expected in ["README.md", "etcd.md", "ci.md"] {
        assert!(
            files.iter().any(|f| f == expected),
            "no marked example in {expected}"
        );
    }
}

#[test]
fn marked_shell_examples_run_as_written() {
    let bin_dir = Path::new(support::grpclb_bin())
        .parent()
        .expect("the binary's directory")
        .to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let in_ci = std::env::var("CI").is_ok_and(|v| v == "true");
    for example in examples() {
        let place = format!("{}:{}", example.file.display(), example.line);
        let missing = missing_tools(&example.script);
        if !missing.is_empty() {
            assert!(
                !in_ci,
                "{place}: needs {missing:?}; scripts/test.sh installs them"
            );
            eprintln!(
                "skipping {place}: {missing:?} not installed (scripts/test.sh installs them)"
            );
            continue;
        }
        let dir = tempfile::tempdir().expect("a directory to run in");
        let (status, stdout, stderr) = run_block(&example.script, dir.path(), &path);
        assert!(
            status == Some(0),
            "{place} failed (exit {status:?})\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
        );
    }
}

/// Runs a block in `dir` within [`LIMIT`]; returns its exit code (`None`
/// when killed) and what it printed. Output goes to files, not pipes, so a
/// server left in the background cannot hold the test open; whatever the
/// block left running in its process group is stopped afterwards.
fn run_block(script: &str, dir: &Path, path: &str) -> (Option<i32>, String, String) {
    let file = |name: &str| std::fs::File::create(dir.join(name)).expect("an output file");
    let mut child = Command::new("bash")
        .args(["-c", &format!("set -euo pipefail\n{script}")])
        .current_dir(dir)
        .env("PATH", path)
        .env_remove("ETCDCTL_ENDPOINTS")
        .stdin(Stdio::null())
        .stdout(file("stdout"))
        .stderr(file("stderr"))
        .process_group(0)
        .spawn()
        .expect("run bash");
    let group = child.id();
    let deadline = Instant::now() + LIMIT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status.code(),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            _ => break None,
        }
    };
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{group}")])
        .stderr(Stdio::null())
        .status();
    let _ = child.wait();
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap_or_default();
    (status, read("stdout"), read("stderr"))
}
