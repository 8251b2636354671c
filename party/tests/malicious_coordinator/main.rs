//! A party decides from what it verified itself, whatever the coordinator says:
//! these tests play a coordinator that lies (forged approvals, substituted identity
//! keys, a bare hash, repairs of keys whose holders the party cannot check) and
//! hand a real party node, over a real vault holding a real DKLs23 share, the
//! session view it would then see. In each case the node must refuse before it
//! sends anything, and keep its share. [`split`] runs whole sessions whose
//! coordinator tells different parties different things.

mod split;

use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use mpc_app::stack::CountingTransport;
use mpc_crypto::EvidenceError;
use mpc_engine::Dkls23Engine;
use mpc_engine::KeyShare;
use mpc_events::{
    ApprovalEvidence, Decision, IdentityKey, KeyId, KeyRef, MessageHash, Participant, PartyId,
    PartyOutcome, RepairSpec, SessionId, SessionSpec, SessionStatus, SessionView, SignedApproval,
    Threshold, Timestamp, WorkflowId,
};
use mpc_party::{
    ApprovalJournal, CoordinatorClient, CoordinatorError, JournalError, KeyPolicy, MemoryJournal,
    PartyError, PartyIdentity, PartyNode, Peers, RosterError,
};
use mpc_transport::InProcessTransport;
use mpc_vault::{FileVault, ShareRecord, ShareVault};
use sha2::{Digest, Sha256};

const PAYLOAD: &[u8] = b"move 40 BTC to the exchange";

/// A coordinator that answers every join with one prepared view and accepts
/// nothing but failure reports, which it keeps: the node must refuse before it
/// gets further, and say why.
struct Lying {
    view: SessionView,
    refusals: Mutex<Vec<String>>,
}

#[async_trait]
impl CoordinatorClient for Lying {
    async fn join(
        &self,
        _: SessionId,
        _: &PartyId,
        _: &str,
    ) -> Result<SessionView, CoordinatorError> {
        Ok(self.view.clone())
    }
    async fn wait_started(&self, _: SessionId) -> Result<SessionStatus, CoordinatorError> {
        Err(CoordinatorError::Refused(
            "the node went past its approval check".into(),
        ))
    }
    async fn wait_finished(&self, _: SessionId) -> Result<SessionStatus, CoordinatorError> {
        Err(CoordinatorError::Refused(
            "the node went past its approval check".into(),
        ))
    }
    async fn report_completion(
        &self,
        _: SessionId,
        _: &PartyId,
        _: PartyOutcome,
    ) -> Result<(), CoordinatorError> {
        Err(CoordinatorError::Refused(
            "the node went past its approval check".into(),
        ))
    }
    async fn report_failure(
        &self,
        _: SessionId,
        _: &PartyId,
        culprits: Vec<PartyId>,
        detail: String,
    ) -> Result<(), CoordinatorError> {
        assert!(culprits.is_empty(), "a refusal blames nobody: {culprits:?}");
        self.refusals.lock().unwrap().push(detail);
        Ok(())
    }
}

/// Five approvers of a 3-of-5 key; this test's node is approver 1 and holds the
/// first share.
struct Review {
    identities: Vec<PartyIdentity>,
    key: KeyRef,
    share: KeyShare,
    workflow: WorkflowId,
    hash: MessageHash,
    /// The identity keys approver 1's node was given for its peers (none by default).
    peers: Peers,
}

fn review() -> Review {
    let identities: Vec<PartyIdentity> = (0..5).map(|_| PartyIdentity::generate()).collect();
    // One 3-of-5 keygen for the whole suite: approver 1's share.
    static SHARE: OnceLock<KeyShare> = OnceLock::new();
    let first = SHARE.get_or_init(|| mpc_engine::testing::keygen(3, 5).swap_remove(0));
    let share = KeyShare {
        engine: first.engine.clone(),
        public_key: first.public_key,
        index: first.index,
        threshold: first.threshold,
        parties: first.parties,
        secret: first.secret.clone(),
    };
    Review {
        key: KeyRef {
            key_id: KeyId::of_keygen(SessionId::new()),
            public_key: share.public_key,
            threshold: Threshold::new(3, 5).unwrap(),
            parties: identities
                .iter()
                .enumerate()
                .map(|(i, id)| Participant {
                    party_id: PartyId::parse(format!("approver-{}", i + 1)).unwrap(),
                    identity: id.public(),
                })
                .collect(),
            epoch: 1,
        },
        identities,
        share,
        workflow: WorkflowId::new(),
        hash: MessageHash::from_bytes(Sha256::digest(PAYLOAD).into()),
        peers: Peers::new(),
    }
}

