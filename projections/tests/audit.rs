//! The audit-log projection and its hash chain, fed with real encoded session events
//! and events of other categories; and [`mpc_projections::replay`] comparing rebuilt
//! read models with live ones. Every case runs on SQLite and on PostgreSQL; one more
//! shows two runners on two PostgreSQL pools never applying an event twice.

use std::ops::Deref;

use mpc_events::{
    AccountEvent, AccountId, FailureReason, IdentityKey, KeyEvent, KeyId, KeyPolicy, KeyRef,
    PartyOutcome, RecoveryKind, RefreshDigest, RepairSpec, SessionEvent, SessionId, SessionSpec,
    Threshold, stream,
};
use mpc_projections::db::sql;
use mpc_projections::on_every_backend;
use mpc_projections::testing::samples::*;
use mpc_projections::testing::{ProjectionFixture, TestBackend, runner_on};
use mpc_projections::{
    AuditLogProjection, AuditRecord, BreakReason, GENESIS_HASH, Projection, ProjectionError,
    ReadModels, SessionStatusProjection, replay, verify_chain,
};
use mpc_store::StreamName;
use mpc_store::testing::new_event;
use sha2::{Digest, Sha256};

struct Fixture(ProjectionFixture<AuditLogProjection>);

impl Deref for Fixture {
    type Target = ProjectionFixture<AuditLogProjection>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl Fixture {
    async fn new(backend: TestBackend) -> Self {
        Self(ProjectionFixture::new(backend, AuditLogProjection::new).await)
    }

    fn models(&self) -> ReadModels {
        self.db.models()
    }

    fn audit(&self) -> &AuditLogProjection {
        self.runner.projection()
    }

    async fn records(&self) -> Vec<AuditRecord> {
        self.audit().snapshot().await.unwrap()
    }

    async fn sql(&self, statement: impl Into<String>) {
        self.db.exec(statement).await;
    }

    /// Keygen (completed), a signing (completed), a signing that fails with a
    /// named reporter, and an event of another category in between.
    async fn full_history(&self) -> (SessionId, SessionId, SessionId) {
        let keygen = SessionId::new();
        let key = PartyOutcome::PublicKey(group_key());
        self.session(
            keygen,
            &[
                keygen_created(keygen, 0),
                joined("device", 1),
                joined("server", 2),
                joined("recovery", 3),
                started(3),
                reported("device", key.clone(), 4),
                reported("server", key.clone(), 5),
                reported("recovery", key.clone(), 6),
                completed(key, 6),
            ],
        )
        .await;
        let signing = SessionId::new();
        let sig = PartyOutcome::Signature(signature());
        self.session(
            signing,
            &[
                signing_created(signing, KeyId::of_keygen(keygen), 10),
                joined("device", 11),
                joined("server", 12),
                started(12),
                reported("device", sig.clone(), 13),
                reported("server", sig.clone(), 14),
                completed(sig, 14),
            ],
        )
        .await;
        self.append(
            &StreamName::new(stream::USERNAME, "alice").unwrap(),
            vec![new_event("ValueClaimed", 1, b"{}".to_vec(), at(15))],
        )
        .await;
        let failed = SessionId::new();
        self.session(
            failed,
            &[
                signing_created(failed, KeyId::of_keygen(keygen), 20),
                joined("device", 21),
                joined("server", 22),
                started(22),
                SessionEvent::SessionFailed {
                    reason: FailureReason::PartyAborted {
                        reported_by: party("server"),
                        culprits: vec![party("device")],
                        detail: "bad proof".into(),
                    },
                    at: at(23),
                },
            ],
        )
        .await;
        (keygen, signing, failed)
    }
}

/// (service, action, actor, status) of each record.
fn summary(records: &[AuditRecord]) -> Vec<(&str, &str, &str, Option<&str>)> {
    records
        .iter()
        .map(|r| {
            (
                r.service.as_str(),
                r.action.as_str(),
                r.actor.as_str(),
                r.status.as_deref(),
            )
        })
        .collect()
}

async fn every_event_of_a_keygen_signing_and_failure_history_becomes_one_record(
    backend: TestBackend,
) {
    let f = Fixture::new(backend).await;
    let (keygen, signing, failed) = f.full_history().await;
    let head = f.store.head().await.unwrap();
    assert_eq!(f.runner.catch_up().await.unwrap(), head);

    let records = f.records().await;
    assert_eq!(records.len() as u64, head);
    let co = "coordinator";
    let expected = [
        (co, "SessionCreated", "system", Some("created")),
        (co, "ParticipantJoined", "device", Some("created")),
        (co, "ParticipantJoined", "server", Some("created")),
        (co, "ParticipantJoined", "recovery", Some("created")),
        (co, "SessionStarted", "system", Some("in_progress")),
        (co, "PartyCompleted", "device", Some("in_progress")),
        (co, "PartyCompleted", "server", Some("in_progress")),
        (co, "PartyCompleted", "recovery", Some("in_progress")),
        (co, "SessionCompleted", "system", Some("completed")),
        (co, "SessionCreated", "system", Some("created")),
        (co, "ParticipantJoined", "device", Some("created")),
        (co, "ParticipantJoined", "server", Some("created")),
        (co, "SessionStarted", "system", Some("in_progress")),
        (co, "PartyCompleted", "device", Some("in_progress")),
        (co, "PartyCompleted", "server", Some("in_progress")),
        (co, "SessionCompleted", "system", Some("completed")),
        ("username", "ValueClaimed", "system", None),
        (co, "SessionCreated", "system", Some("created")),
        (co, "ParticipantJoined", "device", Some("created")),
        (co, "ParticipantJoined", "server", Some("created")),
        (co, "SessionStarted", "system", Some("in_progress")),
        (co, "SessionFailed", "server", Some("failed")),
    ];
    assert_eq!(summary(&records), expected);

    let events = f.store.read_all(0, 100).await.unwrap();
    for (record, event) in records.iter().zip(&events) {
        assert_eq!(record.position, event.position);
        assert_eq!(record.resource, event.stream.as_str());
        assert_eq!(record.event_id, event.event_id);
        assert_eq!(record.correlation_id, event.correlation_id);
        assert_eq!(record.occurred_at, event.occurred_at);
        assert_eq!(record.stream_version, event.version);
        assert_eq!(record.schema_version, event.schema_version);
        let digest: [u8; 32] = Sha256::digest(&event.payload).into();
        assert_eq!(record.payload_sha256, digest);
    }
    let sessions: Vec<_> = records.iter().map(|r| r.session.clone()).collect();
    assert!(sessions[..9].iter().all(|s| *s == Some(keygen.to_string())));
    assert!(
        sessions[9..16]
            .iter()
            .all(|s| *s == Some(signing.to_string()))
    );
    assert_eq!(sessions[16], None);
    assert_eq!(records[16].resource, "username-alice");
    assert!(
        sessions[17..]
            .iter()
            .all(|s| *s == Some(failed.to_string()))
    );
}

async fn the_chain_links_every_record_and_verifies(backend: TestBackend) {
    let f = Fixture::new(backend).await;
    f.full_history().await;
    f.runner.catch_up().await.unwrap();
    let records = f.records().await;
    assert_eq!(records[0].prev_hash, GENESIS_HASH);
    for pair in records.windows(2) {
        assert_eq!(pair[1].prev_hash, pair[0].hash);
    }
    for r in &records {
        assert_eq!(r.hash, r.compute_hash());
    }
    let report = verify_chain(&f.models()).await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.records, 22);
    assert_eq!(report.head, Some(records[21].hash));
    assert_eq!(
        f.audit().head().await.unwrap(),
        (22, Some(records[21].hash))
    );
}

