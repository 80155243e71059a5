//! The `grpclb` binary: parse, dispatch, exit with the design's codes.

use std::process::ExitCode;

use clap::Parser;

use grpclb::cli::{Cli, Command, Failure, Output};
use grpclb::commands;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli.command).await {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            eprintln!("grpclb: {failure}");
            ExitCode::from(failure.exit_code())
        }
    }
}

async fn dispatch(command: Command) -> Result<u8, Failure> {
    match command {
        Command::Bench(args) => {
            let plan = args.plan()?;
            let reports = commands::bench::run(&plan).await?;
            finish(&reports, plan.output)
        }
        Command::Resolve(args) => commands::resolve::run(&args.plan()?).await,
        Command::Serve(args) => {
            commands::serve::run(args.plan()?).await?;
            Ok(0)
        }
        Command::List(args) => grpclb::cli::discover(args.plan()?).await,
        Command::Describe(args) => grpclb::cli::discover(args.plan()?).await,
        Command::Register(args) => {
            commands::register::run(args.plan()?).await?;
            Ok(0)
        }
        Command::Demo(args) => {
            let plan = args.plan()?;
            let reports = commands::demo::run(&plan).await?;
            let code = finish(&reports, plan.output)?;
            if plan.output == Output::Table {
                commands::bench::write_stdout(&format!(
                    "\n{}",
                    commands::demo::explanation(&reports)
                ))?;
            }
            Ok(code)
        }
    }
}

/// Prints the reports and turns them into an exit code.
fn finish(reports: &[grpclb::report::Report], output: Output) -> Result<u8, Failure> {
    commands::bench::print(reports, output)?;
    let (code, message) = commands::bench::exit_code(reports);
    if let Some(message) = message {
        eprintln!("grpclb: {message}");
    }
    Ok(code)
}
