//! The `agtmux` binary: parse the command line and dispatch. Everything else lives in the
//! library so tests and benchmarks drive the same code.
use clap::Parser;

fn main() {
    let cli = agtmux::cli::Cli::parse();
    std::process::exit(agtmux::cli::run(cli));
}
