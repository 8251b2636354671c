//! Parties repeat the coordinator calls that are safe to repeat while it is
//! unreachable, and only those.
//!
//! Three real party nodes (DKLs23, file vaults, in-process transport) run a 2-of-3
//! keygen against the real coordinator over SQLite. Between each node and the
//! coordinator sits [`Faulty`], which plays the network for that party's reports:
//! the device's first report reaches the coordinator but its answer is lost; the
//! server's first two reports are lost on the way; the recovery key's report gets
//! through. The session must complete with exactly one recorded report per party.
//! Then a refused report is not repeated, and a coordinator that never answers is
//! given up on at the session's deadline.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use mpc_actors::{CommandMeta, Coordinator, CreatedSession, NewKeygen, SystemClock};
use mpc_app::LocalCoordinator;
use mpc_engine::Dkls23Engine;
use mpc_events::{
    KeyPolicy, Participant, PartyId, PartyOutcome, SessionId, SessionStatus, SessionView,
    Threshold, stream,
};
use mpc_party::{CoordinatorClient, CoordinatorError, PartyError, PartyIdentity, PartyNode};
use mpc_store::{EventStore, SqliteStore, StreamName};
use mpc_transport::InProcessTransport;
use mpc_vault::FileVault;

/// What happens to one party's reports.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// The first report is recorded, but its answer never comes back.
    AnswerLost,
    /// The first `n` reports are lost before they reach the coordinator.
    RequestLost(usize),
    /// The coordinator answers every report with a refusal (it never sees them).
    Refused,
    /// No report ever gets through.
    Unreachable,
    None,
}

/// A party's link to the coordinator with [`Fault`]s on its reports, counting them.
struct Faulty {
    inner: LocalCoordinator,
    faults: BTreeMap<PartyId, Fault>,
    reports: Mutex<BTreeMap<PartyId, usize>>,
}

impl Faulty {
    fn reports(&self, party: &str) -> usize {
        self.reports
            .lock()
            .unwrap()
            .get(&pid(party))
            .copied()
            .unwrap_or(0)
    }
}

#[async_trait]
impl CoordinatorClient for Faulty {
    async fn join(
        &self,
        session: SessionId,
        party: &PartyId,
        token: &str,
    ) -> Result<SessionView, CoordinatorError> {
        self.inner.join(session, party, token).await
    }

    async fn wait_started(&self, session: SessionId) -> Result<SessionStatus, CoordinatorError> {
        self.inner.wait_started(session).await
    }

    async fn wait_finished(&self, session: SessionId) -> Result<SessionStatus, CoordinatorError> {
        self.inner.wait_finished(session).await
    }

    async fn report_completion(
        &self,
        session: SessionId,
        party: &PartyId,
        outcome: PartyOutcome,
    ) -> Result<(), CoordinatorError> {
        let attempt = {
            let mut reports = self.reports.lock().unwrap();
            let n = reports.entry(party.clone()).or_default();
            *n += 1;
            *n
        };
        let lost = || Err(CoordinatorError::Unreachable("connection reset".into()));
        match self.faults.get(party).copied().unwrap_or(Fault::None) {
            Fault::AnswerLost if attempt == 1 => {
                self.inner
                    .report_completion(session, party, outcome)
                    .await?;
                lost()
            }
            Fault::RequestLost(n) if attempt <= n => lost(),
            Fault::Unreachable => lost(),
            Fault::Refused => Err(CoordinatorError::Refused("not_in_progress (409)".into())),
            _ => self.inner.report_completion(session, party, outcome).await,
        }
    }

    async fn report_failure(
        &self,
        session: SessionId,
        party: &PartyId,
        culprits: Vec<PartyId>,
        detail: String,
    ) -> Result<(), CoordinatorError> {
        self.inner
            .report_failure(session, party, culprits, detail)
            .await
    }
}

fn pid(name: &str) -> PartyId {
    PartyId::parse(name).unwrap()
}

struct World {
    coordinator: Arc<Coordinator>,
    store: Arc<SqliteStore>,
    link: Arc<Faulty>,
    nodes: Vec<Arc<PartyNode>>,
    _vaults: Vec<tempfile::TempDir>,
}

