//! Lost-device recovery and share refresh through the real services: party nodes
//! with file vaults over the in-process transport, the coordinator and the account
//! service on a SQLite event log. Every failure case must fail cleanly, record what
//! happened, and leave every existing share usable.
//!
//! That a share from before a refresh never signs with a refreshed one is shown at
//! the engine level, for every pairing, in `engine/tests/refresh.rs`; here the old
//! versions are shown to be gone from every vault.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::future::join_all;
use mpc_actors::{
    Accounts, CommandMeta, Coordinator, CoordinatorError, CreatedSession, NewAccount, NewKeygen,
    NewRefresh, NewSigning, SigningPayload, StatusChange, SystemClock,
};
use mpc_app::LocalCoordinator;
use mpc_crypto::verify_signature;
use mpc_engine::{
    Dkls23Engine, EngineError, KeyShare, KeygenParams, Protocol, RefreshParams, Refreshed,
    ShareSlot, SignParams, ThresholdEngine,
};
use mpc_events::{
    AccountError, AccountId, AccountParties, AccountStatus, Email, FailureReason, IdentityKey,
    KeyId, KeyPolicy, KeyRef, MessageHash, Participant, PartyId, PartyOutcome, RecoveryKind,
    RecoveryStatus, RepairSpec, SessionError, SessionId, SessionSpec, SessionStatus, SessionView,
    Signature, SignedApproval, Threshold, Timestamp, Username,
};
use mpc_party::{CoordinatorClient, PartyError, PartyIdentity, PartyNode};
use mpc_store::{EventStore, SqliteStore};
use mpc_transport::InProcessTransport;
use mpc_vault::{FileVault, ShareVault, VaultError};
use sha2::{Digest, Sha256};

const TTL: Duration = Duration::from_secs(60);

struct World {
    dir: tempfile::TempDir,
    coordinator: Arc<Coordinator>,
    accounts: Accounts,
    transport: Arc<InProcessTransport>,
    client: Arc<LocalCoordinator>,
}

/// A party node with the file vault it keeps its shares in.
#[derive(Clone)]
struct Node {
    node: Arc<PartyNode>,
    vault: Arc<FileVault>,
}

impl Node {
    fn holder(&self) -> Participant {
        Participant {
            party_id: self.node.id().clone(),
            identity: self.node.identity().public(),
        }
    }

    fn versions(&self, key_id: KeyId, upto: u32) -> Vec<u32> {
        (1..=upto)
            .filter(
                |v| match self.vault.get_version(self.node.id(), &key_id, *v) {
                    Ok(_) => true,
                    Err(VaultError::NotFound { .. }) => false,
                    Err(e) => panic!("vault of {}: {e}", self.node.id()),
                },
            )
            .collect()
    }
}

