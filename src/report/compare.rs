//! Both modes side by side: one row per pod, each mode's share of calls,
//! and a one-line conclusion.

use comfy_table::CellAlignment;

use super::Report;
use super::style::{Style, fit, new_table};

/// A table with one row per endpoint and one column per run, fitted to the
/// style's width (the endpoint names are never broken).
pub fn comparison_table(runs: &[Report], style: &Style) -> String {
    let mut names: Vec<&str> = Vec::new();
    for run in runs {
        for e in run.endpoint_rows() {
            if !names.contains(&e.name.as_str()) {
                names.push(&e.name);
            }
        }
    }
    let build = |_: ()| {
        let mut header = vec!["endpoint".to_string()];
        header.extend(runs.iter().map(|r| format!("{} share", r.mode)));
        let mut table = new_table(header);
        for name in &names {
            let mut row = vec![name.to_string()];
            for run in runs {
                let share = run
                    .endpoint_rows()
                    .find(|e| e.name == *name)
                    .map_or(0.0, |e| e.share);
                row.push(format!("{:.1}%", share * 100.0));
            }
            table.add_row(row);
        }
        for column in 1..=runs.len() {
            if let Some(c) = table.column_mut(column) {
                c.set_cell_alignment(CellAlignment::Right);
            }
        }
        table
    };
    fit(&[()], style, |_| vec![0], build).to_string()
}

/// One sentence comparing the runs: how concentrated each one was.
pub fn conclusion(runs: &[Report]) -> String {
    let parts: Vec<String> = runs
        .iter()
        .map(|run| {
            let k = run.endpoint_rows().count();
            let busiest = run
                .endpoint_rows()
                .max_by(|a, b| a.share.total_cmp(&b.share))
                .map_or(0.0, |e| e.share);
            let hit = run.endpoint_rows().filter(|e| e.requests > 0).count();
            format!(
                "{}: {hit} of {k} endpoints served calls, busiest took {:.0}% ({})",
                run.mode,
                busiest * 100.0,
                super::table::spread_word(run).to_lowercase()
            )
        })
        .collect();
    parts.join("; ")
}
