//! The little the party core needs from its async runtime: a monotonic clock, the
//! wall clock, timers, and somewhere to run CPU-heavy protocol steps.
//!
//! With feature `native` (default) these are tokio's: its timer, and its blocking
//! pool for protocol steps, off the async workers of the multi-thread runtime.
//! Without it they come from sources that also work in a browser
//! (`wasm32-unknown-unknown`): `web-time` for the clocks, `futures-timer` for timers,
//! and protocol steps run inline on the caller's task. The wall clock is `web-time`
//! everywhere (the standard library's own clock on native targets).

use std::future::Future;
use std::time::Duration;

/// A timer ran out before the future it guarded finished.
#[derive(Debug)]
pub(crate) struct Elapsed;

#[cfg(feature = "native")]
pub(crate) use tokio::time::{Instant, sleep};
#[cfg(not(feature = "native"))]
pub(crate) use web_time::Instant;

/// `future`'s output, or [`Elapsed`] if `after` passes first.
#[cfg(feature = "native")]
pub(crate) async fn timeout<F: Future>(after: Duration, future: F) -> Result<F::Output, Elapsed> {
    tokio::time::timeout(after, future)
        .await
        .map_err(|_| Elapsed)
}

/// `future`'s output, or [`Elapsed`] if `after` passes first.
#[cfg(not(feature = "native"))]
pub(crate) async fn timeout<F: Future>(after: Duration, future: F) -> Result<F::Output, Elapsed> {
    use futures::future::{Either, select};
    match select(std::pin::pin!(future), futures_timer::Delay::new(after)).await {
        Either::Left((output, _)) => Ok(output),
        Either::Right(_) => Err(Elapsed),
    }
}

/// Waits `pause`.
#[cfg(not(feature = "native"))]
pub(crate) async fn sleep(pause: Duration) {
    futures_timer::Delay::new(pause).await;
}

/// Runs the CPU-heavy `work` on tokio's blocking pool; an error if the task failed
/// (it panicked or the runtime is shutting down).
#[cfg(feature = "native")]
pub(crate) async fn compute<R: Send + 'static>(
    work: impl FnOnce() -> R + Send + 'static,
) -> Result<R, String> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| e.to_string())
}

/// Runs the CPU-heavy `work` inline: a browser has no blocking pool.
#[cfg(not(feature = "native"))]
pub(crate) async fn compute<R: Send + 'static>(
    work: impl FnOnce() -> R + Send + 'static,
) -> Result<R, String> {
    Ok(work())
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn unix_millis() -> i64 {
    web_time::SystemTime::now()
        .duration_since(web_time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
