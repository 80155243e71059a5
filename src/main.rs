//! The `grpclb` binary: parse the command line into a plan, run it with the
//! library, print what comes back, exit with the design's codes.

mod cli;
mod print;

use std::process::ExitCode;

use cli::Command;
use grpclb::Failure;
use grpclb::plan::Output;
use grpclb::report::{Report, Style};

#[tokio::main]
async fn main() -> ExitCode {
    // h2 and hyper open `tracing` spans around every frame; with no
    // dispatcher set, tracing's `log` feature (which a dependency turns on)
    // checks for a `log` logger at each span's every enter and exit. A
    // dispatcher that listens to nothing skips that: grpclb reports through
    // its own output, never through tracing (docs/performance.md).
    let _ = tracing::subscriber::set_global_default(tracing::subscriber::NoSubscriber::default());
    let cli = cli::parse();
    let style = print::style(cli.color);
    match dispatch(cli.command, &style).await {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            eprintln!("grpclb: {failure}");
            ExitCode::from(failure.exit_code())
        }
    }
}

async fn dispatch(command: Command, style: &Style) -> Result<u8, Failure> {
    match command {
        Command::Bench(args) => {
            let file = args.load.output_file.clone();
            let plan = args.plan()?;
            if let Some(warning) = plan
                .tls
                .as_ref()
                .and_then(|tls| tls.summary().warning.as_ref())
            {
                eprintln!("grpclb: WARNING: {warning}");
            }
            let reports = grpclb::bench::run(&plan).await?;
            finish(&reports, plan.output, style, file.as_deref())
        }
        Command::Resolve(args) => {
            let file = args.output_file.clone();
            let plan = args.plan()?;
            let mut printer = print::WatchPrinter::new(&plan, *style, file)?;
            grpclb::watch::run(&plan, &mut |event| printer.print(event)).await?;
            Ok(0)
        }
        Command::Serve(args) => {
            grpclb::serve::run(args.plan()?).await?;
            Ok(0)
        }
        Command::List(args) => discover(args.plan()?).await,
        Command::Describe(args) => discover(args.plan()?).await,
        Command::Register(args) => {
            grpclb::register::run(args.plan()?).await?;
            Ok(0)
        }
        Command::Merge(args) => {
            let plan = args.plan()?;
            let runs = grpclb::merge::run(&plan)?;
            let text = match plan.output {
                Output::Json => grpclb::merge::json(&runs)
                    .map_err(|e| Failure::CannotRun(format!("cannot encode the report: {e}")))?,
                Output::Table => grpclb::merge::tables(&runs, style),
            };
            print::stdout(&text)?;
            let outcome = grpclb::merge::exit_code(&runs);
            if let Some(message) = outcome.message {
                eprintln!("grpclb: {message}");
            }
            Ok(outcome.code)
        }
        Command::Demo(args) => {
            let file = args.load.output_file.clone();
            let plan = args.plan()?;
            let table = plan.output == Output::Table;
            let announce = |header: String| {
                if table {
                    print::stdout(&grpclb::report::wrap(&header, style, 2))?;
                }
                Ok(())
            };
            let demo = grpclb::demo::run(&plan, announce).await?;
            let code = finish(&demo.reports, plan.output, style, file.as_deref())?;
            if table {
                print::stdout(&format!("\n{}", demo.explanation(style)))?;
            }
            Ok(code)
        }
        Command::Completions(args) => {
            print::raw(&args.script())?;
            Ok(0)
        }
        Command::Man(args) => {
            print::raw(&args.page()?)?;
            Ok(0)
        }
    }
}

/// Prints the reports (and writes `--output-file`) and turns them into an
/// exit code.
fn finish(
    reports: &[Report],
    output: Output,
    style: &Style,
    file: Option<&std::path::Path>,
) -> Result<u8, Failure> {
    print::reports(reports, output, style, file)?;
    let outcome = grpclb::bench::exit_code(reports);
    if let Some(message) = outcome.message {
        eprintln!("grpclb: {message}");
    }
    Ok(outcome.code)
}

/// Runs `list` or `describe` and prints what the descriptors say.
async fn discover(plan: grpclb::plan::DiscoverPlan) -> Result<u8, Failure> {
    let symbol = plan.symbol.as_deref();
    let catalog = grpclb::method::Catalog::discover(
        plan.target.as_ref(),
        &plan.resolve,
        &plan.source,
        symbol,
    )
    .await?;
    let view = catalog.view(symbol)?;
    let text = match plan.output {
        Output::Json => serde_json::to_string_pretty(&view)
            .map_err(|e| Failure::CannotRun(format!("cannot encode the result: {e}")))?,
        Output::Table => view.text(),
    };
    print::stdout(&text)?;
    Ok(0)
}
