//! `zhishi serve`: the pipeline as an HTTP service (`POST /v1/process`, `GET /healthz`, a demo
//! page at `/`), stopping gracefully on Ctrl-C or SIGTERM.
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use zhishi::pipeline::Pipeline;
use zhishi::serve::{self, ServeOptions};

/// Arguments of `zhishi serve`.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// The pipeline TOML.
    pipeline: PathBuf,
    /// Address to listen on (port 0 picks a free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Largest request body in bytes.
    #[arg(long, default_value_t = ServeOptions::default().max_body_bytes)]
    max_body_bytes: usize,
    /// Request time limit in seconds (waiting for a worker included).
    #[arg(long, default_value_t = ServeOptions::default().timeout.as_secs_f64())]
    timeout: f64,
    /// Requests processed at once; more wait for a slot.
    #[arg(long, default_value_t = ServeOptions::default().max_in_flight)]
    max_in_flight: usize,
    /// Override a pipeline TOML value: `--set dotted.key=value` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

/// Runs `zhishi serve`.
pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let pipeline = Pipeline::from_toml_with(&args.pipeline, &args.overrides)?;
    let opts = ServeOptions {
        max_body_bytes: args.max_body_bytes,
        timeout: Duration::from_secs_f64(args.timeout.max(0.001)),
        max_in_flight: args.max_in_flight.max(1),
        ..ServeOptions::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve::serve(
        pipeline,
        args.addr,
        opts,
        |addr| eprintln!("zhishi serve: listening on http://{addr}"),
        serve::shutdown_signal(),
    ))?;
    eprintln!("zhishi serve: stopped");
    Ok(ExitCode::SUCCESS)
}
