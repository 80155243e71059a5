//! The exit code of finished runs (design: exit codes).

use std::collections::BTreeSet;

use crate::report::Report;

/// What the process should exit with, and why when it is not plain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub code: u8,
    /// Said on stderr before exiting.
    pub message: Option<String>,
}

/// 130/143 when a signal cut the run short; 3 when no call succeeded at
/// all, or every endpoint went away mid-run; 1 when a verdict failed; else 0.
pub fn exit_code(reports: &[Report]) -> Outcome {
    // A signal: 128 + its number, as a shell reports it (130 SIGINT, 143 SIGTERM).
    if let Some(cut) = reports.iter().find(|r| r.interrupted) {
        let signal = cut.signal.as_deref().unwrap_or("SIGINT");
        let code = if signal == "SIGTERM" { 143 } else { 130 };
        return Outcome {
            code,
            message: Some(format!(
                "interrupted by {signal}: the report covers the {:.2}s measured before it (not judged)",
                cut.elapsed_s
            )),
        };
    }
    if let Some(dead) = reports.iter().find(|r| r.requests > 0 && r.ok == 0) {
        let codes: BTreeSet<&str> = dead
            .endpoints
            .iter()
            .flat_map(|e| e.error_codes.keys().map(String::as_str))
            .collect();
        let codes: Vec<&str> = codes.into_iter().collect();
        // A server that refuses with a reason runs: the request is what to
        // check. (Unreachable and timed-out calls carry the client's words.)
        let refused = dead.error_messages.iter().find(|(code, messages)| {
            !matches!(
                code.as_str(),
                "UNAVAILABLE" | "DEADLINE_EXCEEDED" | "CANCELLED"
            ) && !messages.is_empty()
        });
        // A failed handshake: no server got as far as a call. The pool
        // never picks such a member, so its reason is in the run's notes
        // (`address: TLS: …`), not in any call's error.
        let tls_failure = dead
            .error_messages
            .values()
            .flatten()
            .chain(&dead.notices)
            .find(|m| m.starts_with("TLS: ") || m.contains(": TLS: "));
        let hint = match refused {
            _ if tls_failure.is_some() => format!(
                "no endpoint could be reached: {}",
                tls_failure.map_or("", String::as_str)
            ),
            Some((code, messages)) => format!(
                "the servers answered {code}: {:?}; check the request (--data) and the method",
                messages[0]
            ),
            _ => "check that the servers run and the address is right".to_string(),
        };
        return Outcome {
            code: 3,
            message: Some(format!(
                "no call succeeded in {} mode against {} ({}); {hint}",
                dead.mode,
                dead.target,
                codes.join(", ")
            )),
        };
    }
    // Some calls succeeded, then every endpoint went away.
    if let Some(gone) = reports
        .iter()
        .find_map(|r| r.unreachable_since_s.map(|s| (r, s)))
    {
        let (report, since) = gone;
        return Outcome {
            code: 3,
            message: Some(format!(
                "nothing reachable since {since:+.2}s in {} mode against {}: every endpoint's connection failed; \
                 the run ended there (check that the servers run)",
                report.mode, report.target
            )),
        };
    }
    let code = if reports.iter().any(|r| !r.verdict.holds()) {
        1
    } else {
        0
    };
    Outcome {
        code,
        message: None,
    }
}
