//! Request rates per operator credential, configured per role: each credential of a
//! limited role may make `per_minute` calls a minute, in bursts of up to that many
//! (the generic cell rate algorithm of the `governor` crate, one bucket per
//! credential). A call over its rate is refused before it is read: 429
//! `rate_limited` with `Retry-After`. Roles without a limit are not limited;
//! parties are not either (their envelopes have the transport's own budgets).

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use mpc_events::Role;

use crate::auth::Principal;

/// One role's rate: calls per minute per credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub role: Role,
    pub per_minute: NonZeroU32,
}

impl std::str::FromStr for RateLimit {
    type Err = String;

    /// `ROLE=N`, e.g. `requester=600`.
    fn from_str(s: &str) -> Result<Self, String> {
        let (role, rate) = s
            .split_once('=')
            .ok_or_else(|| format!("expected ROLE=CALLS_PER_MINUTE, got {s:?}"))?;
        Ok(Self {
            role: role.parse().map_err(|e| format!("{e}"))?,
            per_minute: rate.parse().map_err(|_| {
                format!("calls per minute must be a positive integer, got {rate:?}")
            })?,
        })
    }
}

/// The limiters of every limited role.
pub struct RateLimits {
    limiters: HashMap<Role, DefaultKeyedRateLimiter<String>>,
    clock: DefaultClock,
}

impl RateLimits {
    /// Limits for the roles named; a role named twice keeps its last rate.
    pub fn new(limits: &[RateLimit]) -> Self {
        Self {
            limiters: limits
                .iter()
                .map(|l| (l.role, RateLimiter::keyed(Quota::per_minute(l.per_minute))))
                .collect(),
            clock: DefaultClock::default(),
        }
    }

    /// Counts one call by `principal`: `Ok`, or how long until it may call again.
    pub fn check(&self, principal: &Principal) -> Result<(), Duration> {
        let Some(limiter) = self.limiters.get(&principal.role) else {
            return Ok(());
        };
        limiter
            .check_key(&principal.credential.to_string())
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits")
            .field("roles", &self.limiters.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::CredentialRef;

    #[test]
    fn rates_parse_as_role_equals_calls_per_minute() {
        let limit: RateLimit = "requester=600".parse().unwrap();
        assert_eq!(limit.role, Role::Requester);
        assert_eq!(limit.per_minute.get(), 600);
        for bad in [
            "requester",
            "requester=0",
            "requester=-1",
            "root=5",
            "=5",
            "auditor=x",
        ] {
            assert!(bad.parse::<RateLimit>().is_err(), "{bad} parsed");
        }
    }

    #[test]
    fn each_credential_of_a_limited_role_has_its_own_budget() {
        let limits = RateLimits::new(&["requester=2".parse().unwrap()]);
        let key = |n: u128| Principal {
            credential: CredentialRef::Key(mpc_events::CredentialId::from_uuid(
                uuid::Uuid::from_u128(n),
            )),
            role: Role::Requester,
        };
        assert!(limits.check(&key(1)).is_ok());
        assert!(limits.check(&key(1)).is_ok());
        let wait = limits.check(&key(1)).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
        assert!(
            limits.check(&key(2)).is_ok(),
            "another credential has its own budget"
        );
        let auditor = Principal {
            credential: CredentialRef::Bootstrap,
            role: Role::Auditor,
        };
        for _ in 0..10 {
            assert!(
                limits.check(&auditor).is_ok(),
                "an unlimited role was limited"
            );
        }
    }
}
