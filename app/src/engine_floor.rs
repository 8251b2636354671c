//! The engine floor of `mpc bench`: every party's [`Protocol`] state machine in this
//! process, driven on one thread by [`drive`] (`mpc_engine::testing`, the engine's one
//! in-memory driver: messages handed over in memory, FIFO):
//! no transport, no store, no envelope crypto; and the engine's CPU-bound signing
//! ceiling (one signing loop per thread).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mpc_crypto::verify_signature;
use mpc_engine::testing::{DriveError, Run, RunStats, drive, idx};
use mpc_engine::{
    Dkls23Engine, EngineError, KeyShare, KeygenParams, PartyIndex, SignParams, ThresholdEngine,
};
use mpc_events::MessageHash;

/// Why an in-memory run failed.
#[derive(Debug, thiserror::Error)]
pub enum FloorError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Run(#[from] DriveError),
    #[error("no shares")]
    NoShares,
    #[error("engine signature does not verify")]
    Unverified,
    #[error("ceiling thread panicked")]
    Panicked,
}

pub fn engine_keygen(t: u8, n: u8) -> Result<Run<KeyShare>, FloorError> {
    let execution_id: [u8; 32] = rand::random();
    let machines = (1..=n)
        .map(|i| {
            let params = KeygenParams {
                execution_id,
                threshold: t,
                parties: n,
                me: idx(i),
            };
            Ok((idx(i), Dkls23Engine.keygen(params)?))
        })
        .collect::<Result<Vec<_>, FloorError>>()?;
    Ok(drive(machines)?)
}

/// Signs a random hash with the first `t` shares; checks the signature. Never
/// inlined, so a profiler can collect just this (`--toggle-collect=*engine_sign*`).
#[inline(never)]
pub fn engine_sign(shares: &[KeyShare], t: u8) -> Result<RunStats, FloorError> {
    let hash = MessageHash::from_bytes(rand::random());
    let signers: Vec<PartyIndex> = shares.iter().take(t.into()).map(|s| s.index).collect();
    let params = SignParams {
        execution_id: rand::random(),
        signers: signers.clone(),
        message_hash: hash,
    };
    let machines = shares
        .iter()
        .take(t.into())
        .map(|share| Ok((share.index, Dkls23Engine.sign(share, params.clone())?)))
        .collect::<Result<Vec<_>, FloorError>>()?;
    let run = drive(machines)?;
    let public_key = shares.first().ok_or(FloorError::NoShares)?.public_key;
    if !run
        .outputs
        .iter()
        .all(|s| verify_signature(&public_key, &hash, s))
    {
        return Err(FloorError::Unverified);
    }
    Ok(run.stats)
}

/// Signatures per second with `threads` OS threads each signing back to back.
pub async fn engine_ceiling(
    shares: Vec<KeyShare>,
    threads: usize,
    duration: Duration,
) -> Result<f64, FloorError> {
    let shares = Arc::new(shares);
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (shares, stop, done) = (shares.clone(), stop.clone(), done.clone());
            std::thread::spawn(move || -> Result<(), FloorError> {
                while !stop.load(Ordering::Relaxed) {
                    engine_sign(&shares, 2)?;
                    done.fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            })
        })
        .collect();
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.join().map_err(|_| FloorError::Panicked)??;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}
