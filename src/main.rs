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

/// Logging for the commands that do not serve: diagnostics only, no access log.
fn quiet() -> pixgate::config::LogConfig {
    let mut l = pixgate::config::LogConfig::default();
    l.access.enabled = false;
    l
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Run);
    if !matches!(command, Command::Run) {
        let _ = pixgate::telemetry::access::install(&quiet());
    }
    match command {
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
            keep_transform_buffers();
            let cfg = match load(cli.config.as_ref()) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
            };
            // Held until the process ends: dropping it flushes the access log.
            let _flush = match pixgate::telemetry::access::install(&cfg.log) {
                Ok(f) => f,
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

/// glibc's allocator, tuned for transforms: decoded images of a few MiB are taken from the heap
/// and kept there when freed (up to 32 MiB at its top), instead of being mapped and unmapped
/// each time. The page faults and zeroing of fresh mappings were 8 % of a JPEG transform's
/// profile; with this a 4 MP 4:4:4 JPEG fitted into 512 px costs 13 % less CPU. And one arena
/// per core rather than glibc's eight, so that those kept buffers are not multiplied by
/// threads: in a 64-connection soak RSS then stayed at 332–345 MiB over ten minutes where it
/// rose from 396 to 436 MiB (docs/benchmarks.md). `MALLOC_MMAP_THRESHOLD_`,
/// `MALLOC_TRIM_THRESHOLD_` and `MALLOC_ARENA_MAX` in the environment still decide when set.
fn keep_transform_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get().max(2));
        let arenas = i32::try_from(cores).unwrap_or(i32::MAX);
        for (var, param, value) in [
            ("MALLOC_MMAP_THRESHOLD_", libc::M_MMAP_THRESHOLD, 32 << 20),
            ("MALLOC_TRIM_THRESHOLD_", libc::M_TRIM_THRESHOLD, 32 << 20),
            ("MALLOC_ARENA_MAX", libc::M_ARENA_MAX, arenas),
        ] {
            if std::env::var_os(var).is_none() {
                // SAFETY: mallopt only sets a tunable of the allocator; called before any
                // thread is started.
                unsafe {
                    libc::mallopt(param, value);
                }
            }
        }
    }
}
