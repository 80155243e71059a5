//! Writing results: reports as tables or one JSON document, and what
//! `grpclb resolve` sees, line by line. Rendering is the library's
//! (`grpclb::report`); this module only chooses and writes.

use grpclb::Failure;
use grpclb::plan::{Output, ResolvePlan};
use grpclb::report::{self, Report, endpoints};
use grpclb::resolve::Change;
use grpclb::watch::WatchEvent;

/// Prints the reports as tables or one JSON document.
pub fn reports(reports: &[Report], output: Output) -> Result<(), Failure> {
    let text = match output {
        Output::Json => report::json(reports)
            .map_err(|e| Failure::CannotRun(format!("cannot encode the report: {e}")))?,
        Output::Table => report::tables(reports),
    };
    stdout(&text)
}

/// Writes a block to stdout. A reader that went away (`grpclb … | head`)
/// is not an error.
pub fn stdout(text: &str) -> Result<(), Failure> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match writeln!(stdout, "{text}").and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Failure::CannotRun(format!("cannot write the report: {e}")))
        }
        _ => Ok(()),
    }
}

/// Prints `grpclb resolve`'s events as its table or JSON form.
pub struct WatchPrinter {
    target: String,
    output: Output,
    watch: bool,
}

impl WatchPrinter {
    pub fn new(plan: &ResolvePlan) -> WatchPrinter {
        WatchPrinter {
            target: plan.target.to_string(),
            output: plan.output,
            watch: plan.watch,
        }
    }

    /// Prints one event: tables and lines on stdout, notices on stderr in
    /// JSON mode (stdout then holds only JSON).
    pub fn print(&mut self, event: WatchEvent) -> Result<(), Failure> {
        let json = self.output == Output::Json;
        match event {
            WatchEvent::First {
                source,
                endpoints: set,
                notices,
            } => {
                if json && self.watch {
                    for endpoint in set {
                        self.change(&Change::Added(endpoint.clone()), None)?;
                    }
                } else if json {
                    for notice in notices {
                        eprintln!("grpclb: {notice}");
                    }
                    let text =
                        endpoints::endpoints_json(&self.target, source, set).map_err(|e| {
                            Failure::CannotRun(format!("cannot encode the endpoints: {e}"))
                        })?;
                    stdout(&text)?;
                } else {
                    let mut text = vec![
                        endpoints::headline(&self.target, source, set),
                        endpoints::endpoint_table(set),
                    ];
                    text.extend(notices.iter().map(|n| format!("note: {n}")));
                    stdout(&text.join("\n"))?;
                    if self.watch {
                        eprintln!("grpclb: watching for changes (Ctrl-C to stop)");
                    }
                }
            }
            WatchEvent::Change { change, before } => self.change(change, before)?,
            WatchEvent::Notice(notice) if json => eprintln!("grpclb: {notice}"),
            WatchEvent::Notice(notice) => stdout(&endpoints::notice_text(&notice.to_string()))?,
            WatchEvent::Ended(summary) if json => {
                eprintln!("grpclb: {}", endpoints::watch_summary(summary))
            }
            WatchEvent::Ended(summary) => stdout(&endpoints::watch_summary(summary))?,
        }
        Ok(())
    }

    fn change(
        &self,
        change: &Change,
        before: Option<&grpclb::resolve::Endpoint>,
    ) -> Result<(), Failure> {
        match self.output {
            Output::Json => {
                let line = endpoints::change_json(change)
                    .map_err(|e| Failure::CannotRun(format!("cannot encode a change: {e}")))?;
                stdout(&line)
            }
            Output::Table => stdout(&endpoints::change_text(change, before)),
        }
    }
}
