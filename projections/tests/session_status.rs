//! The session-status projection against a file-backed SQLite event store, fed with
//! real encoded session events.

use std::ops::Deref;
use std::time::Duration;

use mpc_events::{
    FailureReason, KeyId, KeyRef, PartyOutcome, RefreshDigest, SessionEvent, SessionId,
    SessionKind, SessionSpec, SessionStatus, Threshold, stream,
};
use mpc_projections::db::sql;
use mpc_projections::on_every_backend;
use mpc_projections::testing::samples::*;
use mpc_projections::testing::{ProjectionFixture, TestBackend, runner_on};
use mpc_projections::{ProjectionError, SessionStatusProjection, SessionStatusRow};
use mpc_store::StreamName;
use mpc_store::testing::new_event;
use tokio::sync::oneshot;

const WAIT: Duration = Duration::from_secs(10);

struct Fixture(ProjectionFixture<SessionStatusProjection>);

impl Deref for Fixture {
    type Target = ProjectionFixture<SessionStatusProjection>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl Fixture {
    async fn new(backend: TestBackend) -> Self {
        Self(ProjectionFixture::new(backend, SessionStatusProjection::new).await)
    }

    fn sessions(&self) -> &SessionStatusProjection {
        self.runner.projection()
    }

    async fn row(&self, id: SessionId) -> SessionStatusRow {
        self.sessions().get(id).await.unwrap().expect("session row")
    }

    async fn count_rows(&self) -> usize {
        self.sessions().snapshot().await.unwrap().len()
    }
}

fn session_stream(id: SessionId) -> StreamName {
    StreamName::new(stream::SESSION, id).unwrap()
}

/// A keygen session run to completion.
fn keygen_lifecycle(id: SessionId, ms: i64) -> Vec<SessionEvent> {
    let key = PartyOutcome::PublicKey(group_key());
    vec![
        keygen_created(id, ms),
        joined("device", ms + 1),
        joined("server", ms + 2),
        joined("recovery", ms + 3),
        started(ms + 3),
        reported("device", key.clone(), ms + 4),
        reported("server", key.clone(), ms + 5),
        reported("recovery", key.clone(), ms + 6),
        completed(key, ms + 6),
    ]
}

async fn a_keygen_session_goes_from_created_through_joined_and_started_to_completed(
    backend: TestBackend,
) {
    let f = Fixture::new(backend).await;
    let id = SessionId::new();
    let events = keygen_lifecycle(id, 0);

    let position = f.session(id, &events[..1]).await;
    assert_eq!(f.runner.catch_up().await.unwrap(), position);
    let row = f.row(id).await;
    assert_eq!(
        row,
        SessionStatusRow {
            session_id: id,
            kind: SessionKind::Keygen,
            status: SessionStatus::Created,
            threshold_t: 2,
            threshold_n: 3,
            participants: vec![party("device"), party("server"), party("recovery")],
            joined: 0,
            reported: 0,
            key_id: None,
            public_key_hex: None,
            signature_r_hex: None,
            signature_s_hex: None,
            recovery_id: None,
            failure: None,
            created_at: at(0),
            updated_at: at(0),
            last_position: position,
        }
    );

    f.session(id, &events[1..3]).await;
    f.runner.catch_up().await.unwrap();
    let row = f.row(id).await;
    assert_eq!((row.status, row.joined), (SessionStatus::Created, 2));
    assert_eq!(row.updated_at, at(2));

    f.session(id, &events[3..5]).await;
    f.runner.catch_up().await.unwrap();
    let row = f.row(id).await;
    assert_eq!((row.status, row.joined), (SessionStatus::InProgress, 3));

    f.session(id, &events[5..7]).await;
    f.runner.catch_up().await.unwrap();
    let row = f.row(id).await;
    assert_eq!((row.status, row.reported), (SessionStatus::InProgress, 2));
    assert_eq!(row.public_key_hex, None);

    let position = f.session(id, &events[7..]).await;
    assert_eq!(f.runner.catch_up().await.unwrap(), position);
    let row = f.row(id).await;
    assert_eq!((row.status, row.reported), (SessionStatus::Completed, 3));
    assert_eq!(row.public_key_hex, Some(format!("02{}", "5a".repeat(32))));
    assert_eq!(row.signature_r_hex, None);
    assert_eq!((row.updated_at, row.last_position), (at(6), position));
    assert_eq!(row.created_at, at(0));
}

async fn a_signing_session_shows_its_key_and_completes_with_the_signature(backend: TestBackend) {
    let f = Fixture::new(backend).await;
    let keygen = SessionId::new();
    let key_id = KeyId::of_keygen(keygen);
    let id = SessionId::new();
    let sig = PartyOutcome::Signature(signature());
    f.session(
        id,
        &[
            signing_created(id, key_id, 10),
            joined("device", 11),
            joined("server", 12),
            started(12),
        ],
    )
    .await;
    f.runner.catch_up().await.unwrap();
    let row = f.row(id).await;
    assert_eq!(row.kind, SessionKind::Signing);
    assert_eq!(row.status, SessionStatus::InProgress);
    assert_eq!(row.participants, vec![party("device"), party("server")]);
    assert_eq!((row.threshold_t, row.threshold_n), (2, 3));
    assert_eq!(row.key_id, Some(key_id));
    assert_eq!(
        row.public_key_hex,
        Some(hex::encode(group_key().as_bytes()))
    );
    assert_eq!(row.signature_r_hex, None);

    f.session(
        id,
        &[
            reported("device", sig.clone(), 13),
            reported("server", sig.clone(), 14),
            completed(sig, 14),
        ],
    )
    .await;
    f.runner.catch_up().await.unwrap();
    let row = f.row(id).await;
    assert_eq!((row.status, row.reported), (SessionStatus::Completed, 2));
    assert_eq!(row.signature_r_hex, Some("ab".repeat(32)));
    assert_eq!(row.signature_s_hex, Some("cd".repeat(32)));
    assert_eq!(row.recovery_id, Some(1));
    assert_eq!(row.failure, None);
}

async fn a_refresh_session_shows_its_key_and_completes_refreshed(backend: TestBackend) {
    let f = Fixture::new(backend).await;
    let key_id = KeyId::of_keygen(SessionId::new());
    let id = SessionId::new();
    let spec = SessionSpec::Refresh {
        key: KeyRef {
            key_id,
            public_key: group_key(),
            threshold: Threshold::new(2, 3).unwrap(),
            parties: participants(),
            epoch: 2,
        },
        repair: None,
    };
    let outcome = PartyOutcome::Refreshed {
        public_key: group_key(),
        digest: RefreshDigest::from_bytes([4; 32]),
    };
    f.session(
        id,
        &[
            created(id, spec, participants(), 20),
            joined("device", 21),
            joined("server", 22),
            joined("recovery", 23),
            started(23),
            reported("device", outcome.clone(), 24),
        ],
    )
    .await;
    f.runner.catch_up().await.unwrap();
    let row = f.row(id).await;
    assert_eq!(row.kind, SessionKind::Refresh);
    assert_eq!(
        (row.status, row.joined, row.reported),
        (SessionStatus::InProgress, 3, 1)
    );
    assert_eq!(
        row.participants,
        vec![party("device"), party("server"), party("recovery")]
    );
    assert_eq!(row.key_id, Some(key_id));

    let position = f
        .session(
            id,
            &[
                reported("server", outcome.clone(), 25),
                reported("recovery", outcome.clone(), 26),
                completed(outcome, 26),
            ],
        )
        .await;
    f.runner.catch_up().await.unwrap();
    let row = f.row(id).await;
    assert_eq!((row.status, row.reported), (SessionStatus::Completed, 3));
    assert_eq!(
        row.public_key_hex,
        Some(hex::encode(group_key().as_bytes()))
    );
    assert_eq!(
        (row.signature_r_hex, row.recovery_id, row.failure),
        (None, None, None)
    );
    assert_eq!((row.updated_at, row.last_position), (at(26), position));
}

async fn a_failed_session_records_the_reason_as_text(backend: TestBackend) {
    let f = Fixture::new(backend).await;
    let id = SessionId::new();
    let reason = FailureReason::PartyAborted {
        reported_by: party("device"),
        culprits: vec![party("server")],
        detail: "bad proof".into(),
    };
    f.session(
        id,
        &[
            keygen_created(id, 0),
            joined("device", 1),
            joined("server", 2),
            joined("recovery", 3),
            started(3),
            SessionEvent::SessionFailed { reason, at: at(4) },
        ],
    )
    .await;
    f.runner.catch_up().await.unwrap();
    let row = f.row(id).await;
    assert_eq!(row.status, SessionStatus::Failed);
    assert_eq!(
        row.failure.as_deref(),
        Some("device aborted: bad proof; blames server")
    );
    assert_eq!((row.public_key_hex, row.updated_at), (None, at(4)));
}

async fn an_expired_session_shows_expired(backend: TestBackend) {
    let f = Fixture::new(backend).await;
    let id = SessionId::new();
    f.session(
        id,
        &[
            keygen_created(id, 0),
            joined("device", 1),
            SessionEvent::SessionExpired { at: at(600_000) },
        ],
    )
    .await;
    f.runner.catch_up().await.unwrap();
    let row = f.row(id).await;
    assert_eq!((row.status, row.joined), (SessionStatus::Expired, 1));
    assert_eq!((row.failure, row.updated_at), (None, at(600_000)));
    assert_eq!(f.sessions().get(SessionId::new()).await.unwrap(), None);
}

async fn open_sessions_are_the_created_and_in_progress_ones(backend: TestBackend) {
    let f = Fixture::new(backend).await;
    let [created, running, done, failed, expired] = [(); 5].map(|()| SessionId::new());
    f.session(created, &[keygen_created(created, 0), joined("device", 1)])
        .await;
    f.session(
        running,
        &[
            keygen_created(running, 0),
            joined("device", 1),
            joined("server", 2),
            joined("recovery", 3),
            started(3),
        ],
    )
    .await;
    f.session(
        done,
        &[
            keygen_created(done, 0),
            completed(PartyOutcome::PublicKey(group_key()), 1),
        ],
    )
    .await;
    f.session(
        failed,
        &[
            keygen_created(failed, 0),
            SessionEvent::SessionFailed {
                reason: FailureReason::Closed {
                    reason: "operator".into(),
                },
                at: at(1),
            },
        ],
    )
    .await;
    f.session(
        expired,
        &[
            keygen_created(expired, 0),
            SessionEvent::SessionExpired { at: at(600_000) },
        ],
    )
    .await;
    assert_eq!(
        f.sessions().open_sessions().await.unwrap(),
        Vec::<SessionId>::new(),
        "nothing is projected before the runner catches up"
    );
    f.runner.catch_up().await.unwrap();
    let mut open = vec![created, running];
    open.sort();
    assert_eq!(f.sessions().open_sessions().await.unwrap(), open);
}

async fn the_checkpoint_advances_and_catching_up_again_applies_nothing_twice(backend: TestBackend) {
    let f = Fixture::new(backend).await;
    assert_eq!(f.runner.checkpoint().await.unwrap(), 0);
    assert_eq!(f.runner.catch_up().await.unwrap(), 0, "nothing stored yet");

    let id = SessionId::new();
    let first = f.session(id, &keygen_lifecycle(id, 0)[..4]).await;
    assert_eq!(f.runner.catch_up().await.unwrap(), first);
    assert_eq!(f.runner.checkpoint().await.unwrap(), first);
    assert_eq!(*f.runner.progress().borrow(), first);
    let before = f.row(id).await;
    assert_eq!(before.joined, 3);

    // Again, and through a second runner that starts from the stored checkpoint.
    assert_eq!(f.runner.catch_up().await.unwrap(), first);
    let other = runner_on(f.store.clone(), f.db.models(), SessionStatusProjection::new).await;
    assert_eq!(*other.progress().borrow(), first);
    assert_eq!(other.catch_up().await.unwrap(), first);
    assert_eq!(f.row(id).await, before);

    let second = f.session(id, &keygen_lifecycle(id, 0)[4..5]).await;
    assert_eq!(other.catch_up().await.unwrap(), second);
    // The first runner's next catch-up finds everything already applied.
    assert_eq!(f.runner.catch_up().await.unwrap(), second);
    let after = f.row(id).await;
    assert_eq!((after.status, after.joined), (SessionStatus::InProgress, 3));
    assert_eq!(f.count_rows().await, 1);
}

/// Several sessions in every status, interleaved in the log.
async fn record_a_mixed_history(f: &Fixture) {
    let keygen = SessionId::new();
    let signing = SessionId::new();
    let failed = SessionId::new();
    let expired = SessionId::new();
    let running = SessionId::new();
    let history = keygen_lifecycle(keygen, 0);
    f.session(keygen, &history[..5]).await;
    f.session(
        expired,
        &[keygen_created(expired, 100), joined("device", 101)],
    )
    .await;
    f.session(keygen, &history[5..]).await;
    let sig = PartyOutcome::Signature(signature());
    f.session(
        signing,
        &[
            signing_created(signing, KeyId::of_keygen(keygen), 200),
            joined("server", 201),
            joined("device", 202),
            started(202),
            reported("server", sig.clone(), 203),
            reported("device", sig.clone(), 204),
            completed(sig, 204),
        ],
    )
    .await;
    f.session(
        failed,
        &[
            keygen_created(failed, 300),
            joined("device", 301),
            joined("server", 301),
            joined("recovery", 302),
            started(302),
            SessionEvent::SessionFailed {
                reason: FailureReason::PublicKeyMismatch {
                    disagreeing: vec![party("recovery")],
                },
                at: at(303),
            },
        ],
    )
    .await;
    f.session(expired, &[SessionEvent::SessionExpired { at: at(700_100) }])
        .await;
    f.session(
        running,
        &[keygen_created(running, 400), joined("server", 401)],
    )
    .await;
}

async fn a_rebuild_from_position_0_yields_exactly_the_live_rows(backend: TestBackend) {
    let f = Fixture::new(backend).await;
    // Kept live: caught up after every append.
    let keygen = SessionId::new();
    for event in keygen_lifecycle(keygen, -50) {
        f.session(keygen, &[event]).await;
        f.runner.catch_up().await.unwrap();
    }
    record_a_mixed_history(&f).await;
    let head = f.runner.catch_up().await.unwrap();
    let live = f.sessions().list(100).await.unwrap();
    assert_eq!(live.len(), 6);
    let statuses: Vec<_> = live.iter().map(|r| r.status.to_string()).collect();
    assert_eq!(
        statuses,
        [
            "created",
            "failed",
            "completed",
            "expired",
            "completed",
            "completed"
        ],
        "newest first"
    );

    // Damage the model so that a rebuild which does not reset and replay shows up.
    f.db.exec("UPDATE session_status SET status = 'failed', joined = 99")
        .await;
    f.db.models()
        .execute(
            sql(
                "INSERT INTO session_status SELECT $1, kind, status, threshold_t, threshold_n, \
                 participants, joined, reported, key_id, public_key_hex, signature_r_hex, \
                 signature_s_hex, recovery_id, failure, created_at, updated_at, last_position \
                 FROM session_status LIMIT 1",
            )
            .bind(SessionId::new().to_string()),
        )
        .await
        .unwrap();
    assert_ne!(f.sessions().list(100).await.unwrap(), live);

    assert_eq!(f.runner.rebuild().await.unwrap(), head);
    assert_eq!(f.runner.checkpoint().await.unwrap(), head);
    assert_eq!(f.sessions().list(100).await.unwrap(), live);
    assert_eq!(f.sessions().list(2).await.unwrap(), live[..2]);
}

async fn follow_mode_applies_events_appended_after_it_started(backend: TestBackend) {
    let f = Fixture::new(backend).await;
    let early = SessionId::new();
    f.session(early, &[keygen_created(early, 0)]).await;

    let follower = runner_on(f.store.clone(), f.db.models(), SessionStatusProjection::new).await;
    let mut progress = follower.progress();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = follower.spawn(async {
        // A dropped sender stops the runner too.
        let _ = stopped.await;
    });

    let id = SessionId::new();
    let history = keygen_lifecycle(id, 10);
    for (i, event) in history.iter().enumerate() {
        let position = f.session(id, std::slice::from_ref(event)).await;
        tokio::time::timeout(WAIT, progress.wait_for(|p| *p >= position))
            .await
            .expect("the follower applies the new event in time")
            .unwrap();
        let row = f.row(id).await;
        assert_eq!(row.last_position, position, "after event {i}");
    }
    let row = f.row(id).await;
    assert_eq!((row.status, row.reported), (SessionStatus::Completed, 3));
    assert_eq!(f.row(early).await.status, SessionStatus::Created);

    stop.send(()).unwrap();
    let checkpoint = tokio::time::timeout(WAIT, task)
        .await
        .expect("the follower stops on shutdown")
        .unwrap()
        .unwrap();
    assert_eq!(checkpoint, f.store.head().await.unwrap());
    assert_eq!(f.runner.checkpoint().await.unwrap(), checkpoint);
}

/// Two followers of one projection (say, two gateway replicas) both receive every
/// event; the shared checkpoint makes each event count once.
async fn two_followers_of_one_projection_apply_each_event_once(backend: TestBackend) {
    let f = Fixture::new(backend).await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut followers = Vec::new();
    for _ in 0..2 {
        // Each on a pool of its own, as in two processes.
        let runner = runner_on(
            f.store.clone(),
            f.db.other_pool().await,
            SessionStatusProjection::new,
        )
        .await;
        let progress = runner.progress();
        let mut stopped = stopped.clone();
        let task = runner.spawn(async move {
            let _ = stopped.wait_for(|s| *s).await;
        });
        followers.push((progress, task));
    }
    let ids = [SessionId::new(), SessionId::new(), SessionId::new()];
    let mut head = 0;
    for (i, event) in (0..9)
        .flat_map(|i| ids.iter().map(move |id| (*id, i)))
        .enumerate()
    {
        let (id, step) = event;
        head = f
            .session(id, &keygen_lifecycle(id, i as i64)[step..=step])
            .await;
    }
    for (progress, _) in &mut followers {
        tokio::time::timeout(WAIT, progress.wait_for(|p| *p >= head))
            .await
            .expect("both followers reach the head")
            .unwrap();
    }
    for id in ids {
        let row = f.row(id).await;
        assert_eq!(
            (row.status, row.joined, row.reported),
            (SessionStatus::Completed, 3, 3)
        );
    }
    stop.send_replace(true);
    for (_, task) in followers {
        assert_eq!(task.await.unwrap().unwrap(), head);
    }
}

/// Another runner's rebuild resets the checkpoint and empties the model while a
/// follower is running: the follower must notice and replay from the stored
/// checkpoint rather than carry on from where it was.
async fn a_follower_replays_when_a_rebuild_resets_the_checkpoint_under_it(backend: TestBackend) {
    let f = Fixture::new(backend).await;
    record_a_mixed_history(&f).await;
    let follower = runner_on(f.store.clone(), f.db.models(), SessionStatusProjection::new).await;
    let mut progress = follower.progress();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = follower.spawn(async {
        let _ = stopped.await;
    });
    let head = f.store.head().await.unwrap();
    tokio::time::timeout(WAIT, progress.wait_for(|p| *p >= head))
        .await
        .unwrap()
        .unwrap();
    let live = f.sessions().list(100).await.unwrap();

    // What the first step of a rebuild does, before its replay.
    f.db.exec("DELETE FROM session_status").await;
    f.db.models()
        .execute(
            sql("UPDATE projection_checkpoints SET position = 0 WHERE name = $1")
                .bind(SessionStatusProjection::NAME),
        )
        .await
        .unwrap();

    let id = SessionId::new();
    let position = f.session(id, &keygen_lifecycle(id, 1_000)[..2]).await;
    tokio::time::timeout(WAIT, progress.wait_for(|p| *p >= position))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(f.row(id).await.joined, 1);
    let all = f.sessions().list(100).await.unwrap();
    assert_eq!(all[0].session_id, id, "newest first");
    assert_eq!(all[1..], live[..]);

    // The live runner agrees: a full rebuild yields the same rows.
    assert_eq!(f.runner.rebuild().await.unwrap(), position);
    assert_eq!(f.sessions().list(100).await.unwrap(), all);

    stop.send(()).unwrap();
    assert_eq!(task.await.unwrap().unwrap(), position);
}

async fn events_of_other_categories_are_skipped(backend: TestBackend) {
    let f = Fixture::new(backend).await;
    let device = StreamName::new(stream::PARTY, "device").unwrap();
    f.append(
        &device,
        vec![new_event(
            "KeyStored",
            1,
            b"\x00 not a session event".to_vec(),
            at(0),
        )],
    )
    .await;
    let id = SessionId::new();
    f.session(id, &[keygen_created(id, 1)]).await;
    let last = f
        .append(
            &device,
            vec![new_event("SessionCreated", 1, b"{}".to_vec(), at(2))],
        )
        .await;

    assert_eq!(f.runner.catch_up().await.unwrap(), last);
    assert_eq!(f.runner.checkpoint().await.unwrap(), last);
    let rows = f.sessions().list(10).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].session_id, id);
}

