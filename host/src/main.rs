//! The `loggerhub` binary: parses the command line and hands off to the
//! server or the CLI client.

use clap::{Parser, Subcommand};
use loggerhub::config::{Secrets, ServeArgs};

mod cli;

// glibc malloc trims the heap after every large batch (DESIGN §8).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "loggerhub", version, about = "Multi-tenant log platform")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run LoggerHub's services (all of them unless --role says otherwise).
    Serve(Box<ServeArgs>),
    #[command(flatten)]
    Client(cli::ClientCommand),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    loggerhub::telemetry::init_tracing();
    match Cli::parse().command {
        Command::Serve(args) => {
            let config = (*args).check(Secrets::from_env())?;
            loggerhub::server::serve(config).await
        }
        Command::Client(c) => c.run().await,
    }
}
