//! Work done under a lease in the store, renewed while it runs: a replica
//! that dies lets the work go within one lease, one that is only slow (a
//! paced post during a storm) keeps it.

use std::future::Future;
use std::time::Duration;

use super::StoreError;

/// How often a held lease is extended; leases last several of these.
pub(crate) const RENEW_EVERY: Duration = Duration::from_secs(2);

/// Runs `work`, calling `renew` every `RENEW_EVERY` until it is done.
pub(crate) async fn renewing<T, R, RF>(work: impl Future<Output = T>, renew: R) -> T
where
    R: Fn() -> RF,
    RF: Future<Output = Result<(), StoreError>>,
{
    tokio::pin!(work);
    let mut tick = tokio::time::interval(RENEW_EVERY);
    // The first tick is immediate; the lease was just taken.
    tick.tick().await;
    loop {
        tokio::select! {
            out = &mut work => return out,
            _ = tick.tick() => {
                if let Err(e) = renew().await {
                    // It runs out, and another replica may take the work.
                    tracing::warn!(error = %e, "lease not renewed");
                }
            }
        }
    }
}