async fn a_corrupt_session_payload_stops_catch_up_before_it(backend: TestBackend) {
    let f = Fixture::new(backend).await;
    let id = SessionId::new();
    let good = f.session(id, &keygen_lifecycle(id, 0)[..2]).await;
    let corrupt = f
        .append(
            &session_stream(id),
            vec![new_event(
                "ParticipantJoined",
                1,
                b"{not json".to_vec(),
                at(2),
            )],
        )
        .await;
    f.session(id, &keygen_lifecycle(id, 0)[3..4]).await;

    let error = f.runner.catch_up().await.unwrap_err();
    assert!(
        matches!(&error, ProjectionError::Decode { position, event_type, .. }
            if *position == corrupt && event_type == "ParticipantJoined"),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains(&format!("position {corrupt}")) && message.contains("cannot decode"),
        "{message}"
    );
    assert_eq!(f.runner.checkpoint().await.unwrap(), good);
    assert_eq!(*f.runner.progress().borrow(), good);
    assert_eq!(f.row(id).await.joined, 1, "events before it stay applied");

    // It does not get past it on a second try either, nor in follow mode.
    assert!(f.runner.catch_up().await.is_err());
    assert_eq!(f.runner.checkpoint().await.unwrap(), good);
    let follower = runner_on(f.store.clone(), f.db.models(), SessionStatusProjection::new).await;
    let outcome = tokio::time::timeout(WAIT, follower.run(std::future::pending()))
        .await
        .expect("the follower stops on the corrupt event");
    assert!(
        matches!(outcome, Err(ProjectionError::Decode { position, .. }) if position == corrupt)
    );
    assert_eq!(f.runner.checkpoint().await.unwrap(), good);
    assert_eq!(f.row(id).await.joined, 1);
}

