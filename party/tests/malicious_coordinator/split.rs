//! A coordinator that tells the parties of one session different things, over real
//! nodes running real DKLs23 runs on the in-process transport: different views at
//! keygen, and different endings of a refresh. The honest parties must notice the
//! split before anything secret-bearing leaves them, and every holder must still
//! hold a usable share afterwards.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use mpc_crypto::verify_signature;
use mpc_engine::{Dkls23Engine, EngineError};
use mpc_events::{
    KeyId, KeyRef, MessageHash, Participant, PartyId, PartyOutcome, PublicKey, SessionId,
    SessionSpec, SessionStatus, SessionView, Threshold, Timestamp,
};
use mpc_party::{
    CoordinatorClient, CoordinatorError, KeyPolicy, PartyError, PartyIdentity, PartyNode,
};
use mpc_schemas::Envelope;
use mpc_transport::{InProcessTransport, Inbox, Transport, TransportError};
use mpc_vault::{FileVault, ShareVault, VaultError};
use sha2::{Digest, Sha256};
use tokio::sync::Notify;

const NAMES: [&str; 3] = ["device", "server", "recovery"];
/// The round of the refresh attestations (the platform's round after the engine's).
const ATTEST_ROUND: u16 = u16::MAX;

/// What the lying coordinator tells each party: its own view of each session,
/// and how a session ended once the party has reported.
#[derive(Default)]
struct Script {
    views: Mutex<HashMap<(SessionId, PartyId), SessionView>>,
    endings: Mutex<HashMap<(SessionId, PartyId), SessionStatus>>,
    reported: Mutex<HashSet<(SessionId, PartyId)>>,
    report: Notify,
    failures: Mutex<Vec<(PartyId, Vec<PartyId>)>>,
}

/// One party's connection to the scripted coordinator.
struct Client {
    party: PartyId,
    script: Arc<Script>,
}

#[async_trait]
impl CoordinatorClient for Client {
    async fn join(
        &self,
        session: SessionId,
        party: &PartyId,
        _: &str,
    ) -> Result<SessionView, CoordinatorError> {
        let views = self.script.views.lock().unwrap();
        views
            .get(&(session, party.clone()))
            .cloned()
            .ok_or_else(|| CoordinatorError::Refused("not invited".into()))
    }

    async fn wait_started(&self, _: SessionId) -> Result<SessionStatus, CoordinatorError> {
        Ok(SessionStatus::InProgress)
    }

    /// Answers only once this party has reported, with the scripted ending.
    async fn wait_finished(&self, session: SessionId) -> Result<SessionStatus, CoordinatorError> {
        let me = (session, self.party.clone());
        loop {
            let reported = self.script.report.notified();
            if self.script.reported.lock().unwrap().contains(&me) {
                break;
            }
            reported.await;
        }
        let ending = self.script.endings.lock().unwrap().get(&me).copied();
        match ending {
            Some(status) => Ok(status),
            None => std::future::pending().await,
        }
    }

    async fn report_completion(
        &self,
        session: SessionId,
        party: &PartyId,
        _: PartyOutcome,
    ) -> Result<(), CoordinatorError> {
        self.script
            .reported
            .lock()
            .unwrap()
            .insert((session, party.clone()));
        self.script.report.notify_waiters();
        Ok(())
    }

    async fn report_failure(
        &self,
        _: SessionId,
        party: &PartyId,
        culprits: Vec<PartyId>,
        _: String,
    ) -> Result<(), CoordinatorError> {
        self.script
            .failures
            .lock()
            .unwrap()
            .push((party.clone(), culprits));
        Ok(())
    }
}

/// The in-process transport, recording each envelope's sender and round, and
/// dropping the envelopes of one sender and round when told to.
struct Relay {
    inner: InProcessTransport,
    sent: Mutex<Vec<(PartyId, u16)>>,
    withhold: Mutex<Option<(PartyId, u16)>>,
}

#[async_trait]
impl Transport for Relay {
    async fn publish(&self, envelope: &Envelope) -> Result<(), TransportError> {
        let slot = (envelope.sender.clone(), envelope.round);
        self.sent.lock().unwrap().push(slot.clone());
        if self.withhold.lock().unwrap().as_ref() == Some(&slot) {
            return Ok(());
        }
        self.inner.publish(envelope).await
    }

