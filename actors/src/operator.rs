//! The operator-credential registry: one `operators-registry` stream of API-key
//! digests, names and roles, as pure functions, and [`Operators`], the service that
//! adds, revokes and reads them.
//!
//! Reads catch up with the stream on every call ([`Operators::current`]: one read
//! of the events appended since the last call), so a key revoked through one
//! gateway replica is refused by every other at its next request.

use std::collections::BTreeMap;
use std::sync::Arc;

use mpc_events::{
    CredentialId, CredentialName, OperatorCommand, OperatorError, OperatorEvent, REGISTRY_ID, Role,
    Timestamp, stream,
};
use mpc_schemas::{Encoded, SchemaError};
use mpc_store::{EventStore, StreamName};

use crate::aggregate::{Aggregate, Clock, CommandMeta};
use crate::registry::{ActorError, ActorRegistry};

/// One credential as the registry knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub id: CredentialId,
    pub name: CredentialName,
    pub role: Role,
    /// SHA-256 of the key.
    pub digest: [u8; 32],
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

/// Every credential ever added, by id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OperatorState {
    pub credentials: BTreeMap<CredentialId, Credential>,
}

impl OperatorState {
    /// The credential `id` if it exists and is not revoked.
    pub fn active(&self, id: CredentialId) -> Option<&Credential> {
        self.credentials.get(&id).filter(|c| c.revoked_at.is_none())
    }
}

/// Marker type implementing [`Aggregate`] for the registry stream.
pub struct OperatorRegistry;

impl Aggregate for OperatorRegistry {
    type State = OperatorState;
    type Command = OperatorCommand;
    type Event = OperatorEvent;
    type Error = OperatorError;
    const CATEGORY: &'static str = stream::OPERATORS;

    fn decide(
        state: &OperatorState,
        command: OperatorCommand,
    ) -> Result<Vec<OperatorEvent>, OperatorError> {
        decide(state, command)
    }

    fn evolve(state: OperatorState, event: &OperatorEvent) -> OperatorState {
        evolve(state, event)
    }

    fn encode(event: &OperatorEvent) -> Result<Encoded, SchemaError> {
        mpc_schemas::stored::operator::encode_operator(event)
    }

    fn decode(
        event_type: &str,
        version: u16,
        payload: &[u8],
    ) -> Result<OperatorEvent, SchemaError> {
        mpc_schemas::stored::operator::decode_operator(event_type, version, payload)
    }

    fn occurred_at(event: &OperatorEvent) -> Timestamp {
        event.at()
    }
}

/// The events `command` causes, or why it is refused. Pure.
pub fn decide(
    state: &OperatorState,
    command: OperatorCommand,
) -> Result<Vec<OperatorEvent>, OperatorError> {
    match command {
        OperatorCommand::Add {
            id,
            name,
            role,
            digest,
            now,
        } => {
            if state.credentials.contains_key(&id) {
                return Err(OperatorError::DuplicateId(id));
            }
            if state.credentials.values().any(|c| c.digest == digest) {
                return Err(OperatorError::DuplicateKey);
            }
            if state
                .credentials
                .values()
                .any(|c| c.revoked_at.is_none() && c.name == name)
            {
                return Err(OperatorError::NameTaken(name.to_string()));
            }
            Ok(vec![OperatorEvent::CredentialAdded {
                id,
                name,
                role,
                digest,
                at: now,
            }])
        }
        OperatorCommand::Revoke { id, now } => match state.credentials.get(&id) {
            None => Err(OperatorError::UnknownCredential(id)),
            Some(c) if c.revoked_at.is_some() => Err(OperatorError::AlreadyRevoked(id)),
            Some(_) => Ok(vec![OperatorEvent::CredentialRevoked { id, at: now }]),
        },
    }
}

/// Folds one event. Total.
pub fn evolve(mut state: OperatorState, event: &OperatorEvent) -> OperatorState {
    match event {
        OperatorEvent::CredentialAdded {
            id,
            name,
            role,
            digest,
            at,
        } => {
            state.credentials.insert(
                *id,
                Credential {
                    id: *id,
                    name: name.clone(),
                    role: *role,
                    digest: *digest,
                    created_at: *at,
                    revoked_at: None,
                },
            );
        }
        OperatorEvent::CredentialRevoked { id, at } => {
            if let Some(c) = state.credentials.get_mut(id) {
                c.revoked_at.get_or_insert(*at);
            }
        }
    }
    state
}

/// Adds, revokes and reads the operators' credentials.
pub struct Operators {
    store: Arc<dyn EventStore>,
    writes: ActorRegistry<OperatorRegistry>,
    read: std::sync::Mutex<(OperatorState, u64)>,
}

impl Operators {
    pub fn new(store: Arc<dyn EventStore>, clock: Arc<dyn Clock>) -> Self {
        Self {
            writes: ActorRegistry::new(store.clone(), clock),
            store,
            read: std::sync::Mutex::new((OperatorState::default(), 0)),
        }
    }

    /// Records credential `id`, whose key has SHA-256 `digest`.
    pub async fn add(
        &self,
        id: CredentialId,
        name: CredentialName,
        role: Role,
        digest: [u8; 32],
        meta: CommandMeta,
    ) -> Result<Credential, ActorError<OperatorError>> {
        let now = self.writes.clock().now();
        let command = OperatorCommand::Add {
            id,
            name: name.clone(),
            role,
            digest,
            now,
        };
        self.writes.execute(REGISTRY_ID, command, meta).await?;
        Ok(Credential {
            id,
            name,
            role,
            digest,
            created_at: now,
            revoked_at: None,
        })
    }

