//! Fair shares over time: when the pool's ready set changed during a run
//! (a scale-up, a drain, a rollout, a pod that died), each endpoint's fair
//! share is what a fair balancer gives it in each epoch it could be picked
//! in, added up. The expectation counts calls per epoch, never a clock
//! reading, so it holds at any call rate.

use crate::record::Epoch;

/// Each endpoint's expected share of the run's calls and, for one that
/// could not be picked for the whole run, when it could (for the words of
/// a failed check). `None` when the ready set never changed: the shares
/// as given hold.
///
/// `endpoints` are (name, address) in verdict order, `weights` their
/// shares as asked (equal unless `--weights`), `counts` the calls each
/// got: rows that share an address (a pod restarted under a new name)
/// split that address's expectation in proportion to their calls.
pub(super) fn time_aware(
    epochs: &[Epoch],
    endpoints: &[(String, String)],
    weights: &[f64],
    counts: &[u64],
) -> Option<(Vec<f64>, Vec<Option<String>>)> {
    let with_calls: Vec<&Epoch> = epochs.iter().filter(|e| e.calls > 0).collect();
    let first = with_calls.first()?;
    if with_calls.iter().all(|e| e.ready == first.ready) {
        return None;
    }
    // The weight of an address: its rows' largest (they are one member).
    let weight_of = |address: &str| {
        endpoints
            .iter()
            .zip(weights)
            .filter(|((_, a), _)| a == address)
            .map(|(_, w)| *w)
            .fold(0.0, f64::max)
    };
    let mut expected_by_address: Vec<(String, f64)> = Vec::new();
    for epoch in &with_calls {
        let total: f64 = epoch.ready.iter().map(|a| weight_of(a)).sum();
        if total <= 0.0 {
            continue;
        }
        for address in &epoch.ready {
            let part = epoch.calls as f64 * weight_of(address) / total;
            match expected_by_address.iter_mut().find(|(a, _)| a == address) {
                Some((_, e)) => *e += part,
                None => expected_by_address.push((address.clone(), part)),
            }
        }
    }
    let expected: Vec<f64> = endpoints
        .iter()
        .zip(counts)
        .map(|((_, address), n)| {
            let of_address = expected_by_address
                .iter()
                .find(|(a, _)| a == address)
                .map_or(0.0, |(_, e)| *e);
            let rows: Vec<u64> = endpoints
                .iter()
                .zip(counts)
                .filter(|((_, a), _)| a == address)
                .map(|(_, n)| *n)
                .collect();
            let together: u64 = rows.iter().sum();
            if together == 0 {
                of_address / rows.len().max(1) as f64
            } else {
                of_address * *n as f64 / together as f64
            }
        })
        .collect();
    let sum: f64 = expected.iter().sum();
    if sum <= 0.0 {
        return None;
    }
    let shares = expected.iter().map(|e| e / sum).collect();
    let spans = endpoints
        .iter()
        .map(|(_, address)| ready_span(&with_calls, address))
        .collect();
    Some((shares, spans))
}

/// When an endpoint could be picked, in words, if not for the whole run:
/// "ready from +4.1s", "ready until +2.0s", "ready +1.0s..+3.0s", or
/// "never ready".
fn ready_span(epochs: &[&Epoch], address: &str) -> Option<String> {
    let ready: Vec<&&Epoch> = epochs
        .iter()
        .filter(|e| e.ready.iter().any(|a| a == address))
        .collect();
    let (Some(first), Some(last)) = (ready.first(), ready.last()) else {
        return Some("never ready".into());
    };
    let from_start = std::ptr::eq(**first, epochs[0]);
    let to_end = std::ptr::eq(**last, epochs[epochs.len() - 1]);
    match (from_start, to_end) {
        (true, true) => None,
        (false, true) => Some(format!("ready from {:+.1}s", first.from_s.max(0.0))),
        (true, false) => Some(format!("ready until {:+.1}s", last.to_s)),
        (false, false) => Some(format!(
            "ready {:+.1}s..{:+.1}s",
            first.from_s.max(0.0),
            last.to_s
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epoch(from_s: f64, to_s: f64, calls: u64, ready: &[&str]) -> Epoch {
        Epoch {
            from_s,
            to_s,
            calls,
            ready: ready.iter().map(|a| a.to_string()).collect(),
        }
    }

    fn endpoints(names: &[&str]) -> Vec<(String, String)> {
        names
            .iter()
            .map(|n| (n.to_string(), n.to_string()))
            .collect()
    }

    #[test]
    fn a_newcomer_expects_its_part_of_the_epochs_after_it_joined() {
        // 4000 calls over a and b, then 6000 over a, b and c.
        let epochs = [
            epoch(0.0, 4.0, 4000, &["a", "b"]),
            epoch(4.0, 10.0, 6000, &["a", "b", "c"]),
        ];
        let names = endpoints(&["a", "b", "c"]);
        let (shares, spans) =
            time_aware(&epochs, &names, &[1.0 / 3.0; 3], &[4000, 4000, 2000]).expect("changed");
        let expected: Vec<f64> = shares.iter().map(|s| s * 10_000.0).collect();
        assert!((expected[0] - 4000.0).abs() < 1e-6, "{expected:?}");
        assert!((expected[2] - 2000.0).abs() < 1e-6, "{expected:?}");
        assert_eq!(spans, [None, None, Some("ready from +4.0s".to_string())]);
    }

    #[test]
    fn weights_split_each_epoch_among_the_ready_ones() {
        let epochs = [
            epoch(0.0, 5.0, 1000, &["stable", "canary"]),
            epoch(5.0, 10.0, 1000, &["stable"]),
        ];
        let names = endpoints(&["stable", "canary"]);
        let (shares, spans) =
            time_aware(&epochs, &names, &[0.9, 0.1], &[1900, 100]).expect("changed");
        assert!((shares[1] - 0.05).abs() < 1e-9, "{shares:?}");
        assert_eq!(spans[1].as_deref(), Some("ready until +5.0s"));
    }

    #[test]
    fn an_unchanged_ready_set_keeps_the_shares_as_given() {
        let epochs = [
            epoch(-1.0, 2.0, 500, &["a", "b"]),
            epoch(2.0, 3.0, 0, &["a"]),
            epoch(3.0, 4.0, 500, &["a", "b"]),
        ];
        assert!(time_aware(&epochs, &endpoints(&["a", "b"]), &[0.5; 2], &[500, 500]).is_none());
    }
}