impl World {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn EventStore> = Arc::new(
            SqliteStore::open(&dir.path().join("events.db"))
                .await
                .unwrap(),
        );
        let coordinator = Arc::new(Coordinator::new(store.clone(), Arc::new(SystemClock)));
        Self {
            accounts: Accounts::new(store, Arc::new(SystemClock), coordinator.clone()),
            client: Arc::new(LocalCoordinator(coordinator.clone())),
            coordinator,
            transport: Arc::new(InProcessTransport::new()),
            dir,
        }
    }

    fn node_with(&self, name: &str, engine: Arc<dyn ThresholdEngine>) -> Node {
        let path = self.dir.path().join(format!("{name}-{}", SessionId::new()));
        let vault = Arc::new(FileVault::create(path, b"test passphrase").unwrap());
        let node = Arc::new(PartyNode::new(
            PartyId::parse(name).unwrap(),
            PartyIdentity::generate(),
            engine,
            vault.clone(),
            self.transport.clone(),
            self.client.clone(),
        ));
        Node { node, vault }
    }

    fn node(&self, name: &str) -> Node {
        self.node_with(name, Arc::new(Dkls23Engine))
    }

    /// A `t`-of-all key of `nodes` with `policy`, its keygen run to the end; its id.
    async fn keygen(&self, nodes: &[Node], t: u16, policy: KeyPolicy) -> KeyId {
        let n = u16::try_from(nodes.len()).unwrap();
        let created = self
            .coordinator
            .create_keygen(
                NewKeygen {
                    policy,
                    threshold: Threshold::new(t, n).unwrap(),
                    participants: nodes.iter().map(Node::holder).collect(),
                    ttl: TTL,
                },
                CommandMeta::new(),
            )
            .await
            .unwrap();
        run(&nodes.iter().collect::<Vec<_>>(), &created).await;
        KeyId::of_keygen(created.session_id)
    }

    /// Signs with `signers` through a signing session of `key_id`; the signature,
    /// checked against the key's public key.
    async fn signs(&self, key_id: KeyId, signers: &[&Node]) -> Signature {
        let message = format!("signed by {}", signers.len()).into_bytes();
        let created = self
            .coordinator
            .create_signing(
                NewSigning {
                    key_id,
                    signers: signers.iter().map(|n| n.node.id().clone()).collect(),
                    payload: SigningPayload::Message(message.clone()),
                    ttl: TTL,
                },
                CommandMeta::new(),
            )
            .await
            .unwrap();
        let outcomes = run(signers, &created).await;
        let key = self.coordinator.key(key_id).await.unwrap();
        let hash = MessageHash::from_bytes(Sha256::digest(&message).into());
        let signatures: Vec<Signature> = outcomes
            .into_iter()
            .map(|outcome| match outcome {
                Ok(PartyOutcome::Signature(signature)) => signature,
                other => panic!("signing failed: {other:?}"),
            })
            .collect();
        assert!(signatures.windows(2).all(|w| w[0] == w[1]));
        assert!(verify_signature(&key.public_key, &hash, &signatures[0]));
        signatures[0]
    }
}

/// Every node's run of `created`, each to its end (success or error).
async fn run(nodes: &[&Node], created: &CreatedSession) -> Vec<Result<PartyOutcome, PartyError>> {
    let session = created.session_id;
    join_all(nodes.iter().map(|n| {
        let node = n.node.clone();
        let token = created.join_tokens[node.id()].expose().to_owned();
        async move {
            tokio::spawn(async move { node.participate(session, &token).await })
                .await
                .unwrap()
        }
    }))
    .await
}

/// An account of device, server and recovery with its completed 2-of-3 key.
struct Account {
    id: AccountId,
    key_id: KeyId,
    key: KeyRef,
    device: Node,
    server: Node,
    recovery: Node,
}

impl Account {
    /// Server's and recovery's authorizations of rebuilding the device share for
    /// `identity`, each from its own vault and pinned roster.
    fn authorize(&self, identity: &IdentityKey) -> Vec<SignedApproval> {
        [&self.server, &self.recovery]
            .iter()
            .map(|helper| {
                helper
                    .node
                    .holder()
                    .authorize_recovery(self.key_id, self.device.node.id(), identity)
                    .unwrap()
            })
            .collect()
    }
}

async fn account(world: &World, server: Node, recovery: Node) -> Account {
    let device = world.node("device");
    let opened = world
        .accounts
        .open(
            NewAccount {
                username: Username::parse(&format!("user{}", &SessionId::new().to_string()[..8]))
                    .unwrap(),
                email: Email::parse(&format!("{}@example.com", SessionId::new())).unwrap(),
                phone: None,
                parties: AccountParties {
                    device: device.holder(),
                    server: server.holder(),
                    recovery: recovery.holder(),
                },
                keygen_ttl: TTL,
            },
            CommandMeta::new(),
        )
        .await
        .unwrap();
    for outcome in run(&[&device, &server, &recovery], &opened.keygen).await {
        assert!(
            matches!(outcome, Ok(PartyOutcome::PublicKey(_))),
            "{outcome:?}"
        );
    }
    let key_id = KeyId::of_keygen(opened.keygen.session_id);
    let key = world.coordinator.key(key_id).await.unwrap();
    Account {
        id: opened.account_id,
        key_id,
        key,
        device,
        server,
        recovery,
    }
}

