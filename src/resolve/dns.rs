//! DNS source: the A and AAAA records of a name, re-resolved on a period.
//!
//! A headless Service's name answers with one record per ready pod, so
//! `dns:///echo-headless.default.svc.cluster.local:50051` finds the pods
//! without API access. Answers are re-resolved every `--dns-refresh` (not
//! only when a connection drops, as many gRPC clients do), so pods added
//! later are found. `dns://10.96.0.10:53/host:port` asks that server only;
//! otherwise the system's resolver configuration applies.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{RData, RecordType};

use super::{
    Endpoint, Notice, Resolution, ResolveError, ResolveOptions, UpdateSender, diff, spawn_source,
};
use crate::target::join_host_port;

/// Starts resolving `host`, through `server` (`ip:port`) when given; waits
/// for the first answer.
pub async fn start(
    server: Option<&str>,
    host: &str,
    port: u16,
    options: &ResolveOptions,
) -> Result<Resolution, ResolveError> {
    let asking = match server {
        Some(server) => format!("DNS server {server}"),
        None => "the system's DNS servers".to_string(),
    };
    // An IP address needs no DNS: it is its own answer.
    if let Ok(ip) = host.parse::<IpAddr>() {
        let address = join_host_port(&ip.to_string(), port);
        return spawn_source("dns", move |tx| async move {
            tx.reset(vec![Endpoint::new(address, "IP literal")]).await;
            Ok(())
        })
        .await;
    }
    let resolver = build_resolver(server)?;
    let host = host.to_string();
    let period = options.dns_refresh;
    spawn_source("dns", move |tx| async move {
        let lookup = || lookup(&resolver, &host, port, &asking);
        refresh(tx, period, lookup).await
    })
    .await
}

/// A resolver asking `server` only, or the system's configured servers.
fn build_resolver(server: Option<&str>) -> Result<TokioResolver, ResolveError> {
    let mut builder = match server {
        Some(server) => {
            let address: SocketAddr = server.parse().map_err(|_| {
                ResolveError::Failed(format!(
                    "DNS server {server:?} is not ip:port; write dns://10.96.0.10:53/host:port"
                ))
            })?;
            let mut name_server = NameServerConfig::udp_and_tcp(address.ip());
            for connection in &mut name_server.connections {
                connection.port = address.port();
            }
            let config = ResolverConfig::from_parts(None, Vec::new(), vec![name_server]);
            let mut builder = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default());
            // The user named the server: ask it, not /etc/hosts.
            builder.options_mut().use_hosts_file = ResolveHosts::Never;
            builder
        }
        None => TokioResolver::builder_tokio().map_err(|err| {
            ResolveError::Failed(format!(
                "could not read the system's DNS configuration (/etc/resolv.conf): {err}; name a server, as dns://10.96.0.10:53/host:port"
            ))
        })?,
    };
    let options: &mut ResolverOpts = builder.options_mut();
    options.timeout = Duration::from_secs(2);
    options.attempts = 2;
    builder
        .build()
        .map_err(|err| ResolveError::Failed(format!("could not set up the DNS resolver: {err}")))
}

/// One answer: the endpoints, or why there are none.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub endpoints: Vec<Endpoint>,
    /// Set when the name has no A or AAAA records.
    pub empty_reason: Option<String>,
    /// Set when one record type failed while the other answered (a server
    /// that refuses AAAA, say): the answers are used, and this says why the
    /// other type is missing.
    pub partial: Option<String>,
}

/// What one record type's lookup gave.
#[derive(Debug, Clone, PartialEq)]
enum Records {
    /// Addresses, with the record name and TTL each came with.
    Found(Vec<(IpAddr, String, u32)>),
    /// No records of this type; `nxdomain` when the name does not exist.
    None { nxdomain: bool },
    /// The lookup failed (refused, timed out), in words.
    Failed(String),
}

/// Queries A and AAAA for `host` afresh (bypassing the cache).
async fn lookup(
    resolver: &TokioResolver,
    host: &str,
    port: u16,
    asking: &str,
) -> Result<Answer, String> {
    resolver.clear_cache();
    let (v4, v6) = futures::join!(
        resolver.lookup(host, RecordType::A),
        resolver.lookup(host, RecordType::AAAA)
    );
    let records = |result: Result<hickory_resolver::lookup::Lookup, NetError>| {
        match result {
            Ok(lookup) => Records::Found(
                lookup
                    .answers()
                    .iter()
                    .filter_map(|record| {
                        let ip = match &record.data {
                            RData::A(a) => IpAddr::V4(a.0),
                            RData::AAAA(aaaa) => IpAddr::V6(aaaa.0),
                            // CNAMEs on the way to the addresses.
                            _ => return None,
                        };
                        Some((ip, record.name.to_string(), record.ttl))
                    })
                    .collect(),
            ),
            Err(err) if err.is_no_records_found() => Records::None {
                nxdomain: err.is_nx_domain(),
            },
            Err(err) => Records::Failed(err.to_string()),
        }
    };
    combine(
        [(records(v4), "A"), (records(v6), "AAAA")],
        host,
        port,
        asking,
    )
}

