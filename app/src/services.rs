//! Building the application services over one event store and clock: the session
//! [`Coordinator`], the account service ([`Accounts`]) and the approval service
//! ([`Approvals`]) over that coordinator, the operators' API keys ([`Operators`]), with the join tokens of the caller's
//! choice (the gateway's JWTs in a coordinator process, opaque random tokens in an
//! in-process stack).

use std::sync::Arc;

use mpc_actors::{Accounts, Approvals, Clock, Coordinator, Operators, TokenIssuer};
use mpc_gateway::auth::JwtJoinTokens;
use mpc_gateway::{Auth, GatewayServices};
use mpc_store::EventStore;
use mpc_transport::Transport;

/// The application services of one coordinator, sharing a store and a clock.
#[derive(Clone)]
pub struct Services {
    pub store: Arc<dyn EventStore>,
    pub coordinator: Arc<Coordinator>,
    pub accounts: Arc<Accounts>,
    pub approvals: Arc<Approvals>,
    pub operators: Arc<Operators>,
}

impl Services {
    /// Services whose coordinator issues opaque random join tokens (in-process
    /// callers hand them straight to their parties).
    pub fn new(store: Arc<dyn EventStore>, clock: Arc<dyn Clock>) -> Self {
        let coordinator = Arc::new(Coordinator::new(store.clone(), clock.clone()));
        Self::over(store, clock, coordinator)
    }

    /// Services whose coordinator issues join tokens from `issuer`.
    pub fn with_token_issuer(
        store: Arc<dyn EventStore>,
        clock: Arc<dyn Clock>,
        issuer: Arc<dyn TokenIssuer>,
    ) -> Self {
        let coordinator = Arc::new(Coordinator::with_token_issuer(
            store.clone(),
            clock.clone(),
            issuer,
        ));
        Self::over(store, clock, coordinator)
    }

    /// Services behind the gateway whose credentials are `auth`: join tokens are its
    /// JWTs.
    pub fn for_gateway(
        store: Arc<dyn EventStore>,
        clock: Arc<dyn Clock>,
        auth: &Arc<Auth>,
    ) -> Self {
        Self::with_token_issuer(store, clock, Arc::new(JwtJoinTokens(auth.clone())))
    }

    fn over(
        store: Arc<dyn EventStore>,
        clock: Arc<dyn Clock>,
        coordinator: Arc<Coordinator>,
    ) -> Self {
        Self {
            accounts: Arc::new(Accounts::new(
                store.clone(),
                clock.clone(),
                coordinator.clone(),
            )),
            approvals: Arc::new(Approvals::new(
                store.clone(),
                clock.clone(),
                coordinator.clone(),
            )),
            operators: Arc::new(Operators::new(store.clone(), clock)),
            coordinator,
            store,
        }
    }

    /// What the gateway serves: these services, `transport` for envelopes and
    /// `auth` for credentials (the one these services were built
    /// [`for_gateway`](Self::for_gateway) with).
    pub fn gateway(&self, transport: Arc<dyn Transport>, auth: Arc<Auth>) -> GatewayServices {
        GatewayServices {
            coordinator: self.coordinator.clone(),
            accounts: self.accounts.clone(),
            approvals: self.approvals.clone(),
            transport,
            store: self.store.clone(),
            operators: self.operators.clone(),
            auth,
        }
    }
}