async fn lose_device(world: &World, account: &Account) {
    world
        .accounts
        .change_status(
            account.id,
            StatusChange::StartRecovery("phone lost".into()),
            CommandMeta::new(),
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lost_device_is_rebuilt_for_the_new_device_and_every_old_share_is_retired() {
    let world = World::new().await;
    let a = account(&world, world.node("server"), world.node("recovery")).await;
    world.signs(a.key_id, &[&a.device, &a.server]).await;
    lose_device(&world, &a).await;
    let phone = world.node("device");

    let created = world
        .accounts
        .recover(
            a.id,
            RecoveryKind::DeviceLost {
                identity: phone.node.identity().public(),
            },
            a.authorize(&phone.node.identity().public()),
            TTL,
            CommandMeta::new(),
        )
        .await
        .unwrap();
    let parties = [&phone, &a.server, &a.recovery];
    let (outcomes, account) = tokio::join!(
        run(&parties, &created),
        world.accounts.follow_recovery(a.id, CommandMeta::new())
    );
    let digests: Vec<_> = outcomes
        .into_iter()
        .map(|o| match o {
            Ok(PartyOutcome::Refreshed { public_key, digest }) => {
                assert_eq!(public_key, a.key.public_key);
                digest
            }
            other => panic!("refresh failed: {other:?}"),
        })
        .collect();
    assert!(digests.windows(2).all(|w| w[0] == w[1]));

    let account = account.unwrap();
    assert_eq!(account.status, AccountStatus::Active);
    assert_eq!(
        account.parties.device.identity,
        phone.node.identity().public()
    );
    assert_eq!(account.recoveries.len(), 1);
    assert_eq!(account.recoveries[0].status, RecoveryStatus::Completed);

    let key = world.coordinator.key(a.key_id).await.unwrap();
    assert_eq!((key.epoch, key.public_key), (2, a.key.public_key));
    assert_eq!(key.parties[0].identity, phone.node.identity().public());
    for helper in [&a.server, &a.recovery] {
        assert_eq!(helper.versions(a.key_id, 3), [2], "{}", helper.node.id());
    }
    assert_eq!(phone.versions(a.key_id, 3), [2]);

    world.signs(a.key_id, &[&phone, &a.server]).await;
    world.signs(a.key_id, &[&phone, &a.recovery]).await;
    world.signs(a.key_id, &[&a.server, &a.recovery]).await;

    // The lost phone, even with a join token, is no longer the device.
    let created = world
        .accounts
        .sign(
            a.id,
            SigningPayload::Message(b"stolen phone".to_vec()),
            TTL,
            CommandMeta::new(),
        )
        .await
        .unwrap();
    let token = created.join_tokens[a.device.node.id()].expose().to_owned();
    assert!(matches!(
        a.device.node.sign(created.session_id, &token).await,
        Err(PartyError::IdentityMismatch)
    ));
    // It says so at once: the session fails with its reason instead of expiring.
    let session = world.coordinator.session(created.session_id).await.unwrap();
    assert_eq!(session.status, SessionStatus::Failed);
    match session.failure {
        Some(FailureReason::PartyAborted {
            reported_by,
            culprits,
            detail,
        }) => {
            assert_eq!(&reported_by, a.device.node.id());
            assert!(culprits.is_empty());
            assert!(
                detail.contains("a recovery moved this party's share"),
                "{detail}"
            );
        }
        other => panic!("expected the device's refusal, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refresh_rotates_every_share_of_a_three_of_four_key() {
    let world = World::new().await;
    let nodes: Vec<Node> = ["a", "b", "c", "d"].iter().map(|n| world.node(n)).collect();
    let key_id = world.keygen(&nodes, 3, KeyPolicy::AnyRequest).await;
    let all: Vec<&Node> = nodes.iter().collect();
    let before = world.coordinator.key(key_id).await.unwrap();

    let refresh = world
        .coordinator
        .create_refresh(
            NewRefresh {
                key_id,
                repair: None,
                ttl: TTL,
            },
            CommandMeta::new(),
        )
        .await
        .unwrap();
    for outcome in run(&all, &refresh).await {
        assert!(
            matches!(outcome, Ok(PartyOutcome::Refreshed { .. })),
            "{outcome:?}"
        );
    }
    let state = world.coordinator.key_state(key_id).await.unwrap();
    assert_eq!(state.key.epoch, 2);
    assert_eq!(state.key.public_key, before.public_key);
    assert_eq!(state.key.parties, before.parties);
    assert_eq!(
        state.last_refresh,
        Some((refresh.session_id, Some(SessionStatus::Completed)))
    );
    for node in &nodes {
        assert_eq!(node.versions(key_id, 3), [2], "{}", node.node.id());
    }
    world
        .signs(key_id, &[&nodes[0], &nodes[1], &nodes[2]])
        .await;
    world
        .signs(key_id, &[&nodes[1], &nodes[2], &nodes[3]])
        .await;
}

/// A lost share of an approved-only key rebuilt for a new device that runs on the
/// default policy: whatever policy the request names, the session carries the
/// key's, the holders check it against their pins, and the new device pins it with
/// its share, so the repair does not lift the approval gate.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_repaired_share_of_an_approved_only_key_stays_approved_only() {
    let world = World::new().await;
    let nodes: Vec<Node> = ["lost", "b", "c"].iter().map(|n| world.node(n)).collect();
    let key_id = world.keygen(&nodes, 2, KeyPolicy::ApprovedOnly).await;
    let phone = world.node("lost");
    let identity = phone.node.identity().public();
    let refresh = world
        .coordinator
        .create_refresh(
            NewRefresh {
                key_id,
                repair: Some(RepairSpec {
                    target: nodes[0].node.id().clone(),
                    identity,
                    helpers: vec![nodes[1].node.id().clone(), nodes[2].node.id().clone()],
                    authorizations: nodes[1..]
                        .iter()
                        .map(|helper| {
                            helper
                                .node
                                .holder()
                                .authorize_recovery(key_id, nodes[0].node.id(), &identity)
                                .unwrap()
                        })
                        .collect(),
                    policy: KeyPolicy::AnyRequest,
                }),
                ttl: TTL,
            },
            CommandMeta::new(),
        )
        .await
        .unwrap();
    let session = world.coordinator.session(refresh.session_id).await.unwrap();
    assert!(matches!(
        &session.created.spec,
        SessionSpec::Refresh { repair: Some(repair), .. } if repair.policy == KeyPolicy::ApprovedOnly
    ));
    for outcome in run(&[&phone, &nodes[1], &nodes[2]], &refresh).await {
        assert!(
            matches!(outcome, Ok(PartyOutcome::Refreshed { .. })),
            "{outcome:?}"
        );
    }
    for node in [&phone, &nodes[1], &nodes[2]] {
        let record = node.vault.get_version(node.node.id(), &key_id, 2).unwrap();
        assert_eq!(record.policy, KeyPolicy::ApprovedOnly, "{}", node.node.id());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fewer_than_t_helpers_are_refused_before_anything_is_recorded() {
    let world = World::new().await;
    let a = account(&world, world.node("server"), world.node("recovery")).await;
    let refused = world
        .coordinator
        .create_refresh(
            NewRefresh {
                key_id: a.key_id,
                repair: Some(RepairSpec {
                    target: a.device.node.id().clone(),
                    identity: PartyIdentity::generate().public(),
                    helpers: vec![a.server.node.id().clone()],
                    authorizations: Vec::new(),
                    policy: KeyPolicy::AnyRequest,
                }),
                ttl: TTL,
            },
            CommandMeta::new(),
        )
        .await;
    assert!(matches!(
        refused,
        Err(CoordinatorError::Session(SessionError::TooFewHelpers {
            needed: 2,
            got: 1
        }))
    ));
    let state = world.coordinator.key_state(a.key_id).await.unwrap();
    assert_eq!((state.key.epoch, state.last_refresh), (1, None));
    world.signs(a.key_id, &[&a.server, &a.recovery]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lost_device_recovery_needs_a_recovering_account() {
    let world = World::new().await;
    let a = account(&world, world.node("server"), world.node("recovery")).await;
    let identity = PartyIdentity::generate().public();
    let refused = world
        .accounts
        .recover(
            a.id,
            RecoveryKind::DeviceLost { identity },
            a.authorize(&identity),
            TTL,
            CommandMeta::new(),
        )
        .await;
    assert!(matches!(
        refused,
        Err(mpc_actors::AccountServiceError::Account(
            AccountError::NotRecovering(AccountStatus::Active)
        ))
    ));
    let account = world.accounts.account(a.id).await.unwrap();
    assert!(account.recoveries.is_empty());
    let state = world.coordinator.key_state(a.key_id).await.unwrap();
    assert_eq!(state.last_refresh, None);
    world.signs(a.key_id, &[&a.device, &a.server]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lost_device_recovery_without_two_holders_authorizations_is_refused_and_changes_nothing()
{
    let world = World::new().await;
    let a = account(&world, world.node("server"), world.node("recovery")).await;
    lose_device(&world, &a).await;
    let identity = PartyIdentity::generate().public();
    let authorized = a.authorize(&identity);
    // What an operator with the admin token alone can make: its own key signing
    // for the server.
    let forged = SignedApproval {
        approver: a.server.node.id().clone(),
        signature: PartyIdentity::generate().authorize_recovery(
            a.key_id,
            1,
            a.device.node.id(),
            &identity,
        ),
    };
    let other_device = a.authorize(&PartyIdentity::generate().public());
    for (authorizations, why) in [
        (Vec::new(), "0 authorizations"),
        (authorized[1..].to_vec(), "1 authorizations"),
        (
            vec![forged, authorized[1].clone()],
            "server does not verify",
        ),
        (other_device, "server does not verify"),
    ] {
        let refused = world
            .accounts
            .recover(
                a.id,
                RecoveryKind::DeviceLost { identity },
                authorizations,
                TTL,
                CommandMeta::new(),
            )
            .await;
        match refused {
            Err(mpc_actors::AccountServiceError::Coordinator(CoordinatorError::Session(
                SessionError::RepairNotAuthorized(reason),
            ))) => assert!(reason.contains(why), "{reason}"),
            other => panic!("an unauthorized recovery was not refused: {other:?}"),
        }
    }
    assert!(
        world
            .accounts
            .account(a.id)
            .await
            .unwrap()
            .recoveries
            .is_empty()
    );
    let state = world.coordinator.key_state(a.key_id).await.unwrap();
    assert_eq!((state.key.epoch, state.last_refresh), (1, None));
}

/// The DKLs23 engine, except that its repair terms are computed for another run:
/// a helper that sends a wrong term.
struct WrongTerms;

impl ThresholdEngine for WrongTerms {
    fn name(&self) -> &'static str {
        Dkls23Engine.name()
    }
    fn keygen(
        &self,
        params: KeygenParams,
    ) -> Result<Box<dyn Protocol<Output = KeyShare>>, EngineError> {
        Dkls23Engine.keygen(params)
    }
    fn sign(
        &self,
        share: &KeyShare,
        params: SignParams,
    ) -> Result<Box<dyn Protocol<Output = Signature>>, EngineError> {
        Dkls23Engine.sign(share, params)
    }
    fn refresh(
        &self,
        share: &KeyShare,
        mut params: RefreshParams,
    ) -> Result<Box<dyn Protocol<Output = Refreshed>>, EngineError> {
        params.execution_id[0] ^= 1;
        Dkls23Engine.refresh(share, params)
    }
    fn recover(
        &self,
        slot: ShareSlot,
        params: RefreshParams,
    ) -> Result<Box<dyn Protocol<Output = Refreshed>>, EngineError> {
        Dkls23Engine.recover(slot, params)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_helper_sending_a_wrong_term_fails_the_recovery_and_the_shares_still_sign() {
    let world = World::new().await;
    let a = account(
        &world,
        world.node("server"),
        world.node_with("recovery", Arc::new(WrongTerms)),
    )
    .await;
    lose_device(&world, &a).await;
    let phone = world.node("device");
    let created = world
        .accounts
        .recover(
            a.id,
            RecoveryKind::DeviceLost {
                identity: phone.node.identity().public(),
            },
            a.authorize(&phone.node.identity().public()),
            TTL,
            CommandMeta::new(),
        )
        .await
        .unwrap();
    let parties = [&phone, &a.server, &a.recovery];
    let (outcomes, account) = tokio::join!(
        run(&parties, &created),
        world.accounts.follow_recovery(a.id, CommandMeta::new())
    );
    match &outcomes[0] {
        Err(PartyError::Engine(EngineError::Aborted { detail, .. })) => {
            assert!(detail.contains("wrong term"), "{detail}");
        }
        other => panic!("the new device should abort: {other:?}"),
    }
    for outcome in &outcomes[1..] {
        assert!(outcome.is_err(), "a helper finished: {outcome:?}");
    }
    let session = world.coordinator.session(created.session_id).await.unwrap();
    assert_eq!(session.status, SessionStatus::Failed);

    let account = account.unwrap();
    assert_eq!(account.status, AccountStatus::Recovering);
    assert_eq!(account.recoveries[0].status, RecoveryStatus::Failed);
    assert!(account.recoveries[0].failure.is_some());
    assert_eq!(account.parties.device, a.device.holder());

    let key = world.coordinator.key(a.key_id).await.unwrap();
    assert_eq!(key.epoch, 1);
    for node in [&a.server, &a.recovery] {
        assert_eq!(node.versions(a.key_id, 3), [1], "{}", node.node.id());
    }
    assert!(phone.versions(a.key_id, 3).is_empty());
    world.signs(a.key_id, &[&a.server, &a.recovery]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_impostor_with_the_device_token_gets_no_share_and_the_shares_still_sign() {
    let world = World::new().await;
    let a = account(&world, world.node("server"), world.node("recovery")).await;
    lose_device(&world, &a).await;
    let phone = world.node("device");
    let impostor = world.node("device");
    let created = world
        .accounts
        .recover(
            a.id,
            RecoveryKind::DeviceLost {
                identity: phone.node.identity().public(),
            },
            a.authorize(&phone.node.identity().public()),
            TTL,
            CommandMeta::new(),
        )
        .await
        .unwrap();
    let session = created.session_id;
    // The impostor takes the device's token, so the real phone can no longer
    // join; the impostor's node sees that the session names another identity for
    // the device and ends it at once, saying so.
    let holders = [&a.server, &a.recovery];
    let impostor_runs = async {
        world
            .coordinator
            .wait_for(session, |s| s.joined.len() == 2)
            .await
            .unwrap();
        run(&[&impostor], &created).await
    };
    let (helpers, impostor_outcome, account) = tokio::join!(
        run(&holders, &created),
        impostor_runs,
        world.accounts.follow_recovery(a.id, CommandMeta::new())
    );
    assert!(
        matches!(impostor_outcome[0], Err(PartyError::IdentityMismatch)),
        "{:?}",
        impostor_outcome[0]
    );
    for outcome in &helpers {
        // Ended while running, or before its run began: either way, no share.
        assert!(
            matches!(
                outcome,
                Err(PartyError::Ended(_, SessionStatus::Failed)
                    | PartyError::NotStarted(_, SessionStatus::Failed))
            ),
            "{outcome:?}"
        );
    }
    let ended = world.coordinator.session(session).await.unwrap();
    assert!(
        matches!(
            &ended.failure,
            Some(FailureReason::PartyAborted { reported_by, .. }) if reported_by == impostor.node.id()
        ),
        "{:?}",
        ended.failure
    );
    assert!(impostor.versions(a.key_id, 3).is_empty());
    let account = account.unwrap();
    assert_eq!(account.recoveries[0].status, RecoveryStatus::Failed);
    for node in [&a.server, &a.recovery] {
        assert_eq!(node.versions(a.key_id, 3), [1], "{}", node.node.id());
    }
    world.signs(a.key_id, &[&a.server, &a.recovery]).await;
}

/// A coordinator that shows a helper a doctored refresh session: the target's
/// participant presents another identity than the repair names.
struct Doctored(SessionView);

#[async_trait]
impl CoordinatorClient for Doctored {
    async fn join(
        &self,
        _: SessionId,
        _: &PartyId,
        _: &str,
    ) -> Result<SessionView, mpc_party::CoordinatorError> {
        Ok(self.0.clone())
    }
    async fn wait_started(
        &self,
        _: SessionId,
    ) -> Result<SessionStatus, mpc_party::CoordinatorError> {
        Err(mpc_party::CoordinatorError::Refused(
            "the helper went past its target check".into(),
        ))
    }
    async fn wait_finished(
        &self,
        _: SessionId,
    ) -> Result<SessionStatus, mpc_party::CoordinatorError> {
        Err(mpc_party::CoordinatorError::Refused(
            "the helper went past its target check".into(),
        ))
    }
    async fn report_completion(
        &self,
        _: SessionId,
        _: &PartyId,
        _: PartyOutcome,
    ) -> Result<(), mpc_party::CoordinatorError> {
        Err(mpc_party::CoordinatorError::Refused(
            "the helper went past its target check".into(),
        ))
    }
    async fn report_failure(
        &self,
        _: SessionId,
        _: &PartyId,
        _: Vec<PartyId>,
        _: String,
    ) -> Result<(), mpc_party::CoordinatorError> {
        Err(mpc_party::CoordinatorError::Refused(
            "the helper went past its target check".into(),
        ))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_helper_refuses_a_target_other_than_the_new_device_the_session_names() {
    let world = World::new().await;
    let a = account(&world, world.node("server"), world.node("recovery")).await;
    let named: IdentityKey = PartyIdentity::generate().public();
    let helper_identity = PartyIdentity::generate();
    let mut participants = a.key.parties.clone();
    participants[0].identity = PartyIdentity::generate().public();
    participants[1].identity = helper_identity.public();
    let view = SessionView {
        session_id: SessionId::new(),
        spec: SessionSpec::Refresh {
            key: a.key.clone(),
            repair: Some(Box::new(RepairSpec {
                target: a.device.node.id().clone(),
                identity: named,
                helpers: vec![a.server.node.id().clone(), a.recovery.node.id().clone()],
                authorizations: Vec::new(),
                policy: KeyPolicy::AnyRequest,
            })),
        },
        participants: participants
            .into_iter()
            .zip(1..)
            .map(|(p, i)| (i, p))
            .collect(),
        status: SessionStatus::InProgress,
        expires_at: Timestamp::from_millis(i64::MAX),
    };
    let helper = PartyNode::new(
        a.server.node.id().clone(),
        helper_identity,
        Arc::new(Dkls23Engine),
        a.server.vault.clone(),
        world.transport.clone(),
        Arc::new(Doctored(view.clone())),
    );
    let refused = helper.participate(view.session_id, "token").await;
    assert!(
        matches!(refused, Err(PartyError::RepairTargetMismatch)),
        "{refused:?}"
    );
    assert_eq!(a.server.versions(a.key_id, 3), [1]);
}
