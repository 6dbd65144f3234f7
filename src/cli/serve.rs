//! `zhishi serve`: the pipeline as an HTTP service (`POST /v1/process`, `GET /healthz`, a demo
//! page at `/`), stopping gracefully on Ctrl-C or SIGTERM.
//!
//! Every limit is checked when the flags are parsed: an out-of-range value (`--timeout inf`,
//! `--max-in-flight 0`) is a usage error naming the flag and its accepted range.
use std::net::SocketAddr;
use std::num::{ParseFloatError, ParseIntError};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use zhishi::pipeline::Pipeline;
use zhishi::serve::{self, ServeOptions};

/// After the server has stopped, how long pipeline work still running on blocking threads
/// (a document whose request was dropped at the shutdown deadline) may delay the exit.
const EXIT_WAIT: Duration = Duration::from_millis(500);

/// Arguments of `zhishi serve`.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// The pipeline TOML.
    pipeline: PathBuf,
    /// Address to listen on (port 0 picks a free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Largest request body in bytes (413 beyond it); 1 to 1073741824.
    #[arg(long, value_name = "BYTES", value_parser = body_bytes,
          default_value_t = ServeOptions::default().max_body_bytes)]
    max_body_bytes: usize,
    /// Request time limit in seconds, waiting for a worker included (504 beyond it);
    /// 0 < t <= 86400.
    #[arg(long, value_name = "SECONDS", value_parser = positive_seconds,
          default_value_t = ServeOptions::default().timeout.as_secs_f64())]
    timeout: f64,
    /// Documents processed at once; more wait for a slot; 1 to 512.
    #[arg(long, value_name = "N", value_parser = in_flight,
          default_value_t = ServeOptions::default().max_in_flight)]
    max_in_flight: usize,
    /// Seconds a client has to send a complete request head (also the longest wait for the
    /// next request on a keep-alive connection); the connection is closed beyond it;
    /// 0 < t <= 86400.
    #[arg(long, value_name = "SECONDS", value_parser = positive_seconds,
          default_value_t = ServeOptions::default().header_timeout.as_secs_f64())]
    header_timeout: f64,
    /// Seconds a client has to send a request body once its head has arrived (408 beyond
    /// it); 0 < t <= 86400.
    #[arg(long, value_name = "SECONDS", value_parser = positive_seconds,
          default_value_t = ServeOptions::default().body_timeout.as_secs_f64())]
    body_timeout: f64,
    /// Seconds a connection may stay open with no request being processed and no bytes
    /// moving; 0 < t <= 86400.
    #[arg(long, value_name = "SECONDS", value_parser = positive_seconds,
          default_value_t = ServeOptions::default().idle_timeout.as_secs_f64())]
    idle_timeout: f64,
    /// Connections served at once; more wait in the listen backlog; 1 to 65536.
    #[arg(long, value_name = "N", value_parser = connections,
          default_value_t = ServeOptions::default().max_connections)]
    max_connections: usize,
    /// On Ctrl-C or SIGTERM, seconds in-flight requests get to finish before the remaining
    /// connections are dropped; 0 <= t <= 86400.
    #[arg(long, value_name = "SECONDS", value_parser = seconds,
          default_value_t = ServeOptions::default().shutdown_grace.as_secs_f64())]
    shutdown_grace: f64,
    /// Override a pipeline TOML value: `--set dotted.key=value` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

/// A flag value that is not a number or lies outside the flag's range.
#[derive(Debug, thiserror::Error)]
enum FlagError {
    /// Not a decimal number of seconds.
    #[error("not a number of seconds; accepted: {range}")]
    NotSeconds {
        /// The parse failure.
        source: ParseFloatError,
        /// The accepted range.
        range: String,
    },
    /// Not a whole number.
    #[error("not a whole number; accepted: {range}")]
    NotCount {
        /// The parse failure.
        source: ParseIntError,
        /// The accepted range.
        range: String,
    },
    /// A number outside the range.
    #[error("out of range; accepted: {range}")]
    OutOfRange {
        /// The accepted range.
        range: String,
    },
}

/// Seconds with `0 < t <= MAX_SECONDS` (`nan`, `inf` and negatives fail).
fn positive_seconds(text: &str) -> Result<f64, FlagError> {
    seconds_in(text, false, serve::positive_seconds_range)
}

/// Seconds with `0 <= t <= MAX_SECONDS`.
fn seconds(text: &str) -> Result<f64, FlagError> {
    seconds_in(text, true, serve::seconds_range)
}

fn seconds_in(text: &str, zero_ok: bool, range: fn() -> String) -> Result<f64, FlagError> {
    let t: f64 = text
        .trim()
        .parse()
        .map_err(|source| FlagError::NotSeconds {
            source,
            range: range(),
        })?;
    let low_ok = if zero_ok { t >= 0.0 } else { t > 0.0 };
    // NaN fails both comparisons.
    if low_ok && t <= serve::MAX_SECONDS {
        Ok(t)
    } else {
        Err(FlagError::OutOfRange { range: range() })
    }
}

fn count_in(text: &str, max: usize) -> Result<usize, FlagError> {
    let range = || serve::count_range(max);
    let n: usize = text.trim().parse().map_err(|source| FlagError::NotCount {
        source,
        range: range(),
    })?;
    if (1..=max).contains(&n) {
        Ok(n)
    } else {
        Err(FlagError::OutOfRange { range: range() })
    }
}

fn body_bytes(text: &str) -> Result<usize, FlagError> {
    count_in(text, serve::MAX_BODY_BYTES)
}

fn in_flight(text: &str) -> Result<usize, FlagError> {
    count_in(text, serve::MAX_IN_FLIGHT)
}

fn connections(text: &str) -> Result<usize, FlagError> {
    count_in(text, serve::MAX_CONNECTIONS)
}

impl ServeArgs {
    /// The service limits the flags ask for (already range-checked by the parsers).
    fn options(&self) -> ServeOptions {
        ServeOptions {
            max_body_bytes: self.max_body_bytes,
            timeout: Duration::from_secs_f64(self.timeout),
            max_in_flight: self.max_in_flight,
            header_timeout: Duration::from_secs_f64(self.header_timeout),
            body_timeout: Duration::from_secs_f64(self.body_timeout),
            idle_timeout: Duration::from_secs_f64(self.idle_timeout),
            max_connections: self.max_connections,
            shutdown_grace: Duration::from_secs_f64(self.shutdown_grace),
            ..ServeOptions::default()
        }
    }
}

/// Runs `zhishi serve`.
pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let opts = args.options();
    opts.validate()?;
    let pipeline = Pipeline::from_toml_with(&args.pipeline, &args.overrides)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let served = runtime.block_on(serve::serve(
        pipeline,
        args.addr,
        opts,
        |addr| eprintln!("zhishi serve: listening on http://{addr}"),
        serve::shutdown_signal(),
    ));
    // Do not wait for documents still running on blocking threads after the grace period.
    runtime.shutdown_timeout(EXIT_WAIT);
    served?;
    eprintln!("zhishi serve: stopped");
    Ok(ExitCode::SUCCESS)
}
