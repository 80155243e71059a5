//! The per-client breakdown: each client's busiest and idlest endpoint and
//! its own spread. A merged spread can be even while every client pins to
//! one pod (each through its own ClusterIP connection, say); this is where
//! that shows.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{CellAlignment, ContentArrangement, Table};
use serde::Serialize;

use super::document::ClientRun;
use crate::record::{EndpointKey, Tally};
use crate::report::rfc3339;
use crate::verdict::{Assertions, judge};

/// One client's part of a merged run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ClientBreakdown {
    /// The client's pod (else host) name, or its source when it did not say.
    pub name: String,
    /// Where its report was read from.
    pub source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    pub started_at: String,
    pub elapsed_s: f64,
    pub requests: u64,
    pub ok: u64,
    pub errors: u64,
    /// Endpoints in this client's own report (of those in the merge).
    pub endpoints_seen: usize,
    /// The endpoint this client sent the most calls to.
    pub busiest: Option<EndpointShare>,
    /// The endpoint this client sent the fewest calls to.
    pub idlest: Option<EndpointShare>,
    /// This client's own spread, judged as its bench would without asked
    /// checks: largest |share − expected share|, CV, busiest ÷ idlest.
    pub max_deviation: f64,
    pub cv: f64,
    pub max_ratio: Option<f64>,
    /// This client's own spread lies within the fair bound of its balancing.
    pub even: bool,
}

/// An endpoint's calls from one client, and their share of that client's calls.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EndpointShare {
    pub name: String,
    pub address: String,
    pub requests: u64,
    pub share: f64,
}

/// The breakdown of one client's run.
pub fn breakdown(source: &str, run: &ClientRun) -> ClientBreakdown {
    let total = run.tallies.total();
    let endpoints: Vec<&(EndpointKey, Tally)> = run.tallies.endpoints().collect();
    let calls: u64 = endpoints.iter().map(|(_, t)| t.requests()).sum();
    let share = |(key, tally): &(EndpointKey, Tally)| EndpointShare {
        name: key.name.clone(),
        address: key.address.clone(),
        requests: tally.requests(),
        share: if calls == 0 {
            0.0
        } else {
            round4(tally.requests() as f64 / calls as f64)
        },
    };
    // The first of equals, in the client's report order.
    let busiest = endpoints
        .iter()
        .rev()
        .max_by_key(|(_, t)| t.requests())
        .map(|e| share(e));
    let idlest = endpoints
        .iter()
        .min_by_key(|(_, t)| t.requests())
        .map(|e| share(e));
    let own = judge(&run.tallies, &Assertions::default(), run.balancing);
    let identity = run.measured_by.clone();
    ClientBreakdown {
        name: run.label(source).to_string(),
        source: source.to_string(),
        node: identity.as_ref().and_then(|c| c.node.clone()),
        zone: identity.and_then(|c| c.zone),
        started_at: rfc3339(run.started_at),
        elapsed_s: (run.elapsed_s * 1000.0).round() / 1000.0,
        requests: total.requests(),
        ok: total.ok,
        errors: total.errors,
        endpoints_seen: endpoints.len(),
        busiest,
        idlest,
        max_deviation: own.max_deviation,
        cv: own.cv,
        max_ratio: own.max_ratio,
        even: own.even,
    }
}

/// The breakdown as a table, with a warning when an even merge hides
/// clients that were uneven on their own.
pub fn table(clients: &[ClientBreakdown], merged_even: bool, endpoints: usize) -> String {
    let mut table = Table::new();
    table
        .load_style(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(vec![
            "client",
            "zone",
            "requests",
            "errors",
            "saw",
            "busiest",
            "idlest",
            "max dev",
            "own spread",
        ]);
    let endpoint = |e: &Option<EndpointShare>| {
        e.as_ref().map_or("-".to_string(), |e| {
            format!("{} {:.1}%", e.name, e.share * 100.0)
        })
    };
    for c in clients {
        table.add_row(vec![
            c.name.clone(),
            c.zone.clone().unwrap_or_default(),
            c.requests.to_string(),
            c.errors.to_string(),
            format!("{}/{endpoints}", c.endpoints_seen),
            endpoint(&c.busiest),
            endpoint(&c.idlest),
            format!("{:.1}%", c.max_deviation * 100.0),
            if c.even { "even" } else { "uneven" }.to_string(),
        ]);
    }
    for column in [2, 3, 4, 7] {
        if let Some(c) = table.column_mut(column) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    let mut out = format!("per client ({}):\n{table}\n", clients.len());
    let uneven = clients.iter().filter(|c| !c.even).count();
    if merged_even && uneven > 0 {
        out.push_str(&format!(
            "warning: the merged spread is even, but {uneven} of {} clients were uneven on their \
             own: each balanced badly and together they hid it\n",
            clients.len()
        ));
    }
    let partial = clients
        .iter()
        .filter(|c| c.endpoints_seen < endpoints)
        .count();
    if partial > 0 {
        out.push_str(&format!(
            "note: {partial} of {} clients saw fewer than the {endpoints} endpoints of the merge\n",
            clients.len()
        ));
    }
    out
}

fn round4(x: f64) -> f64 {
    (x * 10000.0).round() / 10000.0
}
