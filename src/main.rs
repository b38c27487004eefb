//! The `pixgate` command: thin. Parse the command line, load the configuration, run.

use clap::{Parser, Subcommand};
use pixgate::config::Config;
use std::path::PathBuf;
use std::process::ExitCode;

/// An image-optimizing reverse proxy.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Configuration file (YAML). Without it, the embedded config/pixgate.yaml is used.
    #[arg(short, long, global = true)]
    config: Option<PathBuf>,
    /// Take the listening sockets from a running pixgate (it must get SIGQUIT), instead of
    /// binding them: a binary or configuration upgrade without refused connections.
    #[arg(long, global = true)]
    upgrade: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the proxy (the default).
    Run,
    /// Validate a configuration file and exit (0 = valid, 2 = invalid).
    CheckConfig {
        /// The file to check (defaults to --config, then the embedded default).
        file: Option<PathBuf>,
    },
    /// Print the embedded default configuration.
    DefaultConfig,
}

fn load(path: Option<&PathBuf>) -> Result<Config, String> {
    match path {
        Some(p) => Config::load(p).map_err(|e| e.to_string()),
        None => Config::embedded_default().map_err(|e| e.to_string()),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PIXGATE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli.command.unwrap_or(Command::Run) {
        Command::DefaultConfig => {
            print!("{}", pixgate::config::DEFAULT_YAML);
            ExitCode::SUCCESS
        }
        Command::CheckConfig { file } => match load(file.as_ref().or(cli.config.as_ref())) {
            Ok(cfg) => match &cfg.rules.dir {
                Some(dir) => match pixgate::rules::RuleSet::load_dir(dir) {
                    Ok(set) => {
                        println!("configuration OK, {} rules", set.len());
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("{e}");
                        ExitCode::from(2)
                    }
                },
                None => {
                    println!("configuration OK");
                    ExitCode::SUCCESS
                }
            },
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(2)
            }
        },
        Command::Run => {
            let cfg = match load(cli.config.as_ref()) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
            };
            match pixgate::server::run(cfg, cli.upgrade) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("pixgate: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
