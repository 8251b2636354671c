//! Test set-ups for the read models, behind the `testing` feature: every projection
//! test runs against both read-model backends, on a fresh database, fed with encoded
//! events appended the way the coordinator writes them.
//!
//! A test case is an `async fn case(backend: TestBackend)`; [`on_every_backend!`]
//! turns a list of cases into `sqlite::case` and `postgres::case` tests. Each test gets
//! a fresh database ([`TestDb`]): an SQLite file in a temporary directory, or a
//! PostgreSQL database `mpc_test_<uuid>` created for the test and dropped (`WITH
//! (FORCE)`) afterwards ([`mpc_store::testing`]). The event store and the read models
//! share that database, as `mpc demo` (SQLite) and `mpc serve --store-url`
//! (PostgreSQL) do. [`ProjectionFixture`] adds a runner of one projection on it.
//! [`samples`] builds the session events the tests record.

use std::sync::Arc;

use mpc_events::{
    AccountEvent, AccountId, SessionEvent, SessionId, Timestamp, WorkflowEvent, WorkflowId, stream,
};
use mpc_schemas::{Encoded, SchemaError};
use mpc_store::testing::{TempSqlite, TestDatabase, append_next, new_event};
use mpc_store::{EventStore, NewEvent, StreamName};

use crate::{Projection, ProjectionRunner, ReadModels};

/// Instantiates every listed case as a `#[tokio::test]` per backend.
#[macro_export]
macro_rules! on_every_backend {
    ($($case:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case($crate::testing::TestBackend::Sqlite).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case($crate::testing::TestBackend::Postgres).await;
                }
            )+
        }
    };
}
pub use crate::on_every_backend;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestBackend {
    Sqlite,
    Postgres,
}

/// A fresh database holding an event store and the read models, for one test.
pub struct TestDb {
    // Declared before `backing`, so the store goes before its database.
    store: Arc<dyn EventStore>,
    models: ReadModels,
    backing: Backing,
}

enum Backing {
    Sqlite(TempSqlite),
    Postgres(TestDatabase),
}

impl TestDb {
    pub async fn create(backend: TestBackend) -> Self {
        match backend {
            TestBackend::Sqlite => {
                let sqlite = TempSqlite::create().await;
                let store = sqlite.store().clone();
                Self {
                    models: ReadModels::from(store.pool().clone()),
                    store: Arc::new(store),
                    backing: Backing::Sqlite(sqlite),
                }
            }
            TestBackend::Postgres => {
                let database = TestDatabase::create().await;
                let store = database.connect().await;
                Self {
                    models: ReadModels::from(store.pool().clone()),
                    store: Arc::new(store),
                    backing: Backing::Postgres(database),
                }
            }
        }
    }

    pub fn store(&self) -> Arc<dyn EventStore> {
        Arc::clone(&self.store)
    }

    /// The read models, in the event store's own database (its pool).
    pub fn models(&self) -> ReadModels {
        self.models.clone()
    }

    /// The same read-model database through a pool of its own, as another process
    /// would open it.
    pub async fn other_pool(&self) -> ReadModels {
        match &self.backing {
            Backing::Sqlite(sqlite) => ReadModels::connect(&sqlite.path().display().to_string())
                .await
                .unwrap(),
            Backing::Postgres(database) => ReadModels::connect(&database.url()).await.unwrap(),
        }
    }

    /// Runs `statement` (no parameters) on the read-model database, e.g. to damage it.
    pub async fn exec(&self, statement: impl Into<String>) {
        let statement = sqlx::AssertSqlSafe(statement.into());
        match &self.models {
            ReadModels::Sqlite(pool) => sqlx::raw_sql(statement).execute(pool).await.map(drop),
            ReadModels::Postgres(pool) => sqlx::raw_sql(statement).execute(pool).await.map(drop),
        }
        .unwrap();
    }
}

/// A runner of one projection on a fresh [`TestDb`], and appending encoded events to
/// its store.
pub struct ProjectionFixture<P: Projection> {
    // Declared before `db`, so the runner's pool goes before its database.
    pub runner: ProjectionRunner<P>,
    pub store: Arc<dyn EventStore>,
    pub db: TestDb,
}

impl<P: Projection> ProjectionFixture<P> {
    /// A runner of `projection(models)` on a fresh database of `backend`.
    pub async fn new(backend: TestBackend, projection: impl FnOnce(ReadModels) -> P) -> Self {
        let db = TestDb::create(backend).await;
        let store = db.store();
        let runner = runner_on(store.clone(), db.models(), projection).await;
        Self { runner, store, db }
    }

    /// Appends `events` to `stream` at its current version; returns the position of
    /// the last one.
    pub async fn append(&self, stream: &StreamName, events: Vec<NewEvent>) -> u64 {
        append_next(self.store.as_ref(), stream, events).await
    }

    /// Appends `events` to `session-<id>`; returns the position of the last one.
    pub async fn session(&self, id: SessionId, events: &[SessionEvent]) -> u64 {
        let stream = StreamName::new(stream::SESSION, id).unwrap();
        let encoded = encode(
            events,
            mpc_schemas::stored::session::encode,
            SessionEvent::at,
        );
        self.append(&stream, encoded).await
    }

    /// Appends `events` to `account-<id>`; returns the position of the last one.
    pub async fn account(&self, id: AccountId, events: &[AccountEvent]) -> u64 {
        let stream = StreamName::new(stream::ACCOUNT, id).unwrap();
        let encoded = encode(
            events,
            mpc_schemas::stored::account::encode_account,
            AccountEvent::at,
        );
        self.append(&stream, encoded).await
    }

