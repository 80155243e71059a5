//! Checks between identifying the pods and running: what the user asked
//! for must name pods that exist, and pods must be told apart.

use crate::Failure;
use crate::record::EndpointKey;
use crate::resolve::{Notice, Resolution, Update};
use crate::verdict::Weights;

/// A usage error (exit 2) when `--weights` names an endpoint that no known
/// pod has as its name or address, listing the names that exist.
pub(super) fn weights_name_known_pods(
    weights: Option<&Weights>,
    known: &[EndpointKey],
) -> Result<(), Failure> {
    let Some(Weights::ByName(pairs)) = weights else {
        return Ok(());
    };
    if known.is_empty() {
        // Only the run will show who answers (a Service address alone).
        return Ok(());
    }
    let unknown: Vec<&str> = pairs
        .iter()
        .map(|(name, _)| name.as_str())
        .filter(|name| !known.iter().any(|k| k.name == *name || k.address == *name))
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    let existing: Vec<String> = known
        .iter()
        .map(|k| {
            if k.name == k.address {
                k.name.clone()
            } else {
                format!("{} ({})", k.name, k.address)
            }
        })
        .collect();
    Err(Failure::Usage(format!(
        "--weights names {} that no endpoint has as its name or address; the endpoints are: {}",
        unknown.join(", "),
        existing.join(", ")
    )))
}

/// A notice for each identity that several endpoints answer with: their
/// calls cannot be told apart in the report.
pub(super) fn shared_identities(known: &[EndpointKey]) -> Vec<String> {
    let mut notices = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for key in known {
        if seen.contains(&key.name.as_str()) {
            continue;
        }
        seen.push(&key.name);
        let addresses: Vec<&str> = known
            .iter()
            .filter(|k| k.name == key.name)
            .map(|k| k.address.as_str())
            .collect();
        if addresses.len() > 1 {
            let all = if addresses.len() == 2 { "both" } else { "all" };
            notices.push(format!(
                "{} {all} answer as {:?}, so the report cannot tell them apart; give each server its \
                 own name (grpclb serve --name, or $POD_NAME)",
                addresses.join(", "),
                key.name
            ));
        }
    }
    notices
}

/// How long the notices that belong to the first set may trail it.
const NOTICES_GRACE: std::time::Duration = std::time::Duration::from_millis(200);

/// Why a resolution left nothing to balance onto: the source's own reasons
/// (a name that does not exist, no ready pod) when it gave any, else the
/// pool's problems dialling what it found.
pub(super) async fn nothing_to_balance(
    target: &str,
    resolution: Option<&mut Resolution>,
    problems: &[String],
) -> Failure {
    let mut reasons: Vec<String> = Vec::new();
    if let Some(resolution) = resolution {
        // The notices that came with the first set follow it closely.
        let deadline = tokio::time::Instant::now() + NOTICES_GRACE;
        while let Ok(Some(update)) =
            tokio::time::timeout_at(deadline, resolution.updates.recv()).await
        {
            if let Update::Notice(notice @ (Notice::NothingReady(_) | Notice::SourceError(_))) =
                update
            {
                reasons.push(notice.to_string());
            }
        }
    }
    if reasons.is_empty() {
        let why = if problems.is_empty() {
            String::new()
        } else {
            format!(" ({})", problems.join("; "))
        };
        return Failure::CannotRun(format!(
            "{target} resolved to no ready endpoints{why}; check that the pods are running and ready \
             (grpclb resolve {target} shows what was found)"
        ));
    }
    Failure::CannotRun(format!("{target}: {}", reasons.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str, address: &str) -> EndpointKey {
        EndpointKey {
            name: name.into(),
            address: address.into(),
        }
    }

    #[test]
    fn weights_for_an_unknown_name_are_a_usage_error_listing_the_names() {
        let known = [key("pod-a", "10.0.0.1:80"), key("pod-b", "10.0.0.2:80")];
        let by_name =
            |names: &[&str]| Weights::ByName(names.iter().map(|n| (n.to_string(), 1.0)).collect());
        assert!(weights_name_known_pods(Some(&by_name(&["pod-a", "10.0.0.2:80"])), &known).is_ok());
        let err = weights_name_known_pods(Some(&by_name(&["pod-a", "pod-c"])), &known)
            .expect_err("pod-c does not exist");
        assert_eq!(err.exit_code(), 2);
        let message = err.to_string();
        assert!(
            message.contains("pod-c") && message.contains("pod-b (10.0.0.2:80)"),
            "{message}"
        );
        assert!(weights_name_known_pods(Some(&Weights::InOrder(vec![1.0])), &known).is_ok());
    }

    #[test]
    fn two_endpoints_with_one_identity_get_a_notice() {
        let known = [
            key("host", "127.0.0.1:1"),
            key("host", "127.0.0.2:1"),
            key("pod-c", "127.0.0.3:1"),
        ];
        let notices = shared_identities(&known);
        assert_eq!(notices.len(), 1, "{notices:?}");
        assert!(notices[0].contains("127.0.0.1:1, 127.0.0.2:1") && notices[0].contains("--name"));
        assert!(shared_identities(&known[1..]).is_empty());
    }
}
