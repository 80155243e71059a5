//! `grpclb merge`: the reports of many clients (`bench -o json`, e.g. from
//! the pods of an Indexed Job) added into one, and judged as `bench` judges
//! one run. Read every document ([`read`]), check each ([`document`]), add
//! the runs of each mode ([`combine`]), judge the sum with the same
//! assertions and fair-bound models, and keep each client's own view
//! ([`clients`]).
//!
//! Documents of `--mode both` (`{"runs": [...]}`) merge run by run, matched
//! by mode; every document must hold the same modes. As in `bench`, only
//! the headless run of such a merge is judged.

mod clients;
mod combine;
mod document;
mod read;

use serde::Serialize;

pub use clients::{ClientBreakdown, EndpointShare};
pub use document::{ClientReport, ClientRun};

use crate::Failure;
use crate::bench::Outcome;
use crate::plan::MergePlan;
use crate::report::{self, Report};
use crate::verdict::{Assertions, NOT_JUDGED, judge};

/// Why reports could not be merged. Every one is bad input (exit 2) and
/// names the source and the problem.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("cannot read {input}: {reason}")]
    Unreadable { input: String, reason: String },
    #[error("{input} is not JSON ({detail}); give the output of `grpclb bench -o json`")]
    NotJson { input: String, detail: String },
    #[error("{input}: malformed JSON: {detail}")]
    Malformed { input: String, detail: String },
    #[error("{input} holds no report (it is empty); did the bench write its JSON elsewhere?")]
    Empty { input: String },
    #[error("{input} is not a grpclb bench report: {detail}")]
    NotAReport { input: String, detail: String },
    #[error("{input}: unsupported schema: {detail}")]
    Schema { input: String, detail: String },
    #[error("{input} is corrupt: {detail}")]
    Corrupt { input: String, detail: String },
    #[error("{detail}")]
    Mismatch { detail: String },
}

impl From<MergeError> for Failure {
    fn from(err: MergeError) -> Self {
        Failure::Usage(err.to_string())
    }
}

/// One mode's merged run: the report of all clients together, and each
/// client's own view of it.
#[derive(Debug, Clone, Serialize)]
pub struct MergedRun {
    #[serde(flatten)]
    pub report: Report,
    /// One entry per client, in the order read.
    pub clients: Vec<ClientBreakdown>,
}

/// Reads every source of the plan and merges what it holds.
pub fn run(plan: &MergePlan) -> Result<Vec<MergedRun>, MergeError> {
    let documents = read::read_all(&plan.sources)?;
    let reports = documents
        .into_iter()
        .map(document::parse)
        .collect::<Result<Vec<_>, _>>()?;
    merge(&reports, &plan.assertions)
}

/// Merges checked client reports, run by run, and judges each merged run.
pub fn merge(
    reports: &[ClientReport],
    assertions: &Assertions,
) -> Result<Vec<MergedRun>, MergeError> {
    let Some(first) = reports.first() else {
        return Err(MergeError::Empty {
            input: "the input".into(),
        });
    };
    let modes: Vec<&str> = first.runs.iter().map(|r| r.mode.as_str()).collect();
    for other in &reports[1..] {
        let theirs: Vec<&str> = other.runs.iter().map(|r| r.mode.as_str()).collect();
        if theirs != modes {
            return Err(MergeError::Mismatch {
                detail: format!(
                    "{} holds runs [{}] but {} holds [{}]; merge reports of the same --mode",
                    first.source,
                    modes.join(", "),
                    other.source,
                    theirs.join(", ")
                ),
            });
        }
    }
    refuse_duplicates(reports)?;
    let judged_alone = modes.len() == 1;
    let mut merged = Vec::new();
    for (i, mode) in modes.iter().enumerate() {
        let runs: Vec<(&str, &ClientRun)> = reports
            .iter()
            .map(|r| (r.source.as_str(), &r.runs[i]))
            .collect();
        let combined = combine::combine(&runs)?;
        let verdict = if judged_alone || *mode == "headless" {
            judge(&combined.tallies, assertions, combined.info.balancing)
        } else {
            let mut verdict = judge(
                &combined.tallies,
                &Assertions::default(),
                combined.info.balancing,
            );
            verdict.checked = NOT_JUDGED.into();
            verdict
        };
        let report = Report::build(
            combined.info,
            &combined.tallies,
            combined.changes,
            combined.notices,
            verdict,
        );
        let clients = runs
            .iter()
            .map(|(source, run)| clients::breakdown(source, run))
            .collect();
        merged.push(MergedRun { report, clients });
    }
    Ok(merged)
}

/// The same report given twice (one pod's log gathered twice) would count
/// its calls twice: refuse it.
fn refuse_duplicates(reports: &[ClientReport]) -> Result<(), MergeError> {
    for (i, a) in reports.iter().enumerate() {
        for b in &reports[i + 1..] {
            let same = a.runs.iter().zip(&b.runs).all(|(x, y)| {
                x.measured_by == y.measured_by
                    && x.started_at == y.started_at
                    && x.elapsed_s == y.elapsed_s
                    && x.tallies.total().requests() == y.tallies.total().requests()
            });
            if same {
                return Err(MergeError::Mismatch {
                    detail: format!(
                        "{} and {} are the same report (same client, same window, same calls); \
                         give each client's report once",
                        a.source, b.source
                    ),
                });
            }
        }
    }
    Ok(())
}

/// The merged runs as one JSON document: the run itself for one mode,
/// `{"runs": [...]}` for several (the form `bench` writes).
pub fn json(runs: &[MergedRun]) -> Result<String, serde_json::Error> {
    if let [run] = runs {
        serde_json::to_string_pretty(run)
    } else {
        serde_json::to_string_pretty(&serde_json::json!({ "runs": runs }))
    }
}

/// The merged runs as tables, each followed by its per-client breakdown;
/// several runs add the side-by-side comparison.
pub fn tables(runs: &[MergedRun]) -> String {
    let mut text: Vec<String> = runs
        .iter()
        .map(|run| {
            let endpoints = run.report.endpoint_rows().count();
            format!(
                "merged from {} client{}: {}{}",
                run.clients.len(),
                if run.clients.len() == 1 { "" } else { "s" },
                report::render(&run.report),
                clients::table(&run.clients, run.report.verdict.even, endpoints)
            )
        })
        .collect();
    let reports = reports(runs);
    if reports.len() > 1 {
        text.push(report::comparison_table(&reports));
        text.push(report::conclusion(&reports));
    }
    text.join("\n")
}

/// The merged reports alone.
pub fn reports(runs: &[MergedRun]) -> Vec<Report> {
    runs.iter().map(|r| r.report.clone()).collect()
}

/// The exit code, as `bench` decides it.
pub fn exit_code(runs: &[MergedRun]) -> Outcome {
    crate::bench::exit_code(&reports(runs))
}