async fn an_empty_audit_log_verifies(backend: TestBackend) {
    let f = Fixture::new(backend).await;
    let report = f.audit().verify().await.unwrap();
    assert!(report.is_intact());
    assert_eq!((report.records, report.head), (0, None));
}

async fn an_edited_record_breaks_the_chain_at_its_position(backend: TestBackend) {
    let f = Fixture::new(backend).await;
    f.full_history().await;
    f.runner.catch_up().await.unwrap();
    f.sql("UPDATE audit_log SET actor = 'mallory' WHERE position = 7")
        .await;
    let report = verify_chain(&f.models()).await.unwrap();
    let broken = report.first_broken.expect("a broken link");
    assert_eq!(broken.position, 7);
    assert_eq!(broken.reason, BreakReason::HashMismatch);
    assert_ne!(broken.expected, broken.found);
    assert_eq!(report.records, 6);
}

async fn a_deleted_middle_record_breaks_the_chain_at_the_next_one(backend: TestBackend) {
    let f = Fixture::new(backend).await;
    f.full_history().await;
    f.runner.catch_up().await.unwrap();
    let records = f.records().await;
    f.sql("DELETE FROM audit_log WHERE position = 10").await;
    let broken = verify_chain(&f.models())
        .await
        .unwrap()
        .first_broken
        .expect("a broken link");
    assert_eq!(broken.position, 11);
    assert_eq!(broken.reason, BreakReason::PrevHashMismatch);
    assert_eq!(broken.expected, hex::encode(records[8].hash));
    assert_eq!(broken.found, hex::encode(records[9].hash));
}

