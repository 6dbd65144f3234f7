//! [`ServeOptions`]: the service's limits, their defaults and the ranges they must lie in.
use std::time::Duration;

/// The longest any time limit may be: one day. Longer values are almost certainly typos, and
/// some (`inf`, `1e30`) cannot even be represented as a [`Duration`].
pub const MAX_SECONDS: f64 = 86_400.0;
/// The largest accepted `max_body_bytes`: 1 GiB.
pub const MAX_BODY_BYTES: usize = 1 << 30;
/// The largest accepted `max_in_flight`: every running document holds one blocking thread and
/// tokio's blocking pool has 512.
pub const MAX_IN_FLIGHT: usize = 512;
/// The largest accepted `max_connections` (each holds a file descriptor).
pub const MAX_CONNECTIONS: usize = 65_536;
/// The largest accepted `max_batch`.
pub const MAX_BATCH: usize = 100_000;

/// Service limits.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Largest accepted request body (413 beyond it).
    pub max_body_bytes: usize,
    /// Longest a request may take once its body has arrived, waiting for a slot included
    /// (504 beyond it).
    pub timeout: Duration,
    /// Documents processed concurrently; a timed-out request keeps its slot until its
    /// pipeline work has really stopped.
    pub max_in_flight: usize,
    /// Most texts in one batch request.
    pub max_batch: usize,
    /// Longest wait for a complete request head, counted from the moment the server starts
    /// waiting for it (connection opened, or previous response sent on a keep-alive
    /// connection); the connection is closed beyond it.
    pub header_timeout: Duration,
    /// Longest wait for a complete request body, counted from the end of its head (408
    /// beyond it, then the connection is closed).
    pub body_timeout: Duration,
    /// A connection with no request being processed and no bytes moving either way for this
    /// long is closed (idle keep-alive connections, clients that stop reading a response).
    pub idle_timeout: Duration,
    /// Connections served at once; further clients wait in the listen backlog.
    pub max_connections: usize,
    /// On shutdown, how long in-flight requests may take to finish before the remaining
    /// connections are dropped.
    pub shutdown_grace: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            max_body_bytes: 1 << 20,
            timeout: Duration::from_secs(30),
            max_in_flight: 8,
            max_batch: 256,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(20),
            idle_timeout: Duration::from_secs(5),
            max_connections: 1024,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// A [`ServeOptions`] value outside its accepted range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{option} = {value} is out of range; accepted: {range}")]
pub struct OptionError {
    /// The option's name (as a `ServeOptions` field).
    pub option: &'static str,
    /// The rejected value, as text.
    pub value: String,
    /// The accepted range, e.g. `0 < seconds <= 86400`.
    pub range: String,
}

/// The accepted range of a time limit that must be positive, as text.
pub fn positive_seconds_range() -> String {
    format!("0 < seconds <= {MAX_SECONDS}")
}

/// The accepted range of a time limit that may be zero, as text.
pub fn seconds_range() -> String {
    format!("0 <= seconds <= {MAX_SECONDS}")
}

/// The accepted range `1..=max` of a count, as text.
pub fn count_range(max: usize) -> String {
    format!("1 <= n <= {max}")
}

impl ServeOptions {
    /// Checks every limit against its accepted range.
    pub fn validate(&self) -> Result<(), OptionError> {
        let max = Duration::from_secs_f64(MAX_SECONDS);
        let positive = [
            ("timeout", self.timeout),
            ("header_timeout", self.header_timeout),
            ("body_timeout", self.body_timeout),
            ("idle_timeout", self.idle_timeout),
        ];
        for (option, value) in positive {
            if value.is_zero() || value > max {
                return Err(OptionError {
                    option,
                    value: format!("{value:?}"),
                    range: positive_seconds_range(),
                });
            }
        }
        if self.shutdown_grace > max {
            return Err(OptionError {
                option: "shutdown_grace",
                value: format!("{:?}", self.shutdown_grace),
                range: seconds_range(),
            });
        }
        let counts = [
            ("max_body_bytes", self.max_body_bytes, MAX_BODY_BYTES),
            ("max_in_flight", self.max_in_flight, MAX_IN_FLIGHT),
            ("max_batch", self.max_batch, MAX_BATCH),
            ("max_connections", self.max_connections, MAX_CONNECTIONS),
        ];
        for (option, value, max) in counts {
            if value == 0 || value > max {
                return Err(OptionError {
                    option,
                    value: value.to_string(),
                    range: count_range(max),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_out_of_range_values_name_their_option() {
        assert_eq!(ServeOptions::default().validate(), Ok(()));
        let zero = ServeOptions {
            header_timeout: Duration::ZERO,
            ..ServeOptions::default()
        };
        assert_eq!(zero.validate().unwrap_err().option, "header_timeout");
        let huge = ServeOptions {
            max_in_flight: MAX_IN_FLIGHT + 1,
            ..ServeOptions::default()
        };
        let err = huge.validate().unwrap_err();
        assert_eq!(err.option, "max_in_flight");
        assert!(err.to_string().contains("1 <= n <= 512"), "{err}");
    }
}
