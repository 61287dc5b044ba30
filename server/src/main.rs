//! `vouch`: signed compliance evidence from a managed-database platform's records.
//!
//! Exit codes, for scripts:
//! - 0: success (`verify`: the packet is authentic)
//! - 1: a negative answer (`verify`: the packet does not verify; `frameworks
//!   check`: the files have problems; `frameworks test`: a case fails or the
//!   coverage rule is not met)
//! - 2: the command line is wrong
//! - 3: an input could not be read or is malformed (records, key, packet, keys document)

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use vouch::cli::{authoring, export, import, keys, log, offline, series, serve};

/// The `vouch` command allocates with mimalloc: evaluation makes many
/// small, short-lived allocations on several threads, where glibc's
/// allocator took a third of the time (server/README.md, "The
/// allocator"). The in-process benchmarks `generate` and `render` set it
/// too; the tests keep the system allocator (the fuzz test caps it).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// vouch turns a managed-database platform's records into signed, auditor-grade compliance evidence.
#[derive(Parser, Debug)]
#[command(name = "vouch", version, after_help = AFTER_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

const AFTER_HELP: &str = "\
Try it offline:
  vouch keys generate --out key.pem
  vouch keys public --key key.pem > keys.json
  vouch generate --framework soc2 --records examples/records/seed-only.json \\
      --key key.pem --out packet.json
  vouch verify packet.json --keys keys.json

Exit codes: 0 success; 1 verification failed or framework problems found;
2 bad command line; 3 unreadable or malformed input.";

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the HTTP server (`--demo` for a ready-made demo on 127.0.0.1:8080).
    Serve(serve::ServeArgs),
    /// Import a batch of platform records (organizations, users, services...) into the database.
    Import(import::ImportArgs),
    /// Evaluate a framework on a records file and print the signed packet (offline).
    Generate(offline::GenerateArgs),
    /// Verify a packet (the output of `generate` or a server download) against published keys.
    Verify(offline::VerifyArgs),
    /// Verify a series of packets: each one, their hash links, and that no period is missing.
    VerifySeries(series::VerifySeriesArgs),
    /// What changed between two packets, control by control (`--fail-on regression` for CI).
    Diff(series::DiffArgs),
    /// Recompute a packet from its records, frameworks and plugins and compare, byte for byte.
    Reproduce(offline::ReproduceArgs),
    /// A packet as in-toto/DSSE, a Sigstore bundle or OSCAL assessment-results (offline).
    Export(export::ExportArgs),
    /// Signing keys: create, publish, rotate, retire, revoke, list.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Framework authoring: check, test, explain and diff framework YAML.
    #[command(subcommand)]
    Frameworks(FrameworksCommand),
    /// Monitor a server's transparency log of packets and key events.
    #[command(subcommand)]
    Log(LogCommand),
    /// Validate WebAssembly check plugins.
    #[command(subcommand)]
    Plugins(PluginsCommand),
}

#[derive(Subcommand, Debug)]
enum KeysCommand {
    /// Write a new Ed25519 signing key (PKCS#8 PEM, mode 0600) and print its key_id.
    Generate(offline::KeysGenerateArgs),
    /// Print the keys document (as the server publishes it) for a key file, for offline verification.
    Public(offline::KeysPublicArgs),
    /// Replace the server's signing key with a new one; the old key is retired and stays published.
    Rotate(keys::RotateArgs),
    /// Retire a key: it stays published and verifies packets generated before now.
    Retire(keys::MarkArgs),
    /// Revoke a compromised key: none of its packets verify any more, or
    /// (with --compromised-at) none the transparency log got after that time.
    Revoke(keys::RevokeArgs),
    /// List the key history in the database.
    List(keys::ListArgs),
}

#[derive(Subcommand, Debug)]
enum LogCommand {
    /// Check the log's signed checkpoint, that it only grew since the last run, and every new entry.
    Verify(log::LogVerifyArgs),
}

#[derive(Subcommand, Debug)]
enum FrameworksCommand {
    /// Check framework YAML files and report every problem with file:line:column.
    Check(FrameworksCheckArgs),
    /// Run the cases (records in, status and findings out) and the coverage rule.
    Test(authoring::TestArgs),
    /// Why a control came out as it did on a records document: paths, scope, checks, status.
    Explain(authoring::ExplainArgs),
    /// What an edit of the frameworks would change, control by control, on records documents.
    Diff(authoring::DiffArgs),
}

#[derive(Args, Debug)]
struct FrameworksCheckArgs {
    /// Directory of `*.yaml` framework files [default: $VOUCH_FRAMEWORKS_DIR, else the built-in frameworks]
    dir: Option<PathBuf>,
    /// Directory of the plugins (`NAME.wasm`) the frameworks reference.
    #[arg(long, value_name = "DIR", env = "VOUCH_PLUGINS_DIR")]
    plugins_dir: Option<PathBuf>,
    /// Records document the frameworks' paths are tried on (with the records
    /// of every case), to warn of paths that select nothing [default: the
    /// built-in examples/records]
    #[arg(long, value_name = "FILE")]
    records: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum PluginsCommand {
    /// Check a plugin (exports, ABI version, imports) and print the sha256 to pin in framework YAML.
    Check(offline::PluginsCheckArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Serve(_)) {
        // A command whose reader goes away (`vouch verify ... | head -1`)
        // ends as other Unix tools end, by SIGPIPE, instead of failing the
        // write (a panic in println!). The server keeps Rust's default
        // (ignored): a client that hangs up is an error on its connection.
        sigpipe::reset();
    }
    let result = match cli.command {
        Command::Serve(a) => serve::serve(a),
        Command::Import(a) => import::import(a),
        Command::Generate(a) => offline::generate(a),
        Command::Verify(a) => offline::verify(a),
        Command::Reproduce(a) => offline::reproduce(a),
        Command::VerifySeries(a) => series::verify_series(a),
        Command::Diff(a) => series::diff(a),
        Command::Export(a) => export::export(a),
        Command::Keys(KeysCommand::Generate(a)) => offline::keys_generate(a),
        Command::Keys(KeysCommand::Public(a)) => offline::keys_public(a),
        Command::Keys(KeysCommand::Rotate(a)) => keys::keys_rotate(a),
        Command::Keys(KeysCommand::Retire(a)) => keys::keys_retire(a),
        Command::Keys(KeysCommand::Revoke(a)) => keys::keys_revoke(a),
        Command::Keys(KeysCommand::List(a)) => keys::keys_list(a),
        Command::Frameworks(FrameworksCommand::Check(a)) => {
            offline::frameworks_check(a.dir, a.plugins_dir, a.records)
        }
        Command::Frameworks(FrameworksCommand::Test(a)) => authoring::test(a),
        Command::Frameworks(FrameworksCommand::Explain(a)) => authoring::explain_control(a),
        Command::Frameworks(FrameworksCommand::Diff(a)) => authoring::diff(a),
        Command::Plugins(PluginsCommand::Check(a)) => offline::plugins_check(a),
        Command::Log(LogCommand::Verify(a)) => log::log_verify(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("error: {:#}", f.error);
            ExitCode::from(f.code)
        }
    }
}