async fn a_rewritten_hash_breaks_the_chain_at_that_record(backend: TestBackend) {
    let f = Fixture::new(backend).await;
    f.full_history().await;
    f.runner.catch_up().await.unwrap();
    f.sql(format!(
        "UPDATE audit_log SET hash = '{}' WHERE position = 3",
        "ab".repeat(32)
    ))
    .await;
    let broken = verify_chain(&f.models())
        .await
        .unwrap()
        .first_broken
        .expect("a broken link");
    assert_eq!(
        (broken.position, broken.reason),
        (3, BreakReason::HashMismatch)
    );
    assert_eq!(broken.found, "ab".repeat(32));
}

async fn a_deleted_last_record_is_reported_as_a_missing_tail(backend: TestBackend) {
    let f = Fixture::new(backend).await;
    f.full_history().await;
    f.runner.catch_up().await.unwrap();
    f.sql("DELETE FROM audit_log WHERE position = 22").await;
    let broken = verify_chain(&f.models())
        .await
        .unwrap()
        .first_broken
        .expect("a broken link");
    assert_eq!(
        (broken.position, broken.reason),
        (22, BreakReason::MissingTail)
    );
}

async fn a_rebuild_yields_identical_records_and_hashes(backend: TestBackend) {
    let f = Fixture::new(backend).await;
    f.full_history().await;
    f.runner.catch_up().await.unwrap();
    let live = f.records().await;
    assert_eq!(f.runner.rebuild().await.unwrap(), 22);
    assert_eq!(f.records().await, live);
}

/// The runner writes a batch through `apply_all` (chain head read once, statuses
/// carried through the batch, multi-row inserts); applying the same events one at a
/// time through `apply` must give the very same records.
async fn a_batch_and_event_by_event_application_yield_identical_records(backend: TestBackend) {
    let f = Fixture::new(backend).await;
    f.full_history().await;
    let events = f.store.read_all(0, 100).await.unwrap();
    let models = f.models();

    let mut tx = models.begin_write().await.unwrap();
    f.audit().apply_all(&mut tx.conn(), &events).await.unwrap();
    tx.commit().await.unwrap();
    let batched = f.records().await;
    assert_eq!(batched.len(), 22);
    assert!(f.audit().verify().await.unwrap().is_intact());

    let mut tx = models.begin_write().await.unwrap();
    sql("DELETE FROM audit_log")
        .execute(&mut tx.conn())
        .await
        .unwrap();
    for event in &events {
        f.audit().apply(&mut tx.conn(), event).await.unwrap();
    }
    tx.commit().await.unwrap();
    assert_eq!(f.records().await, batched);
}

async fn catching_up_twice_adds_nothing_and_new_events_extend_the_chain(backend: TestBackend) {
    let f = Fixture::new(backend).await;
    let (keygen, ..) = f.full_history().await;
    f.runner.catch_up().await.unwrap();
    let first = f.records().await;
    assert_eq!(f.runner.catch_up().await.unwrap(), 22);
    assert_eq!(f.records().await, first);

    f.session(keygen, &[SessionEvent::SessionExpired { at: at(99) }])
        .await;
    f.runner.catch_up().await.unwrap();
    let records = f.records().await;
    assert_eq!(records.len(), 23);
    assert_eq!(records[..22], first[..]);
    assert_eq!(records[22].prev_hash, first[21].hash);
    assert_eq!(records[22].status.as_deref(), Some("expired"));
    assert!(f.audit().verify().await.unwrap().is_intact());
}

