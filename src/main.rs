//! The `agtmux` binary: parse the command line and dispatch. Everything else lives in the
//! library so tests and benchmarks drive the same code.
use clap::Parser;

fn main() {
    // `agtmux --version` prints `agtmux <version>`: the plugin checks a binary with it.
    let mut args = std::env::args_os().skip(1);
    if let (Some(a), None) = (args.next(), args.next())
        && (a == "--version" || a == "-V")
    {
        println!("agtmux {}", agtmux::daemon::handover::version());
        return;
    }
    let cli = agtmux::cli::Cli::parse();
    std::process::exit(agtmux::cli::run(cli).code());
}