impl Review {
    /// A repair of approver 5's share onto `device`, helped by approvers 1 to 3.
    fn repair(
        &self,
        device: IdentityKey,
        authorizations: Vec<SignedApproval>,
        policy: KeyPolicy,
    ) -> RepairSpec {
        RepairSpec {
            target: self.key.parties[4].party_id.clone(),
            identity: device,
            helpers: self.key.parties[..3]
                .iter()
                .map(|p| p.party_id.clone())
                .collect(),
            authorizations,
            policy,
        }
    }

    /// Approver `by`'s authorization of moving approver 5's share to `device`,
    /// signed by `signer` (approver `by`'s own identity for a genuine one).
    fn recovery_authorization(
        &self,
        by: usize,
        signer: &PartyIdentity,
        device: &IdentityKey,
    ) -> SignedApproval {
        SignedApproval {
            approver: self.key.parties[by].party_id.clone(),
            signature: signer.authorize_recovery(
                self.key.key_id,
                self.key.epoch,
                &self.key.parties[4].party_id,
                device,
            ),
        }
    }

    fn approval(&self, by: usize, signed_by: usize) -> SignedApproval {
        self.approval_with(by, &self.identities[signed_by])
    }

    fn approval_with(&self, by: usize, signer: &PartyIdentity) -> SignedApproval {
        SignedApproval {
            approver: self.key.parties[by].party_id.clone(),
            signature: signer.sign_decision(
                self.workflow,
                &self.key,
                &self.hash,
                Decision::Approve,
            ),
        }
    }

    /// The view of a signing session among `signers` carrying `approvals`.
    fn view(&self, signers: &[usize], approvals: Option<Vec<SignedApproval>>) -> SessionView {
        SessionView {
            session_id: SessionId::new(),
            spec: SessionSpec::Signing {
                key: self.key.clone(),
                message_hash: self.hash,
                message: Some(PAYLOAD.to_vec()),
                approval: approvals.map(|approvals| ApprovalEvidence {
                    workflow_id: self.workflow,
                    payload_hash: self.hash,
                    approvals,
                }),
            },
            participants: signers
                .iter()
                .map(|i| (u8::try_from(i + 1).unwrap(), self.key.parties[*i].clone()))
                .collect(),
            status: SessionStatus::Created,
            expires_at: Timestamp::from_millis(i64::MAX),
        }
    }

    async fn sign_as_approver_1(&self, view: SessionView, policy: KeyPolicy) -> PartyError {
        self.attack(view, policy, Some(self.key.parties.clone()))
            .await
    }

    /// Approver 1's node, its vault holding its share pinned with `roster` (`None`:
    /// a share stored before rosters were pinned), joins `view`. Returns the
    /// node's error, after checking that it sent nothing and kept its share.
    async fn attack(
        &self,
        view: SessionView,
        policy: KeyPolicy,
        roster: Option<Vec<Participant>>,
    ) -> PartyError {
        self.attack_with(
            view,
            policy,
            (roster, KeyPolicy::AnyRequest),
            Arc::new(MemoryJournal::default()),
        )
        .await
    }