async fn events_of_unknown_categories_are_recorded_with_generic_fields(backend: TestBackend) {
    let f = Fixture::new(backend).await;
    f.append(
        &StreamName::new(stream::PARTY, "server").unwrap(),
        vec![
            new_event("ShareStored", 3, vec![0xff, 0x00], at(1)),
            new_event("Whatever", 1, Vec::new(), at(2)),
        ],
    )
    .await;
    f.runner.catch_up().await.unwrap();
    let records = f.records().await;
    assert_eq!(
        summary(&records),
        [
            ("party", "ShareStored", "system", None),
            ("party", "Whatever", "system", None),
        ]
    );
    assert!(records.iter().all(|r| r.session.is_none()));
    assert_eq!(records[1].schema_version, 1);
}

async fn recovery_key_refresh_and_refresh_session_events_are_recorded(backend: TestBackend) {
    let f = Fixture::new(backend).await;
    let account = AccountId::new();
    let (refresh, failed) = (SessionId::new(), SessionId::new());
    let account_events = [
        AccountEvent::RecoveryRequested {
            session_id: refresh,
            kind: RecoveryKind::DeviceLost {
                identity: IdentityKey::new(&[7; 32], &[8; 32]).unwrap(),
            },
            at: at(1),
        },
        AccountEvent::RecoveryInProgress {
            session_id: refresh,
            at: at(3),
        },
        AccountEvent::RecoveryCompleted {
            session_id: refresh,
            at: at(9),
        },
        AccountEvent::RecoveryFailed {
            session_id: failed,
            reason: "expired".into(),
            at: at(10),
        },
    ];
    let key_id = KeyId::of_keygen(SessionId::new());
    let scheduled = mpc_schemas::stored::account::encode_key(&KeyEvent::RefreshScheduled {
        session_id: refresh,
        at: at(2),
    })
    .unwrap();
    let account_stream = StreamName::new(stream::ACCOUNT, account).unwrap();
    let encoded = |e: &AccountEvent| {
        let encoded = mpc_schemas::stored::account::encode_account(e).unwrap();
        new_event(
            encoded.event_type,
            encoded.schema_version,
            encoded.payload,
            e.at(),
        )
    };
    f.append(&account_stream, vec![encoded(&account_events[0])])
        .await;
    f.append(
        &StreamName::new(stream::KEY, key_id).unwrap(),
        vec![new_event(
            scheduled.event_type,
            scheduled.schema_version,
            scheduled.payload,
            at(2),
        )],
    )
    .await;
    let outcome = PartyOutcome::Refreshed {
        public_key: group_key(),
        digest: RefreshDigest::from_bytes([4; 32]),
    };
    let spec = SessionSpec::Refresh {
        key: KeyRef {
            key_id,
            public_key: group_key(),
            threshold: Threshold::new(2, 3).unwrap(),
            parties: participants(),
            epoch: 1,
        },
        repair: Some(Box::new(RepairSpec {
            target: party("device"),
            identity: IdentityKey::new(&[7; 32], &[8; 32]).unwrap(),
            helpers: vec![party("server"), party("recovery")],
            authorizations: Vec::new(),
            policy: KeyPolicy::AnyRequest,
        })),
    };
    f.session(
        refresh,
        &[
            created(refresh, spec, participants(), 3),
            joined("device", 4),
            joined("server", 5),
            joined("recovery", 6),
            started(6),
            reported("device", outcome.clone(), 7),
            reported("server", outcome.clone(), 8),
            reported("recovery", outcome.clone(), 8),
            completed(outcome, 9),
        ],
    )
    .await;
    f.append(
        &account_stream,
        account_events[1..].iter().map(encoded).collect(),
    )
    .await;
    f.runner.catch_up().await.unwrap();

    let records = f.records().await;
    let co = "coordinator";
    assert_eq!(
        summary(&records),
        [
            ("account", "RecoveryRequested", "system", None),
            ("key", "RefreshScheduled", "system", None),
            (co, "SessionCreated", "system", Some("created")),
            (co, "ParticipantJoined", "device", Some("created")),
            (co, "ParticipantJoined", "server", Some("created")),
            (co, "ParticipantJoined", "recovery", Some("created")),
            (co, "SessionStarted", "system", Some("in_progress")),
            (co, "PartyCompleted", "device", Some("in_progress")),
            (co, "PartyCompleted", "server", Some("in_progress")),
            (co, "PartyCompleted", "recovery", Some("in_progress")),
            (co, "SessionCompleted", "system", Some("completed")),
            ("account", "RecoveryInProgress", "system", None),
            ("account", "RecoveryCompleted", "system", None),
            ("account", "RecoveryFailed", "system", None),
        ]
    );
    assert_eq!(records[0].resource, account_stream.as_str());
    assert_eq!(records[1].resource, format!("key-{key_id}"));
    assert!(
        records[2..11]
            .iter()
            .all(|r| r.session == Some(refresh.to_string()))
    );
    assert!(records[11..].iter().all(|r| r.session.is_none()));
    assert_eq!(records[13].occurred_at, at(10));
    assert!(f.audit().verify().await.unwrap().is_intact());
}