    async fn subscribe(
        &self,
        session: SessionId,
        party: &PartyId,
    ) -> Result<Inbox, TransportError> {
        self.inner.subscribe(session, party).await
    }

    async fn close_session(&self, session: SessionId) -> Result<(), TransportError> {
        self.inner.close_session(session).await
    }

    async fn ready(&self) -> Result<(), TransportError> {
        self.inner.ready().await
    }
}

struct World {
    script: Arc<Script>,
    relay: Arc<Relay>,
    nodes: Vec<Arc<PartyNode>>,
    vaults: Vec<Arc<FileVault>>,
    _dirs: Vec<tempfile::TempDir>,
}

fn party(name: &str) -> PartyId {
    PartyId::parse(name).unwrap()
}

fn in_seconds(seconds: i64) -> Timestamp {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    Timestamp::from_millis(i64::try_from(now.as_millis()).unwrap() + seconds * 1000)
}

fn world() -> World {
    let script = Arc::new(Script::default());
    let relay = Arc::new(Relay {
        inner: InProcessTransport::new(),
        sent: Mutex::new(Vec::new()),
        withhold: Mutex::new(None),
    });
    let mut world = World {
        script: script.clone(),
        relay: relay.clone(),
        nodes: Vec::new(),
        vaults: Vec::new(),
        _dirs: Vec::new(),
    };
    for name in NAMES {
        let dir = tempfile::tempdir().unwrap();
        let vault = Arc::new(FileVault::create(dir.path(), b"test passphrase").unwrap());
        world.nodes.push(Arc::new(PartyNode::new(
            party(name),
            PartyIdentity::generate(),
            Arc::new(Dkls23Engine),
            vault.clone(),
            relay.clone(),
            Arc::new(Client {
                party: party(name),
                script: script.clone(),
            }),
        )));
        world.vaults.push(vault);
        world._dirs.push(dir);
    }
    world
}

impl World {
    fn roster(&self) -> Vec<Participant> {
        self.nodes
            .iter()
            .map(|node| Participant {
                party_id: node.id().clone(),
                identity: node.identity().public(),
            })
            .collect()
    }

    /// Shows `view` to the participants at `to` (positions in [`NAMES`]).
    fn show(&self, view: &SessionView, to: &[usize]) {
        let mut views = self.script.views.lock().unwrap();
        for &i in to {
            views.insert((view.session_id, party(NAMES[i])), view.clone());
        }
    }

    async fn keygen(&self) -> KeyRef {
        let threshold = Threshold::new(2, 3).unwrap();
        let view = view(
            SessionSpec::Keygen {
                threshold,
                policy: KeyPolicy::AnyRequest,
            },
            &self.roster(),
            &[0, 1, 2],
        );
        self.show(&view, &[0, 1, 2]);
        let runs = self.nodes.iter().map(|node| {
            let node = node.clone();
            async move { node.keygen(view.session_id, "token").await.unwrap() }
        });
        let keys: Vec<PublicKey> = futures::future::join_all(runs).await;
        assert!(keys.iter().all(|k| *k == keys[0]));
        KeyRef {
            key_id: KeyId::of_keygen(view.session_id),
            public_key: keys[0],
            threshold,
            parties: self.roster(),
            epoch: 1,
        }
    }

    /// Signs with `signers` at `key`'s generation; the signature must verify.
    async fn sign(&self, key: &KeyRef, signers: &[usize]) {
        let message = b"pay the invoice".to_vec();
        let message_hash = MessageHash::from_bytes(Sha256::digest(&message).into());
        let spec = SessionSpec::Signing {
            key: key.clone(),
            message_hash,
            message: Some(message),
            approval: None,
        };
        let view = view(spec, &self.roster(), signers);
        self.show(&view, signers);
        let runs = signers.iter().map(|&i| {
            let node = self.nodes[i].clone();
            async move { node.sign(view.session_id, "token").await }
        });
        for signature in futures::future::join_all(runs).await {
            let signature = signature.expect("every signer holds the generation");
            assert!(verify_signature(&key.public_key, &message_hash, &signature));
        }
    }