/// The answer from both record types: what either found, a failure only
/// when neither answered, and NXDOMAIN only when both said so.
fn combine(
    kinds: [(Records, &str); 2],
    host: &str,
    port: u16,
    asking: &str,
) -> Result<Answer, String> {
    let failures: Vec<(&str, &String)> = kinds
        .iter()
        .filter_map(|(r, kind)| match r {
            Records::Failed(why) => Some((*kind, why)),
            _ => None,
        })
        .collect();
    let answered = kinds.iter().any(|(r, _)| !matches!(r, Records::Failed(_)));
    if !answered {
        return Err(failures
            .iter()
            .map(|(kind, why)| {
                format!(
                    "the {kind} lookup of {host} at {asking} failed: {why}; check that the server is reachable"
                )
            })
            .collect::<Vec<_>>()
            .join("; "));
    }
    let nxdomain = kinds
        .iter()
        .all(|(r, _)| matches!(r, Records::None { nxdomain: true } | Records::Failed(_)));
    let mut endpoints: Vec<Endpoint> = Vec::new();
    for (records, kind) in &kinds {
        let Records::Found(found) = records else {
            continue;
        };
        for (ip, name, ttl) in found {
            let address = join_host_port(&ip.to_string(), port);
            if endpoints.iter().any(|e| e.address == address) {
                continue;
            }
            endpoints.push(Endpoint {
                ttl_s: Some(i64::from(*ttl)),
                ..Endpoint::new(address, format!("{kind} {}", name.trim_end_matches('.')))
            });
        }
    }
    endpoints.sort_by_key(|e| e.address.parse::<SocketAddr>().ok());
    let empty_reason = endpoints.is_empty().then(|| {
        if nxdomain {
            format!("{host} does not exist (NXDOMAIN) at {asking}: check the name; a headless Service's name is svc.namespace.svc.cluster.local")
        } else {
            format!("{host} has no A or AAAA records at {asking}: a headless Service with no ready pods answers this way")
        }
    });
    let partial = failures.first().map(|(kind, why)| {
        let other = if *kind == "A" { "AAAA" } else { "A" };
        format!("the {kind} lookup of {host} at {asking} failed ({why}); using the {other} answers")
    });
    Ok(Answer {
        endpoints,
        empty_reason,
        partial,
    })
}