async fn an_undecodable_session_payload_stops_the_projection_before_it(backend: TestBackend) {
    let f = Fixture::new(backend).await;
    let id = SessionId::new();
    f.session(id, &[keygen_created(id, 0)]).await;
    f.append(
        &StreamName::new(stream::SESSION, id).unwrap(),
        vec![new_event(
            "ParticipantJoined",
            1,
            b"not json".to_vec(),
            at(1),
        )],
    )
    .await;
    let error = f.runner.catch_up().await.unwrap_err();
    assert!(
        matches!(error, ProjectionError::Decode { position: 2, .. }),
        "{error:?}"
    );
    assert_eq!(f.records().await.len(), 1);
    assert_eq!(f.runner.checkpoint().await.unwrap(), 1);
}

async fn replay_reports_matching_models_and_leaves_the_live_ones_alone(backend: TestBackend) {
    let f = Fixture::new(backend).await;
    f.full_history().await;
    let statuses = runner_on(f.store.clone(), f.models(), SessionStatusProjection::new).await;
    statuses.catch_up().await.unwrap();

    let report = replay(f.store.clone(), &f.models()).await.unwrap();
    let names: Vec<_> = report.iter().map(|m| m.model.as_str()).collect();
    assert_eq!(
        names,
        [
            "session_status",
            "audit_log",
            "accounts",
            "approval_workflows"
        ]
    );
    assert!(report.iter().all(|m| m.matches()), "{report:?}");
    assert_eq!((report[0].live_rows, report[0].rebuilt_rows), (3, 3));
    assert_eq!((report[1].live_rows, report[1].rebuilt_rows), (22, 22));
    assert_eq!(report[1].checkpoint, 22);
    // Replay caught the live audit log up (it had applied nothing yet).
    assert_eq!(f.records().await.len(), 22);
    assert!(f.audit().verify().await.unwrap().is_intact());

    // A tampered live record is reported, and replay does not repair it.
    f.sql("UPDATE audit_log SET actor = 'mallory' WHERE position = 5")
        .await;
    let report = replay(f.store.clone(), &f.models()).await.unwrap();
    assert!(report[0].matches());
    let difference = report[1].first_difference.as_deref().unwrap();
    assert!(difference.starts_with("position 5:"), "{difference}");
    assert!(difference.contains("mallory"), "{difference}");
    let stored = f
        .models()
        .fetch_optional(sql("SELECT actor FROM audit_log WHERE position = 5"))
        .await
        .unwrap()
        .expect("record 5");
    assert_eq!(stored.get::<String>("actor").unwrap(), "mallory");
    if backend == TestBackend::Postgres {
        let scratch = f
            .models()
            .fetch_all(sql("SELECT schema_name FROM information_schema.schemata \
                 WHERE schema_name LIKE 'mpc_replay_%'"))
            .await
            .unwrap();
        assert!(scratch.is_empty(), "replay drops its scratch schema");
    }
}

