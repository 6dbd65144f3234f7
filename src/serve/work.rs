//! Pipeline work under a concurrency limit, with honest accounting.
//!
//! A request waits for one of `max_in_flight` slots, then runs the pipeline on a blocking
//! thread. The slot (a semaphore permit) moves into that thread and is released only when the
//! work has really ended, so a request that timed out cannot free its slot while its documents
//! are still being processed. A request abandoned while waiting gives up its place in the queue
//! (the semaphore drops the waiter); one abandoned while running asks its work to stop, which
//! happens at the next chunk boundary of a batch (a single document runs to its end: stages
//! offer no cancellation point inside a document).
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::doc::Document;
use crate::pipeline::{Pipeline, PipelineError};

/// Documents run together between two cancellation checks.
const CHUNK: usize = 16;

/// Why a request's documents were not processed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WorkError {
    /// The slots were closed (the service is stopping).
    #[error("shutting down")]
    Closed,
    /// A stage failed.
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    /// The request was abandoned and its work stopped early.
    #[error("cancelled")]
    Cancelled,
    /// The blocking worker panicked or was aborted.
    #[error("worker failed")]
    Worker(#[source] tokio::task::JoinError),
}

/// A snapshot of the slot accounting.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub(crate) struct WorkStats {
    /// Pipelines running right now.
    pub in_flight: usize,
    /// Most pipelines ever running at once since start.
    pub in_flight_peak: usize,
    /// The limit.
    pub max_in_flight: usize,
}

/// The pipeline behind a fixed number of slots.
pub(crate) struct Workers {
    pipeline: Pipeline,
    slots: Arc<Semaphore>,
    max_in_flight: usize,
    counters: Arc<Counters>,
}

#[derive(Default)]
struct Counters {
    running: AtomicUsize,
    peak: AtomicUsize,
}

/// Counts one running pipeline while alive.
struct Running(Arc<Counters>);

impl Running {
    fn enter(counters: Arc<Counters>) -> Self {
        let now = counters.running.fetch_add(1, Ordering::SeqCst) + 1;
        counters.peak.fetch_max(now, Ordering::SeqCst);
        Running(counters)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Raises its flag when dropped unless disarmed: dropping a request's future (its deadline
/// passed, or its connection went away) tells the blocking work to stop.
struct CancelOnDrop {
    flag: Arc<AtomicBool>,
    armed: bool,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if self.armed {
            self.flag.store(true, Ordering::SeqCst);
        }
    }
}

impl Workers {
    /// `max_in_flight` slots (at least one) over `pipeline`.
    pub(crate) fn new(pipeline: Pipeline, max_in_flight: usize) -> Self {
        let max_in_flight = max_in_flight.max(1);
        Self {
            pipeline,
            slots: Arc::new(Semaphore::new(max_in_flight)),
            max_in_flight,
            counters: Arc::default(),
        }
    }

    /// The pipeline served.
    pub(crate) fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// The current accounting.
    pub(crate) fn stats(&self) -> WorkStats {
        WorkStats {
            in_flight: self.counters.running.load(Ordering::SeqCst),
            in_flight_peak: self.counters.peak.load(Ordering::SeqCst),
            max_in_flight: self.max_in_flight,
        }
    }

    /// Waits for a slot, then processes `docs` on a blocking thread. Dropping the returned
    /// future gives up the wait, or asks running work to stop; either way the slot stays
    /// taken until the work has ended.
    pub(crate) async fn run(
        &self,
        docs: Vec<Document>,
        explain: bool,
    ) -> Result<Vec<Document>, WorkError> {
        let permit = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| WorkError::Closed)?;
        let mut cancel = CancelOnDrop {
            flag: Arc::new(AtomicBool::new(false)),
            armed: true,
        };
        let flag = cancel.flag.clone();
        let pipeline = self.pipeline.clone();
        let counters = self.counters.clone();
        let handle = tokio::task::spawn_blocking(move || {
            // Dropped in reverse order: the count falls before the slot is released.
            let _permit = permit;
            let _running = Running::enter(counters);
            process_in_chunks(&pipeline, docs, explain, &flag)
        });
        let result = handle.await;
        cancel.armed = false;
        result.map_err(WorkError::Worker)?
    }
}

/// Runs the pipeline over `docs` a chunk at a time (with `explain`, adding evidence), stopping
/// early once `cancelled` is raised.
fn process_in_chunks(
    pipeline: &Pipeline,
    mut docs: Vec<Document>,
    explain: bool,
    cancelled: &AtomicBool,
) -> Result<Vec<Document>, WorkError> {
    for chunk in docs.chunks_mut(CHUNK) {
        if cancelled.load(Ordering::SeqCst) {
            return Err(WorkError::Cancelled);
        }
        pipeline.run_with(chunk, explain)?;
    }
    Ok(docs)
}
