//! The CPU's compute threads. candle runs GEMMs on rayon's global pool and element-wise ops on
//! a pool of its own whose workers spin (25,000 pause instructions by default) before they
//! sleep. In training the two alternate op by op, so each pool's spinning workers take the
//! cores the other pool's work needs: on 2 cores (AMD EPYC, AVX-512) a kbert_medical training
//! step ran at 900 real tokens/s with the default spin and 1,211 with none (`zhishi bench train`,
//! benches/RESULTS.md).
use std::env;

/// The environment variable candle reads, once, for its element-wise pool's spin limit.
pub const SPIN_LIMIT_VAR: &str = "CANDLE_BARRIER_POOL_SPIN_LIMIT";

/// Makes candle's element-wise workers sleep as soon as their work is done, unless the user
/// set [`SPIN_LIMIT_VAR`]. Call at start-up, before the first tensor op and before other
/// threads exist (it sets an environment variable).
pub fn sleep_idle_workers() {
    if env::var_os(SPIN_LIMIT_VAR).is_none() {
        env::set_var(SPIN_LIMIT_VAR, "0");
    }
}

/// Uses `threads` compute threads (0: all cores): rayon's global pool (candle's GEMM takes its
/// thread count from `RAYON_NUM_THREADS`, set here too) and candle's element-wise pool. Call
/// before the first tensor op; a second call cannot resize pools already built.
pub fn use_threads(threads: usize) {
    if threads == 0 {
        return;
    }
    env::set_var("RAYON_NUM_THREADS", threads.to_string());
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .ok();
}