    /// [`Review::attack`] by a node whose share was pinned with `(roster, policy)`
    /// at keygen and whose approval journal is `journal`.
    async fn attack_with(
        &self,
        view: SessionView,
        policy: KeyPolicy,
        (roster, pinned): (Option<Vec<Participant>>, KeyPolicy),
        journal: Arc<dyn ApprovalJournal>,
    ) -> PartyError {
        let dir = tempfile::tempdir().unwrap();
        let vault =
            Arc::new(FileVault::create(dir.path().join("vault"), b"test passphrase").unwrap());
        let me = self.key.parties[0].party_id.clone();
        vault
            .put(&ShareRecord {
                party_id: me.clone(),
                key_id: self.key.key_id,
                version: 1,
                share: KeyShare {
                    engine: self.share.engine.clone(),
                    public_key: self.share.public_key,
                    index: self.share.index,
                    threshold: self.share.threshold,
                    parties: self.share.parties,
                    secret: self.share.secret.clone(),
                },
                roster,
                policy: pinned,
            })
            .unwrap();
        let identity =
            PartyIdentity::from_secret_bytes(&self.identities[0].to_secret_bytes()).unwrap();
        let coordinator = Arc::new(Lying {
            view: view.clone(),
            refusals: Mutex::new(Vec::new()),
        });
        let transport = Arc::new(CountingTransport::new(Arc::new(InProcessTransport::new())));
        let node = PartyNode::new(
            me.clone(),
            identity,
            Arc::new(Dkls23Engine),
            vault.clone(),
            transport.clone(),
            coordinator.clone(),
        )
        .with_policy(policy)
        .with_peers(self.peers.clone())
        .with_journal(journal);
        let err = node
            .participate(view.session_id, "token")
            .await
            .unwrap_err();
        assert_eq!(transport.envelopes(), 0, "the node sent protocol messages");
        // A refusal fails the session at once with the node's reason, not at its
        // deadline; a node that went past its checks (the control case) refused
        // nothing.
        let reported = coordinator.refusals.lock().unwrap().clone();
        if matches!(err, PartyError::Coordinator(_)) {
            assert!(reported.is_empty(), "{reported:?}");
        } else {
            assert_eq!(reported, [err.to_string()]);
        }
        let kept = vault.get(&me, &self.key.key_id).unwrap();
        assert_eq!(kept.version, 1);
        assert_eq!(kept.share.public_key, self.key.public_key);
        err
    }
}

/// A keygen among the five approvers in which the coordinator put its own
/// identity key in approver 2's place: a node given its peers' identity keys out of
/// band refuses before it sends anything (without them, the view-agreement round
/// catches a split view only after the round-0 commitments, and a coordinator that
/// shows every party the same substitution is caught by nobody). A stranger in the
/// roster is refused the same way.
#[tokio::test]
async fn a_keygen_among_others_than_the_pinned_peers_is_refused() {
    let mut r = review();
    r.peers = r.key.parties[1..]
        .iter()
        .map(|p| (p.party_id.clone(), p.identity))
        .collect();
    let keygen = |parties: &[Participant]| SessionView {
        session_id: SessionId::new(),
        spec: SessionSpec::Keygen {
            threshold: r.key.threshold,
            policy: KeyPolicy::AnyRequest,
        },
        participants: parties
            .iter()
            .cloned()
            .zip(1u8..)
            .map(|(p, i)| (i, p))
            .collect(),
        status: SessionStatus::Created,
        expires_at: Timestamp::from_millis(i64::MAX),
    };
    let mut substituted = r.key.parties.clone();
    substituted[1].identity = PartyIdentity::generate().public();
    let mut stranger = r.key.parties.clone();
    stranger[4].party_id = PartyId::parse("stranger").unwrap();
    for (parties, named) in [(substituted, "approver-2"), (stranger, "stranger")] {
        let err = r
            .attack(keygen(&parties), KeyPolicy::AnyRequest, None)
            .await;
        assert!(
            matches!(&err, PartyError::Roster(RosterError::NotAPeer(p)) if p.as_str() == named),
            "{err}"
        );
    }
}

/// A signing session of the 3-of-5 key with only two signers, or with the key's
/// threshold lowered to match: the engine refuses to start the run with this
/// share. Nobody else knows, so the party reports it and the session fails at
/// once instead of at its deadline.
#[tokio::test]
async fn a_session_the_engine_cannot_start_is_reported_by_the_party() {
    let r = review();
    let mut lowered = r.view(&[0, 1], None);
    if let SessionSpec::Signing { key, .. } = &mut lowered.spec {
        key.threshold = Threshold::new(2, 5).unwrap();
    }
    for view in [r.view(&[0, 1], None), lowered] {
        let err = r.sign_as_approver_1(view, KeyPolicy::AnyRequest).await;
        assert!(matches!(err, PartyError::Setup(_)), "{err}");
    }
}

#[tokio::test]
async fn an_approved_only_party_refuses_a_session_without_approvals() {
    let r = review();
    let err = r
        .sign_as_approver_1(r.view(&[0, 1, 2], None), KeyPolicy::ApprovedOnly)
        .await;
    assert!(matches!(err, PartyError::ApprovalRequired(_)), "{err}");
}

/// The key's gate was pinned at keygen: a node started with the default policy
/// (an operator who forgot `--policy`, or a restart without it) still refuses a
/// session of that key that carries no approvals.
#[tokio::test]
async fn a_key_pinned_approved_only_needs_approvals_whatever_the_node_policy() {
    let r = review();
    let err = r
        .attack_with(
            r.view(&[0, 1, 2], None),
            KeyPolicy::AnyRequest,
            (Some(r.key.parties.clone()), KeyPolicy::ApprovedOnly),
            Arc::new(MemoryJournal::default()),
        )
        .await;
    assert!(matches!(err, PartyError::ApprovalRequired(_)), "{err}");
}