async fn unknown_event_types_and_versions_in_session_streams_are_errors(backend: TestBackend) {
    for (event_type, version) in [("SessionPaused", 1), ("SessionStarted", 99)] {
        let f = Fixture::new(backend).await;
        let id = SessionId::new();
        let good = f.session(id, &[keygen_created(id, 0)]).await;
        let payload = mpc_schemas::stored::session::encode(&started(1))
            .unwrap()
            .payload;
        f.append(
            &session_stream(id),
            vec![new_event(event_type, version, payload, at(1))],
        )
        .await;
        let error = f.runner.catch_up().await.unwrap_err();
        assert!(
            matches!(error, ProjectionError::Decode { .. }),
            "{event_type} v{version}: {error:?}"
        );
        assert_eq!(f.runner.checkpoint().await.unwrap(), good);
        assert_eq!(f.row(id).await.status, SessionStatus::Created);
    }
}

async fn session_events_that_contradict_the_model_are_errors(backend: TestBackend) {
    // An event for a session that was never created.
    let f = Fixture::new(backend).await;
    let id = SessionId::new();
    f.session(id, &[joined("device", 0)]).await;
    let error = f.runner.catch_up().await.unwrap_err();
    assert!(
        matches!(&error, ProjectionError::Inconsistent { detail, .. } if detail.contains("never created")),
        "{error:?}"
    );
    assert_eq!(f.runner.checkpoint().await.unwrap(), 0);

    // A SessionCreated naming another session than its stream.
    let f = Fixture::new(backend).await;
    let id = SessionId::new();
    f.session(id, &[keygen_created(SessionId::new(), 0)]).await;
    let error = f.runner.catch_up().await.unwrap_err();
    assert!(
        matches!(error, ProjectionError::Inconsistent { .. }),
        "{error:?}"
    );
    assert_eq!(f.count_rows().await, 0);

    // A second SessionCreated in one stream.
    let f = Fixture::new(backend).await;
    let id = SessionId::new();
    let first = f
        .session(id, &[keygen_created(id, 0), keygen_created(id, 1)])
        .await
        - 1;
    let error = f.runner.catch_up().await.unwrap_err();
    assert!(
        matches!(&error, ProjectionError::Inconsistent { detail, .. } if detail.contains("already created")),
        "{error:?}"
    );
    assert_eq!(f.runner.checkpoint().await.unwrap(), first);
    assert_eq!(f.row(id).await.created_at, at(0));
}

on_every_backend!(
    a_keygen_session_goes_from_created_through_joined_and_started_to_completed,
    a_signing_session_shows_its_key_and_completes_with_the_signature,
    a_refresh_session_shows_its_key_and_completes_refreshed,
    a_failed_session_records_the_reason_as_text,
    an_expired_session_shows_expired,
    open_sessions_are_the_created_and_in_progress_ones,
    the_checkpoint_advances_and_catching_up_again_applies_nothing_twice,
    a_rebuild_from_position_0_yields_exactly_the_live_rows,
    follow_mode_applies_events_appended_after_it_started,
    two_followers_of_one_projection_apply_each_event_once,
    a_follower_replays_when_a_rebuild_resets_the_checkpoint_under_it,
    events_of_other_categories_are_skipped,
    a_corrupt_session_payload_stops_catch_up_before_it,
    unknown_event_types_and_versions_in_session_streams_are_errors,
    session_events_that_contradict_the_model_are_errors,
);
