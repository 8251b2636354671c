//! The actor shell's memory bound: idle actors with nothing scheduled stop and are
//! loaded again from the log on the next command.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use mpc_actors::{ActorRegistry, Clock, CommandMeta, SessionAggregate, SystemClock};
use mpc_events::{
    IdentityKey, KeyPolicy, Participant, PartyId, SessionCommand, SessionId, SessionSpec,
    SessionStatus, Threshold, TokenDigest,
};
use mpc_store::{EventStore, SqliteStore};

fn create(session: SessionId, now: mpc_events::Timestamp) -> SessionCommand {
    let participants: Vec<_> = ["device", "server"]
        .iter()
        .enumerate()
        .map(|(i, n)| Participant {
            party_id: PartyId::parse(*n).unwrap(),
            identity: IdentityKey::new(&[i as u8 + 1; 32], &[i as u8 + 9; 32]).unwrap(),
        })
        .collect();
    let join_tokens: BTreeMap<_, _> = participants
        .iter()
        .map(|p| (p.party_id.clone(), TokenDigest::from_bytes([7; 32])))
        .collect();
    SessionCommand::Create {
        session_id: session,
        spec: SessionSpec::Keygen {
            threshold: Threshold::new(2, 2).unwrap(),
            policy: KeyPolicy::AnyRequest,
        },
        participants,
        join_tokens,
        join_expires_at: now.plus_millis(60_000),
        expires_at: now.plus_millis(120_000),
        now,
    }
}

async fn until(mut condition: impl FnMut() -> bool) -> bool {
    tokio::time::timeout(Duration::from_secs(5), async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .is_ok()
}

#[tokio::test]
async fn a_finished_session_leaves_memory_when_idle_and_comes_back_from_the_log() {
    let store: Arc<dyn EventStore> = Arc::new(SqliteStore::in_memory().await.unwrap());
    let clock = Arc::new(SystemClock);
    let registry = ActorRegistry::<SessionAggregate>::with_idle_timeout(
        store,
        clock.clone(),
        Duration::from_millis(50),
    );
    let finished = SessionId::new();
    let open = SessionId::new();
    for id in [finished, open] {
        registry
            .execute(&id.to_string(), create(id, clock.now()), CommandMeta::new())
            .await
            .unwrap();
    }
    let close = SessionCommand::Close {
        reason: "done".into(),
        now: clock.now(),
    };
    registry
        .execute(&finished.to_string(), close, CommandMeta::new())
        .await
        .unwrap();
    assert_eq!(registry.live_actors(), 2);

    // The finished session has no deadline ahead and goes; the open one waits for
    // its expiry and stays.
    assert!(
        until(|| registry.live_actors() == 1).await,
        "no actor stopped"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        registry.live_actors(),
        1,
        "the open session's actor stopped"
    );

    let state = registry.state(&finished.to_string()).await.unwrap();
    assert_eq!(state.0.unwrap().status, SessionStatus::Failed);
    assert_eq!(registry.live_actors(), 2);
}
