//! The `keyward` binary: parse the command line and run it.

use std::process::ExitCode;

fn main() -> ExitCode {
    // Before parsing: clap reads the variables, and `.env` supplies those not set.
    dotenvy::dotenv().ok();
    let cli = keyward::cli::Cli::parse_with_env();
    let mut logger = env_logger::Builder::new();
    logger.parse_filters(&cli.log_filter);
    // env_logger's own colour switch keeps working (it is no configuration of Keyward's).
    if let Ok(style) = std::env::var("RUST_LOG_STYLE") {
        logger.parse_write_style(&style);
    }
    logger.init();
    match keyward::commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // `{:#}`: each context, then its cause, on one line.
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