/// Two processes run the same projections against one PostgreSQL database, each
/// through a pool of its own, and both follow the log while it grows: the checkpoint
/// row lock makes every event land exactly once in each read model.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runners_on_two_postgres_pools_never_apply_an_event_twice() {
    const SESSIONS: i64 = 8;
    let f = Fixture::new(TestBackend::Postgres).await;
    let pools = [f.models(), f.db.other_pool().await];
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let shutdown = || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|s| *s).await;
        }
    };
    let mut followers = Vec::new();
    for models in &pools {
        let audit = runner_on(f.store.clone(), models.clone(), AuditLogProjection::new).await;
        followers.push((audit.progress(), audit.spawn(shutdown())));
        let statuses = runner_on(
            f.store.clone(),
            models.clone(),
            SessionStatusProjection::new,
        )
        .await;
        followers.push((statuses.progress(), statuses.spawn(shutdown())));
    }

    let key = PartyOutcome::PublicKey(group_key());
    let ids: Vec<SessionId> = (0..SESSIONS).map(|_| SessionId::new()).collect();
    let mut head = 0;
    for (n, id) in ids.iter().enumerate() {
        let ms = 100 * i64::try_from(n).unwrap();
        head = f.session(*id, &[keygen_created(*id, ms)]).await;
    }
    for step in 0..8 {
        for (n, id) in ids.iter().enumerate() {
            let ms = 100 * i64::try_from(n).unwrap() + step + 1;
            let event = match step {
                0 => joined("device", ms),
                1 => joined("server", ms),
                2 => joined("recovery", ms),
                3 => started(ms),
                4 => reported("device", key.clone(), ms),
                5 => reported("server", key.clone(), ms),
                6 => reported("recovery", key.clone(), ms),
                _ => completed(key.clone(), ms),
            };
            head = f.session(*id, &[event]).await;
        }
    }
    assert_eq!(head, 9 * SESSIONS as u64);
    for (progress, _) in &mut followers {
        tokio::time::timeout(
            std::time::Duration::from_secs(30),
            progress.wait_for(|p| *p >= head),
        )
        .await
        .expect("every runner reaches the head")
        .unwrap();
    }
    stop.send_replace(true);
    for (_, task) in followers {
        assert_eq!(task.await.unwrap().unwrap(), head, "no runner failed");
    }

    let records = f.records().await;
    let positions: Vec<u64> = records.iter().map(|r| r.position).collect();
    assert_eq!(positions, (1..=head).collect::<Vec<_>>());
    let report = verify_chain(&pools[1]).await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.records, head);

    let sessions = SessionStatusProjection::new(pools[1].clone())
        .snapshot()
        .await
        .unwrap();
    assert_eq!(sessions.len(), ids.len());
    for row in &sessions {
        assert_eq!(
            (row.status.to_string().as_str(), row.joined, row.reported),
            ("completed", 3, 3),
            "{row:?}"
        );
    }
    let report = replay(f.store.clone(), &pools[0]).await.unwrap();
    assert!(report.iter().all(|m| m.matches()), "{report:?}");
}

on_every_backend!(
    every_event_of_a_keygen_signing_and_failure_history_becomes_one_record,
    the_chain_links_every_record_and_verifies,
    an_empty_audit_log_verifies,
    an_edited_record_breaks_the_chain_at_its_position,
    a_deleted_middle_record_breaks_the_chain_at_the_next_one,
    a_rewritten_hash_breaks_the_chain_at_that_record,
    a_deleted_last_record_is_reported_as_a_missing_tail,
    a_rebuild_yields_identical_records_and_hashes,
    a_batch_and_event_by_event_application_yield_identical_records,
    catching_up_twice_adds_nothing_and_new_events_extend_the_chain,
    events_of_unknown_categories_are_recorded_with_generic_fields,
    recovery_key_refresh_and_refresh_session_events_are_recorded,
    an_undecodable_session_payload_stops_the_projection_before_it,
    replay_reports_matching_models_and_leaves_the_live_ones_alone,
);