#[tokio::test]
async fn a_forged_approval_is_refused_whatever_the_policy() {
    let r = review();
    // Approver 3's approval, signed by approver 2's key.
    let approvals = vec![r.approval(0, 0), r.approval(1, 1), r.approval(2, 1)];
    for policy in [KeyPolicy::AnyRequest, KeyPolicy::ApprovedOnly] {
        let err = r
            .sign_as_approver_1(r.view(&[0, 1, 2], Some(approvals.clone())), policy)
            .await;
        assert!(
            matches!(&err, PartyError::Approvals(EvidenceError::BadSignature(p)) if p.as_str() == "approver-3"),
            "{err}"
        );
    }
}

#[tokio::test]
async fn fewer_than_t_or_duplicate_approvals_are_refused() {
    let r = review();
    let err = r
        .sign_as_approver_1(
            r.view(&[0, 1], Some(vec![r.approval(0, 0), r.approval(1, 1)])),
            KeyPolicy::ApprovedOnly,
        )
        .await;
    assert!(
        matches!(
            err,
            PartyError::Approvals(EvidenceError::Count { needed: 3, got: 2 })
        ),
        "{err}"
    );
    let err = r
        .sign_as_approver_1(
            r.view(
                &[0, 1, 2],
                Some(vec![r.approval(0, 0), r.approval(1, 1), r.approval(1, 1)]),
            ),
            KeyPolicy::ApprovedOnly,
        )
        .await;
    assert!(
        matches!(
            err,
            PartyError::Approvals(EvidenceError::DuplicateApprover(_))
        ),
        "{err}"
    );
}

#[tokio::test]
async fn valid_approvals_by_other_parties_than_the_signers_are_refused() {
    let r = review();
    // Approvers 1, 4 and 5 approved, but the session asks 1, 2 and 3 to sign.
    let approvals = vec![r.approval(0, 0), r.approval(3, 3), r.approval(4, 4)];
    let err = r
        .sign_as_approver_1(r.view(&[0, 1, 2], Some(approvals)), KeyPolicy::ApprovedOnly)
        .await;
    assert!(
        matches!(
            err,
            PartyError::Approvals(EvidenceError::SignersNotApprovers)
        ),
        "{err}"
    );
}

#[tokio::test]
async fn t_valid_approvals_by_the_signers_pass_the_check() {
    let r = review();
    let approvals = vec![r.approval(0, 0), r.approval(1, 1), r.approval(2, 2)];
    // The check passes; the node then waits for the session to start, which this
    // coordinator refuses: that is the first step after the checks.
    let err = r
        .sign_as_approver_1(r.view(&[0, 1, 2], Some(approvals)), KeyPolicy::ApprovedOnly)
        .await;
    assert!(
        matches!(err, PartyError::Coordinator(CoordinatorError::Refused(_))),
        "{err}"
    );
}

/// The coordinator puts its own identity keys in the key's roster for approvers 2
/// and 3 and signs their approvals itself.
#[tokio::test]
async fn approvals_forged_with_identity_keys_substituted_in_the_key_are_refused() {
    let mut r = review();
    let pinned = r.key.parties.clone();
    let forger = [PartyIdentity::generate(), PartyIdentity::generate()];
    for (holder, key) in r.key.parties[1..3].iter_mut().zip(&forger) {
        holder.identity = key.public();
    }
    let approvals = vec![
        r.approval(0, 0),
        r.approval_with(1, &forger[0]),
        r.approval_with(2, &forger[1]),
    ];
    for policy in [KeyPolicy::AnyRequest, KeyPolicy::ApprovedOnly] {
        let err = r
            .attack(
                r.view(&[0, 1, 2], Some(approvals.clone())),
                policy,
                Some(pinned.clone()),
            )
            .await;
        assert!(
            matches!(err, PartyError::Roster(RosterError::KeyParties(k)) if k == r.key.key_id),
            "{err}"
        );
    }
}

/// The key is shown as pinned, but a participant presents another identity key
/// (the coordinator's, to read what is encrypted to that participant).
#[tokio::test]
async fn a_participant_presenting_a_substituted_identity_is_refused() {
    let r = review();
    let mut view = r.view(&[0, 1, 2], None);
    view.participants[2].1.identity = PartyIdentity::generate().public();
    let err = r.sign_as_approver_1(view, KeyPolicy::AnyRequest).await;
    assert!(
        matches!(&err, PartyError::Roster(RosterError::Participant(p)) if p.as_str() == "approver-3"),
        "{err}"
    );
}