    /// Runs a refresh of `key` whose ending the coordinator tells each party as
    /// `endings` says; returns each party's result.
    async fn refresh(
        &self,
        key: &KeyRef,
        endings: [SessionStatus; 3],
        deadline_seconds: i64,
    ) -> (SessionId, Vec<Result<(), PartyError>>) {
        let spec = SessionSpec::Refresh {
            key: key.clone(),
            repair: None,
        };
        let mut view = view(spec, &self.roster(), &[0, 1, 2]);
        view.expires_at = in_seconds(deadline_seconds);
        self.show(&view, &[0, 1, 2]);
        for (name, ending) in NAMES.iter().zip(endings) {
            let slot = (view.session_id, party(name));
            self.script.endings.lock().unwrap().insert(slot, ending);
        }
        let runs = self.nodes.iter().map(|node| {
            let node = node.clone();
            async move { node.refresh(view.session_id, "token").await.map(|_| ()) }
        });
        (view.session_id, futures::future::join_all(runs).await)
    }

    /// The share generations party `i` holds of `key`, of 1 and 2.
    fn generations(&self, i: usize, key: &KeyRef) -> Vec<u32> {
        [1, 2]
            .into_iter()
            .filter(|&version| {
                match self.vaults[i].get_version(&party(NAMES[i]), &key.key_id, version) {
                    Ok(record) => record.share.public_key == key.public_key,
                    Err(VaultError::NotFound { .. }) => false,
                    Err(e) => panic!("vault: {e}"),
                }
            })
            .collect()
    }
}

fn view(spec: SessionSpec, roster: &[Participant], at: &[usize]) -> SessionView {
    SessionView {
        session_id: SessionId::new(),
        spec,
        participants: at
            .iter()
            .map(|&i| (u8::try_from(i + 1).unwrap(), roster[i].clone()))
            .collect(),
        status: SessionStatus::InProgress,
        expires_at: in_seconds(60),
    }
}

/// Runs a keygen whose view `honest` device and server see and `split` the
/// recovery party sees; every party must abort naming another before the
/// deadline. Returns the culprit each party named, after checking that nothing
/// but view commitments (round 0) was sent.
async fn split_keygen(w: &World, honest: &SessionView, split: &SessionView) -> Vec<Option<u8>> {
    w.show(honest, &[0, 1]);
    w.show(split, &[2]);
    let runs = w.nodes.iter().map(|node| {
        let node = node.clone();
        let session = honest.session_id;
        async move { node.keygen(session, "token").await }
    });
    let results = tokio::time::timeout(Duration::from_secs(30), futures::future::join_all(runs))
        .await
        .expect("the split is noticed before the deadline");
    let sent = w.relay.sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 3, "{sent:?}");
    assert!(sent.iter().all(|(_, round)| *round == 0), "{sent:?}");
    results
        .iter()
        .map(|result| match result {
            Err(PartyError::Engine(EngineError::Aborted { culprit, .. })) => {
                culprit.map(|i| i.get())
            }
            other => panic!("expected an abort naming a party, got {other:?}"),
        })
        .collect()
}

/// The coordinator shows the recovery party a keygen in which the server's
/// identity key is its own. Each party's view commitment then differs from
/// another's: the run aborts naming the party whose commitment differs, and no
/// party sends a single protocol message (keygen fragments would be the first).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keygen_shown_differently_to_one_party_aborts_before_any_protocol_message() {
    let w = world();
    let threshold = Threshold::new(2, 3).unwrap();
    let policy = KeyPolicy::AnyRequest;
    let honest = view(
        SessionSpec::Keygen { threshold, policy },
        &w.roster(),
        &[0, 1, 2],
    );
    let mut split = honest.clone();
    split.participants[1].1.identity = PartyIdentity::generate().public();
    // Device and server see the recovery party commit to another view; the
    // recovery party sees the device's commitment differ (the server's does not
    // even verify under the key it was shown).
    assert_eq!(
        split_keygen(&w, &honest, &split).await,
        [Some(3), Some(3), Some(1)]
    );
    let failures = w.script.failures.lock().unwrap().clone();
    assert!(failures.contains(&(party("device"), vec![party("recovery")])));
    assert!(failures.contains(&(party("recovery"), vec![party("device")])));
}