/// Sends the first answer, then re-resolves every `period` and sends each
/// answer that differs from the last; `period` zero resolves once.
///
/// An error on the first lookup ends the source; later errors become notices
/// and the last set stays in force.
pub async fn refresh<F, Fut>(
    tx: UpdateSender,
    period: Duration,
    mut lookup: F,
) -> Result<(), ResolveError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Answer, String>>,
{
    let first = lookup().await.map_err(ResolveError::Failed)?;
    if let Some(reason) = &first.empty_reason
        && !tx.notice(Notice::NothingReady(reason.clone())).await
    {
        return Ok(());
    }
    if let Some(partial) = &first.partial
        && !tx.notice(Notice::SourceError(partial.clone())).await
    {
        return Ok(());
    }
    let mut last = first;
    if !tx.reset(last.endpoints.clone()).await || period.is_zero() {
        return Ok(());
    }
    loop {
        tokio::time::sleep(period).await;
        let answer = match lookup().await {
            Ok(answer) => answer,
            Err(err) => {
                if !tx
                    .notice(Notice::SourceError(format!(
                        "DNS refresh failed: {err}; keeping the last set"
                    )))
                    .await
                {
                    return Ok(());
                }
                continue;
            }
        };
        if answer.partial.is_some()
            && answer.partial != last.partial
            && !tx
                .notice(Notice::SourceError(
                    answer.partial.clone().unwrap_or_default(),
                ))
                .await
        {
            return Ok(());
        }
        if answer.empty_reason.is_some()
            && answer.empty_reason != last.empty_reason
            && !tx
                .notice(Notice::NothingReady(
                    answer.empty_reason.clone().unwrap_or_default(),
                ))
                .await
        {
            return Ok(());
        }
        let changed = !diff(&last.endpoints, &answer.endpoints).is_empty();
        last = answer;
        if changed && !tx.reset(last.endpoints.clone()).await {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolve::Update;
    use std::sync::{Arc, Mutex};
    use tokio::time::Instant;

    fn answer(addresses: &[&str]) -> Answer {
        Answer {
            endpoints: addresses
                .iter()
                .map(|a| Endpoint::new(*a, "A echo.test"))
                .collect(),
            empty_reason: addresses.is_empty().then(|| "no records".to_string()),
            partial: None,
        }
    }

    /// A lookup that plays `script` in order, repeating the last entry.
    fn scripted(
        script: Vec<Result<Answer, String>>,
    ) -> impl FnMut() -> std::future::Ready<Result<Answer, String>> {
        let script = Arc::new(Mutex::new(
            script
                .into_iter()
                .collect::<std::collections::VecDeque<_>>(),
        ));
        let last = Arc::new(Mutex::new(None));
        move || {
            let mut script = script.lock().unwrap();
            let mut last = last.lock().unwrap();
            let next = script.pop_front().or_else(|| last.clone()).unwrap();
            *last = Some(next.clone());
            std::future::ready(next)
        }
    }

    #[tokio::test(start_paused = true)]
    async fn refresh_finds_new_records_after_one_period() {
        let period = Duration::from_secs(5);
        let started = Instant::now();
        let lookups = scripted(vec![
            Ok(answer(&["10.0.0.1:80"])),
            Ok(answer(&["10.0.0.1:80"])),
            Ok(answer(&["10.0.0.1:80", "10.0.0.2:80"])),
        ]);
        let mut resolution = spawn_source("dns", move |tx| refresh(tx, period, lookups))
            .await
            .unwrap();
        assert_eq!(resolution.initial.len(), 1);
        let update = resolution.updates.recv().await.unwrap();
        assert!(
            matches!(&update, Update::Reset(set) if set.len() == 2),
            "{update:?}"
        );
        // the unchanged answer at 5 s sent nothing; the change came at 10 s
        assert_eq!(started.elapsed(), period * 2);
    }

    #[tokio::test(start_paused = true)]
    async fn refresh_error_is_a_notice_and_keeps_the_set() {
        let lookups = scripted(vec![
            Ok(answer(&["10.0.0.1:80"])),
            Err("timed out".to_string()),
            Ok(answer(&[])),
        ]);
        let mut resolution = spawn_source("dns", move |tx| {
            refresh(tx, Duration::from_secs(1), lookups)
        })
        .await
        .unwrap();
        match resolution.updates.recv().await.unwrap() {
            Update::Notice(Notice::SourceError(n)) => assert!(
                n.contains("timed out") && n.contains("keeping the last set"),
                "{n}"
            ),
            other => panic!("expected a notice, got {other:?}"),
        }
        assert_eq!(
            resolution.updates.recv().await.unwrap(),
            Update::Notice(Notice::NothingReady("no records".into()))
        );
        assert_eq!(
            resolution.updates.recv().await.unwrap(),
            Update::Reset(vec![])
        );
    }

    #[tokio::test(start_paused = true)]
    async fn first_lookup_error_fails_the_source() {
        let lookups = scripted(vec![Err("connection refused".to_string())]);
        let result = spawn_source("dns", move |tx| {
            refresh(tx, Duration::from_secs(1), lookups)
        })
        .await;
        assert!(matches!(result, Err(ResolveError::Failed(m)) if m == "connection refused"));
    }

    #[tokio::test(start_paused = true)]
    async fn zero_period_resolves_once() {
        let lookups = scripted(vec![Ok(answer(&["10.0.0.1:80"]))]);
        let mut resolution = spawn_source("dns", move |tx| refresh(tx, Duration::ZERO, lookups))
            .await
            .unwrap();
        assert_eq!(resolution.updates.recv().await, None);
    }

    #[test]
    fn a_refused_aaaa_query_keeps_the_a_answers_and_says_why() {
        let a = Records::Found(vec![("10.0.0.1".parse().unwrap(), "echo.test.".into(), 30)]);
        let refused = Records::Failed("Query Refused".into());
        let answer = combine([(a, "A"), (refused, "AAAA")], "echo.test", 80, "X").unwrap();
        assert_eq!(answer.endpoints.len(), 1);
        assert_eq!(answer.endpoints[0].address, "10.0.0.1:80");
        assert!(answer.empty_reason.is_none());
        let partial = answer.partial.expect("the refusal is noted");
        assert_eq!(
            partial,
            "the AAAA lookup of echo.test at X failed (Query Refused); using the A answers"
        );
    }

    #[test]
    fn both_types_failing_fails_and_nxdomain_needs_both() {
        let failed = || Records::Failed("refused".into());
        assert!(combine([(failed(), "A"), (failed(), "AAAA")], "x.test", 80, "X").is_err());
        let nx = || Records::None { nxdomain: true };
        let answer = combine([(nx(), "A"), (nx(), "AAAA")], "x.test", 80, "X").unwrap();
        assert!(
            answer
                .empty_reason
                .unwrap()
                .contains("does not exist (NXDOMAIN)")
        );
        let nodata = Records::None { nxdomain: false };
        let answer = combine([(nx(), "A"), (nodata, "AAAA")], "x.test", 80, "X").unwrap();
        assert!(
            answer
                .empty_reason
                .unwrap()
                .contains("no A or AAAA records")
        );
    }

    #[tokio::test]
    async fn ip_literal_needs_no_dns() {
        let resolution = start(None, "10.1.2.3", 80, &ResolveOptions::default())
            .await
            .unwrap();
        assert_eq!(resolution.initial[0].address, "10.1.2.3:80");
    }
}