#[tokio::test]
async fn a_default_party_refuses_to_sign_a_bare_hash() {
    let r = review();
    let mut view = r.view(&[0, 1, 2], None);
    if let SessionSpec::Signing { message, .. } = &mut view.spec {
        *message = None;
    }
    let err = r.sign_as_approver_1(view, KeyPolicy::AnyRequest).await;
    assert!(matches!(err, PartyError::PrehashRefused(_)), "{err}");
}

#[tokio::test]
async fn a_share_without_a_pinned_roster_is_refused_for_approval_gated_signing() {
    let r = review();
    let approvals = vec![r.approval(0, 0), r.approval(1, 1), r.approval(2, 2)];
    let err = r
        .attack(
            r.view(&[0, 1, 2], Some(approvals)),
            KeyPolicy::ApprovedOnly,
            None,
        )
        .await;
    assert!(
        matches!(err, PartyError::Roster(RosterError::Missing(k)) if k == r.key.key_id),
        "{err}"
    );
    assert!(err.to_string().contains("generate a new key"), "{err}");
}

/// The view of a refresh of `key` among all its holders, `repair`'s target
/// presenting the new identity.
fn refresh_view(key: &KeyRef, repair: Option<RepairSpec>) -> SessionView {
    let participants = key
        .parties
        .iter()
        .cloned()
        .zip(1u8..)
        .map(|(mut p, i)| {
            if let Some(repair) = repair.as_ref().filter(|r| r.target == p.party_id) {
                p.identity = repair.identity;
            }
            (i, p)
        })
        .collect();
    SessionView {
        session_id: SessionId::new(),
        spec: SessionSpec::Refresh {
            key: key.clone(),
            repair: repair.map(Box::new),
        },
        participants,
        status: SessionStatus::Created,
        expires_at: Timestamp::from_millis(i64::MAX),
    }
}

/// A refresh whose key lists a substituted holder identity: a helper would
/// otherwise encrypt refresh material to the coordinator's key.
#[tokio::test]
async fn a_refresh_of_a_key_with_a_substituted_holder_is_refused() {
    let r = review();
    let pinned = r.key.parties.clone();
    let mut key = r.key.clone();
    key.parties[4].identity = PartyIdentity::generate().public();
    let err = r
        .attack(
            refresh_view(&key, None),
            KeyPolicy::AnyRequest,
            Some(pinned),
        )
        .await;
    assert!(
        matches!(err, PartyError::Roster(RosterError::KeyParties(_))),
        "{err}"
    );
}

/// A repair of a key whose share predates pinned rosters: the helper cannot tell
/// the genuine holders from substitutes, so it sends no repair terms.
#[tokio::test]
async fn a_repair_of_a_key_without_a_pinned_roster_is_refused() {
    let r = review();
    let device = PartyIdentity::generate().public();
    let repair = r.repair(device, Vec::new(), KeyPolicy::AnyRequest);
    let view = refresh_view(&r.key, Some(repair));
    let err = r.attack(view, KeyPolicy::AnyRequest, None).await;
    assert!(
        matches!(err, PartyError::Roster(RosterError::Missing(_))),
        "{err}"
    );
}

/// A repair of approver 5's share that t holders did not authorize: whatever the
/// coordinator (or an operator with the admin token) puts in the session, a helper
/// sends no repair terms to a device the holders did not name.
#[tokio::test]
async fn a_repair_without_t_holders_authorizations_is_refused() {
    let r = review();
    let device = PartyIdentity::generate().public();
    let genuine = |by: usize, identity: &IdentityKey| {
        r.recovery_authorization(by, &r.identities[by], identity)
    };
    let coordinators = PartyIdentity::generate();
    let cases = [
        (Vec::new(), "0 authorizations"),
        (
            vec![genuine(1, &device), genuine(2, &device)],
            "2 authorizations",
        ),
        (
            (1..4)
                .map(|by| r.recovery_authorization(by, &coordinators, &device))
                .collect(),
            "approver-2 does not verify",
        ),
        (
            vec![
                genuine(0, &device),
                genuine(1, &device),
                genuine(4, &device),
            ],
            "approver-5 is the repair's target",
        ),
        (
            (1..4)
                .map(|by| genuine(by, &PartyIdentity::generate().public()))
                .collect(),
            "approver-2 does not verify",
        ),
    ];
    for (authorizations, why) in cases {
        let repair = r.repair(device, authorizations, KeyPolicy::AnyRequest);
        let view = refresh_view(&r.key, Some(repair));
        let err = r
            .attack(view, KeyPolicy::AnyRequest, Some(r.key.parties.clone()))
            .await;
        assert!(
            matches!(err, PartyError::RecoveryNotAuthorized(_)) && err.to_string().contains(why),
            "{why}: {err}"
        );
    }
}

