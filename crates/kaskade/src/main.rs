//! The `kaskade` binary: `serve` runs a node; the other subcommands are a
//! Kafka-protocol client (they work against Apache Kafka too).

mod cli;
mod serve;

use clap::Parser;

#[derive(Debug, Parser)]
#[command(name = "kaskade", version, about = "Kaskade: a Kafka-compatible event streaming platform")]
struct Cli {
    /// Broker(s) to talk to, host:port[,host:port...].
    #[arg(long, global = true, env = "KASKADE_BOOTSTRAP", default_value = "localhost:9092")]
    bootstrap_server: String,
    /// Log format on stderr: text (human-readable) or json (one JSON object
    /// per line).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Log levels, overall and per module, e.g. `info,kaskade_broker::group=debug`
    /// (overrides KASKADE_LOG and RUST_LOG, which take the same syntax).
    #[arg(long, global = true, value_name = "FILTER")]
    log_level: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Run a broker (single node: broker and controller in one process).
    Serve(serve::ServeArgs),
    #[command(flatten)]
    Client(cli::ClientCommand),
}

fn main() {
    let args = Cli::parse();
    // Logs go to stderr: `consume` writes records to stdout.
    let default_level = if matches!(args.command, Command::Serve(_)) { "info" } else { "warn" };
    let directives = args
        .log_level
        .clone()
        .or_else(|| std::env::var("KASKADE_LOG").ok())
        .or_else(|| std::env::var("RUST_LOG").ok())
        .filter(|d| !d.trim().is_empty())
        .unwrap_or_else(|| default_level.to_string());
    let filter = match tracing_subscriber::EnvFilter::try_new(&directives) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: invalid log level filter '{directives}': {e} (e.g. info,kaskade_broker::group=debug)");
            std::process::exit(2);
        }
    };
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match args.log_format {
        LogFormat::Json => logs.json().with_current_span(false).init(),
        LogFormat::Text => logs.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).init(),
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = runtime.block_on(async {
        match args.command {
            Command::Serve(a) => match serve::run(a).await {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    1
                }
            },
            Command::Client(cmd) => cli::run(cmd, &args.bootstrap_server).await.unwrap_or_else(|e| {
                eprintln!("error: {e:#}");
                1
            }),
        }
    });
    std::process::exit(code);
}