impl World {
    async fn new(faults: [(&str, Fault); 3]) -> Self {
        let store = Arc::new(SqliteStore::in_memory().await.unwrap());
        let coordinator = Arc::new(Coordinator::new(store.clone(), Arc::new(SystemClock)));
        let link = Arc::new(Faulty {
            inner: LocalCoordinator(coordinator.clone()),
            faults: faults.iter().map(|(p, f)| (pid(p), *f)).collect(),
            reports: Mutex::default(),
        });
        let transport = Arc::new(InProcessTransport::new());
        let mut nodes = Vec::new();
        let mut vaults = Vec::new();
        for (name, _) in faults {
            let dir = tempfile::tempdir().unwrap();
            let vault = FileVault::create(dir.path(), b"retries test passphrase").unwrap();
            vaults.push(dir);
            nodes.push(Arc::new(PartyNode::new(
                pid(name),
                PartyIdentity::generate(),
                Arc::new(Dkls23Engine),
                Arc::new(vault),
                transport.clone(),
                link.clone(),
            )));
        }
        Self {
            coordinator,
            store,
            link,
            nodes,
            _vaults: vaults,
        }
    }

    async fn keygen(&self, ttl: Duration) -> CreatedSession {
        let participants = self
            .nodes
            .iter()
            .map(|n| Participant {
                party_id: n.id().clone(),
                identity: n.identity().public(),
            })
            .collect();
        let request = NewKeygen {
            policy: KeyPolicy::AnyRequest,
            threshold: Threshold::new(2, 3).unwrap(),
            participants,
            ttl,
        };
        self.coordinator
            .create_keygen(request, CommandMeta::new())
            .await
            .unwrap()
    }

    /// Every node runs its side of `created`; their results by party.
    async fn run(&self, created: &CreatedSession) -> BTreeMap<String, Result<(), PartyError>> {
        let tasks: Vec<_> = self
            .nodes
            .iter()
            .map(|node| {
                let token = created.join_tokens[node.id()].expose().to_owned();
                let (party, node, id) = (node.id().to_string(), node.clone(), created.session_id);
                let task = tokio::spawn(async move { node.keygen(id, &token).await.map(|_| ()) });
                (party, task)
            })
            .collect();
        let mut results = BTreeMap::new();
        for (party, task) in tasks {
            results.insert(party, task.await.unwrap());
        }
        results
    }

    /// The types of the events recorded for `session`.
    async fn recorded(&self, session: SessionId) -> Vec<String> {
        let stream = StreamName::new(stream::SESSION, session).unwrap();
        self.store
            .read_stream(&stream, 1)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.event_type)
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_lost_on_the_way_or_on_the_way_back_are_repeated_and_recorded_once() {
    let world = World::new([
        ("device", Fault::AnswerLost),
        ("server", Fault::RequestLost(2)),
        ("recovery", Fault::None),
    ])
    .await;
    let created = world.keygen(Duration::from_secs(60)).await;

    let results = world.run(&created).await;

    for (party, result) in &results {
        assert!(result.is_ok(), "{party}: {result:?}");
    }
    assert_eq!(
        world.link.reports("device"),
        2,
        "answer lost once, repeated"
    );
    assert_eq!(
        world.link.reports("server"),
        3,
        "lost twice, sent a third time"
    );
    assert_eq!(world.link.reports("recovery"), 1);
    let session = world.coordinator.session(created.session_id).await.unwrap();
    assert_eq!(session.status, SessionStatus::Completed);
    let recorded = world.recorded(created.session_id).await;
    let reports = recorded.iter().filter(|t| *t == "PartyCompleted").count();
    assert_eq!(reports, 3, "one recorded report per party: {recorded:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_report_is_not_repeated_and_an_unreachable_coordinator_is_given_up_at_the_deadline()
 {
    let world = World::new([
        ("device", Fault::Refused),
        ("server", Fault::Unreachable),
        ("recovery", Fault::None),
    ])
    .await;
    let ttl = Duration::from_secs(10);
    let created = world.keygen(ttl).await;

    let results = tokio::time::timeout(ttl + Duration::from_secs(30), world.run(&created))
        .await
        .expect("every node gives up by the session's deadline");

    assert!(
        matches!(
            results["device"],
            Err(PartyError::Coordinator(CoordinatorError::Refused(_)))
        ),
        "{:?}",
        results["device"]
    );
    assert_eq!(world.link.reports("device"), 1, "a refusal is final");
    assert!(
        matches!(
            results["server"],
            Err(PartyError::Coordinator(CoordinatorError::Unreachable(_)))
        ),
        "{:?}",
        results["server"]
    );
    assert!(
        world.link.reports("server") > 1,
        "an unreachable coordinator is tried again"
    );
    assert!(results["recovery"].is_ok(), "{:?}", results["recovery"]);
    let recorded = world.recorded(created.session_id).await;
    let reports = recorded.iter().filter(|t| *t == "PartyCompleted").count();
    assert_eq!(
        reports, 1,
        "only recovery's report got through: {recorded:?}"
    );
}