/// A genuine, authorized repair of approver 5's share of an approved-only key,
/// which the coordinator presents as an `any-request` key: the new device would
/// pin that and sign whatever it is sent. Every holder checks the policy against
/// its own pin and sends no repair terms; the same repair naming the pinned policy
/// passes that check.
#[tokio::test]
async fn a_repair_that_would_lift_the_keys_approval_gate_is_refused() {
    let r = review();
    let device = PartyIdentity::generate().public();
    let authorizations: Vec<SignedApproval> = (1..4)
        .map(|by| r.recovery_authorization(by, &r.identities[by], &device))
        .collect();
    let repair = |policy| r.repair(device, authorizations.clone(), policy);
    let pins = (Some(r.key.parties.clone()), KeyPolicy::ApprovedOnly);
    let err = r
        .attack_with(
            refresh_view(&r.key, Some(repair(KeyPolicy::AnyRequest))),
            KeyPolicy::AnyRequest,
            pins.clone(),
            Arc::new(MemoryJournal::default()),
        )
        .await;
    assert!(
        matches!(
            err,
            PartyError::RepairPolicyMismatch {
                claimed: KeyPolicy::AnyRequest,
                pinned: KeyPolicy::ApprovedOnly,
            }
        ),
        "{err}"
    );
    // With the pinned policy the holder gets past every check and waits for the
    // session to start, which this coordinator refuses.
    let err = r
        .attack_with(
            refresh_view(&r.key, Some(repair(KeyPolicy::ApprovedOnly))),
            KeyPolicy::AnyRequest,
            pins,
            Arc::new(MemoryJournal::default()),
        )
        .await;
    assert!(matches!(err, PartyError::Coordinator(_)), "{err}");
}

/// t valid approvals of the same payload by the same approvers, but signed for
/// another key they also hold (or for this key before a refresh): the decision
/// transcript binds key id, group key and share generation, so they verify nowhere
/// else.
#[tokio::test]
async fn approvals_for_another_key_or_generation_are_refused() {
    let r = review();
    let other_key = KeyRef {
        key_id: KeyId::of_keygen(SessionId::new()),
        ..r.key.clone()
    };
    let earlier = KeyRef {
        epoch: r.key.epoch + 1,
        ..r.key.clone()
    };
    for signed_for in [other_key, earlier] {
        let approvals = (0..3)
            .map(|i| SignedApproval {
                approver: r.key.parties[i].party_id.clone(),
                signature: r.identities[i].sign_decision(
                    r.workflow,
                    &signed_for,
                    &r.hash,
                    Decision::Approve,
                ),
            })
            .collect();
        let err = r
            .sign_as_approver_1(r.view(&[0, 1, 2], Some(approvals)), KeyPolicy::ApprovedOnly)
            .await;
        assert!(
            matches!(err, PartyError::Approvals(EvidenceError::BadSignature(_))),
            "{err}"
        );
    }
}

/// A workflow's approvals that this node already spent on one signing session,
/// presented again in another: refused before anything is sent, from the node's
/// own journal, whatever the coordinator's workflow says.
#[tokio::test]
async fn approvals_already_spent_on_another_session_are_refused() {
    let r = review();
    let journal = Arc::new(MemoryJournal::default());
    let first = SessionId::new();
    journal.spend(r.workflow, first).unwrap();
    let approvals = (0..3).map(|i| r.approval(i, i)).collect();
    let err = r
        .attack_with(
            r.view(&[0, 1, 2], Some(approvals)),
            KeyPolicy::ApprovedOnly,
            (Some(r.key.parties.clone()), KeyPolicy::AnyRequest),
            journal,
        )
        .await;
    assert!(
        matches!(
            &err,
            PartyError::ApprovalsSpent(JournalError::Spent { workflow, session })
                if *workflow == r.workflow && *session == first
        ),
        "{err}"
    );
}
