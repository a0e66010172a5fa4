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
    #[command(subcommand)]
    command: Command,
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
    let filter = tracing_subscriber::EnvFilter::try_from_env("KASKADE_LOG").unwrap_or_else(|_| {
        let level = if matches!(args.command, Command::Serve(_)) { "info" } else { "warn" };
        tracing_subscriber::EnvFilter::new(level)
    });
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi).init();
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