    /// Revokes credential `id` for good; answers it as revoked.
    pub async fn revoke(
        &self,
        id: CredentialId,
        meta: CommandMeta,
    ) -> Result<Credential, ActorError<OperatorError>> {
        let now = self.writes.clock().now();
        self.writes
            .execute(REGISTRY_ID, OperatorCommand::Revoke { id, now }, meta)
            .await?;
        let state = self.current().await?;
        state
            .credentials
            .get(&id)
            .cloned()
            .ok_or(ActorError::Domain(OperatorError::UnknownCredential(id)))
    }

    /// The registry as the store holds it now.
    pub async fn current(&self) -> Result<OperatorState, ActorError<OperatorError>> {
        Ok(self.caught_up().await?.0.clone())
    }

    /// Credential `id` as the store holds it now, if it exists and is not revoked
    /// (what every request with an API key asks: one credential, not the registry).
    pub async fn active(
        &self,
        id: CredentialId,
    ) -> Result<Option<Credential>, ActorError<OperatorError>> {
        Ok(self.caught_up().await?.0.active(id).cloned())
    }

    /// Folds in the events appended since the last call, read without holding the
    /// lock across the read (a concurrent call may have folded some already).
    async fn caught_up(
        &self,
    ) -> Result<std::sync::MutexGuard<'_, (OperatorState, u64)>, ActorError<OperatorError>> {
        let stream = StreamName::new(stream::OPERATORS, REGISTRY_ID)?;
        let from = self.folded().1 + 1;
        let recorded = self.store.read_stream(&stream, from).await?;
        let mut events = Vec::with_capacity(recorded.len());
        for r in &recorded {
            let event = OperatorRegistry::decode(&r.event_type, r.schema_version, &r.payload)?;
            events.push((r.version, event));
        }
        let mut folded = self.folded();
        for (version, event) in events {
            if version == folded.1 + 1 {
                folded.0 = evolve(std::mem::take(&mut folded.0), &event);
                folded.1 = version;
            }
        }
        Ok(folded)
    }

    fn folded(&self) -> std::sync::MutexGuard<'_, (OperatorState, u64)> {
        self.read
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::given;

    fn id(n: u128) -> CredentialId {
        CredentialId::from_uuid(uuid::Uuid::from_u128(n))
    }

    fn name(s: &str) -> CredentialName {
        CredentialName::parse(s).unwrap()
    }

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    fn added(n: u128, who: &str, role: Role, digest: u8) -> OperatorEvent {
        OperatorEvent::CredentialAdded {
            id: id(n),
            name: name(who),
            role,
            digest: [digest; 32],
            at: at(1),
        }
    }

    fn add(n: u128, who: &str, role: Role, digest: u8) -> OperatorCommand {
        OperatorCommand::Add {
            id: id(n),
            name: name(who),
            role,
            digest: [digest; 32],
            now: at(1),
        }
    }

    #[test]
    fn a_new_credential_is_added() {
        given::<OperatorRegistry>([])
            .when(add(1, "ci", Role::Requester, 7))
            .then([added(1, "ci", Role::Requester, 7)]);
    }

    #[test]
    fn ids_keys_and_active_names_are_unique() {
        let existing = [added(1, "ci", Role::Requester, 7)];
        given::<OperatorRegistry>(existing.clone())
            .when(add(1, "other", Role::Auditor, 8))
            .then_err(OperatorError::DuplicateId(id(1)));
        given::<OperatorRegistry>(existing.clone())
            .when(add(2, "other", Role::Auditor, 7))
            .then_err(OperatorError::DuplicateKey);
        given::<OperatorRegistry>(existing)
            .when(add(2, "ci", Role::Auditor, 8))
            .then_err(OperatorError::NameTaken("ci".into()));
    }

    #[test]
    fn a_revoked_credential_frees_its_name_but_never_its_key() {
        let history = [
            added(1, "ci", Role::Requester, 7),
            OperatorEvent::CredentialRevoked {
                id: id(1),
                at: at(2),
            },
        ];
        given::<OperatorRegistry>(history.clone())
            .when(add(2, "ci", Role::Requester, 8))
            .then([added(2, "ci", Role::Requester, 8)]);
        given::<OperatorRegistry>(history)
            .when(add(2, "ci", Role::Requester, 7))
            .then_err(OperatorError::DuplicateKey);
    }

    #[test]
    fn revoking_is_once_and_only_of_a_known_credential() {
        let revoke = |n| OperatorCommand::Revoke {
            id: id(n),
            now: at(2),
        };
        given::<OperatorRegistry>([added(1, "ci", Role::Auditor, 7)])
            .when(revoke(1))
            .then([OperatorEvent::CredentialRevoked {
                id: id(1),
                at: at(2),
            }]);
        given::<OperatorRegistry>([])
            .when(revoke(1))
            .then_err(OperatorError::UnknownCredential(id(1)));
        given::<OperatorRegistry>([
            added(1, "ci", Role::Auditor, 7),
            OperatorEvent::CredentialRevoked {
                id: id(1),
                at: at(2),
            },
        ])
        .when(revoke(1))
        .then_err(OperatorError::AlreadyRevoked(id(1)));
    }

    #[test]
    fn a_revoked_credential_is_not_active() {
        let state = [
            added(1, "ci", Role::Auditor, 7),
            added(2, "ops", Role::Admin, 8),
            OperatorEvent::CredentialRevoked {
                id: id(1),
                at: at(2),
            },
        ]
        .iter()
        .fold(OperatorState::default(), evolve);
        assert!(state.active(id(1)).is_none());
        assert_eq!(state.active(id(2)).map(|c| c.role), Some(Role::Admin));
        assert_eq!(state.credentials[&id(1)].revoked_at, Some(at(2)));
    }
}