    /// Appends `events` to `approval-<id>`; returns the position of the last one.
    pub async fn workflow(&self, id: WorkflowId, events: &[WorkflowEvent]) -> u64 {
        let stream = StreamName::new(stream::APPROVAL, id).unwrap();
        let encoded = encode(
            events,
            mpc_schemas::stored::approval::encode_workflow,
            WorkflowEvent::at,
        );
        self.append(&stream, encoded).await
    }
}

/// A runner of `projection(models)` on `models`, fed from `store`.
pub async fn runner_on<P: Projection>(
    store: Arc<dyn EventStore>,
    models: ReadModels,
    projection: impl FnOnce(ReadModels) -> P,
) -> ProjectionRunner<P> {
    ProjectionRunner::new(store, models.clone(), projection(models))
        .await
        .expect("a projection runner")
}

/// `events` encoded as the coordinator stores them.
pub fn encode<E>(
    events: &[E],
    encode: fn(&E) -> Result<Encoded, SchemaError>,
    at: fn(&E) -> Timestamp,
) -> Vec<NewEvent> {
    events
        .iter()
        .map(|e| {
            let encoded = encode(e).unwrap();
            new_event(
                encoded.event_type,
                encoded.schema_version,
                encoded.payload,
                at(e),
            )
        })
        .collect()
}

/// Session events with fixed identities, keys and times, for the tests to record.
pub mod samples {
    use std::collections::BTreeMap;

    use mpc_events::{
        IdentityKey, KeyId, KeyPolicy, KeyRef, MessageHash, Participant, PartyId, PartyOutcome,
        PublicKey, SessionCreated, SessionEvent, SessionId, SessionSpec, Signature, Threshold,
        Timestamp, TokenDigest,
    };

    /// `ms` milliseconds after a fixed instant.
    pub fn at(ms: i64) -> Timestamp {
        Timestamp::from_millis(1_700_000_000_000 + ms)
    }

    pub fn party(name: &str) -> PartyId {
        PartyId::parse(name).unwrap()
    }

    /// `name` with identity keys filled with `seed` and `seed + 1`.
    pub fn participant(name: &str, seed: u8) -> Participant {
        Participant {
            party_id: party(name),
            identity: IdentityKey::new(&[seed; 32], &[seed.wrapping_add(1); 32]).unwrap(),
        }
    }

    /// `device`, `server` and `recovery`.
    pub fn participants() -> Vec<Participant> {
        vec![
            participant("device", 1),
            participant("server", 3),
            participant("recovery", 5),
        ]
    }

    pub fn group_key() -> PublicKey {
        let mut bytes = [0x5a; 33];
        bytes[0] = 0x02;
        PublicKey::from_slice(&bytes).unwrap()
    }

    pub fn signature() -> Signature {
        Signature::new(&[0xab; 32], &[0xcd; 32], 1).unwrap()
    }

    /// Session `id` of `spec` among `parties`, created at `ms`; joining closes a
    /// minute later, the session ten minutes later.
    pub fn created(
        id: SessionId,
        spec: SessionSpec,
        parties: Vec<Participant>,
        ms: i64,
    ) -> SessionEvent {
        let join_tokens: BTreeMap<_, _> = parties
            .iter()
            .map(|p| (p.party_id.clone(), TokenDigest::from_bytes([9; 32])))
            .collect();
        SessionEvent::SessionCreated(SessionCreated {
            session_id: id,
            spec,
            participants: parties,
            join_tokens,
            join_expires_at: at(ms + 60_000),
            expires_at: at(ms + 600_000),
            at: at(ms),
        })
    }

    /// A 2-of-3 keygen among [`participants`].
    pub fn keygen_created(id: SessionId, ms: i64) -> SessionEvent {
        let spec = SessionSpec::Keygen {
            threshold: Threshold::new(2, 3).unwrap(),
            policy: KeyPolicy::AnyRequest,
        };
        created(id, spec, participants(), ms)
    }

    /// A signing with key `key_id` ([`group_key`], 2-of-3 among [`participants`]) by
    /// `device` and `server`.
    pub fn signing_created(id: SessionId, key_id: KeyId, ms: i64) -> SessionEvent {
        let spec = SessionSpec::Signing {
            key: KeyRef {
                key_id,
                public_key: group_key(),
                threshold: Threshold::new(2, 3).unwrap(),
                parties: participants(),
                epoch: 1,
            },
            message_hash: MessageHash::from_bytes([7; 32]),
            message: None,
            approval: None,
        };
        created(id, spec, participants()[..2].to_vec(), ms)
    }

    pub fn joined(name: &str, ms: i64) -> SessionEvent {
        SessionEvent::ParticipantJoined {
            party_id: party(name),
            at: at(ms),
        }
    }

    pub fn started(ms: i64) -> SessionEvent {
        SessionEvent::SessionStarted { at: at(ms) }
    }

    pub fn reported(name: &str, outcome: PartyOutcome, ms: i64) -> SessionEvent {
        SessionEvent::PartyCompleted {
            party_id: party(name),
            outcome,
            at: at(ms),
        }
    }

    pub fn completed(outcome: PartyOutcome, ms: i64) -> SessionEvent {
        SessionEvent::SessionCompleted {
            outcome,
            at: at(ms),
        }
    }
}