/// The coordinator tells device and server the new key signs any request and the
/// recovery party that it signs only approved payloads (or the other way round: a
/// key some holders gate and others do not). The policy is part of the view every
/// party commits to, so no key comes out of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keygen_with_the_policy_told_differently_to_one_party_makes_no_key() {
    let w = world();
    let threshold = Threshold::new(2, 3).unwrap();
    let roster = w.roster();
    let honest = view(
        SessionSpec::Keygen {
            threshold,
            policy: KeyPolicy::ApprovedOnly,
        },
        &roster,
        &[0, 1, 2],
    );
    let split = SessionView {
        spec: SessionSpec::Keygen {
            threshold,
            policy: KeyPolicy::AnyRequest,
        },
        ..honest.clone()
    };
    let culprits = split_keygen(&w, &honest, &split).await;
    assert_eq!(culprits, [Some(3), Some(3), Some(1)]);
    for (node, vault) in w.nodes.iter().zip(&w.vaults) {
        let stored = vault.get(node.id(), &KeyId::of_keygen(honest.session_id));
        assert!(
            matches!(stored, Err(VaultError::NotFound { .. })),
            "{} stored a share",
            node.id()
        );
    }
}

/// After a refresh every holder attested, the coordinator tells the device and the
/// server it completed and the recovery party it failed. Whoever was told what,
/// the new generation keeps all three shares: the recovery party keeps both, and
/// the server and recovery sign with the new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_told_completed_to_some_and_failed_to_others_keeps_the_new_generation_whole() {
    let w = world();
    let key = w.keygen().await;
    let (_, results) = w
        .refresh(
            &key,
            [
                SessionStatus::Completed,
                SessionStatus::Completed,
                SessionStatus::Failed,
            ],
            60,
        )
        .await;
    assert!(results[0].is_ok() && results[1].is_ok(), "{results:?}");
    assert!(
        matches!(results[2], Err(PartyError::Ended(_, SessionStatus::Failed))),
        "{results:?}"
    );
    assert_eq!(w.generations(0, &key), vec![2]);
    assert_eq!(w.generations(1, &key), vec![2]);
    assert_eq!(w.generations(2, &key), vec![1, 2]);
    let refreshed = KeyRef {
        epoch: 2,
        ..key.clone()
    };
    w.sign(&refreshed, &[1, 2]).await;
}

/// The relay withholds the recovery party's attestation from the others, and the
/// coordinator tells everyone the refresh completed. Only a party holding every
/// holder's attestation retires its old share: the device and the server keep
/// both generations and never report the refresh done; the recovery party, which
/// has all attestations, moves on, and the new generation signs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_missing_an_attestation_keeps_its_old_share_whatever_the_coordinator_says() {
    let w = world();
    let key = w.keygen().await;
    *w.relay.withhold.lock().unwrap() = Some((party("recovery"), ATTEST_ROUND));
    let (session, results) = w.refresh(&key, [SessionStatus::Completed; 3], 10).await;
    assert!(
        matches!(results[0], Err(PartyError::Timeout)),
        "{results:?}"
    );
    assert!(
        matches!(results[1], Err(PartyError::Timeout)),
        "{results:?}"
    );
    assert!(results[2].is_ok(), "{results:?}");
    assert_eq!(w.generations(0, &key), vec![1, 2]);
    assert_eq!(w.generations(1, &key), vec![1, 2]);
    assert_eq!(w.generations(2, &key), vec![2]);
    let reported = w.script.reported.lock().unwrap().clone();
    let reported: Vec<&PartyId> = reported
        .iter()
        .filter(|(s, _)| *s == session)
        .map(|(_, p)| p)
        .collect();
    assert_eq!(reported, vec![&party("recovery")]);
    let refreshed = KeyRef {
        epoch: 2,
        ..key.clone()
    };
    w.sign(&refreshed, &[0, 2]).await;
}
