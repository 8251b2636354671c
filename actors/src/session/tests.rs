use std::collections::BTreeMap;
use std::sync::LazyLock;

use k256::ecdsa::SigningKey;
use mpc_crypto::PartyIdentity;
use mpc_events::{
    FailureReason, IdError, IdentityKey, KeyId, KeyPolicy, KeyRef, MessageHash, Participant,
    PartyId, PartyOutcome, PublicKey, RefreshDigest, RepairSpec, SessionCommand, SessionCreated,
    SessionError, SessionEvent, SessionId, SessionKind, SessionSpec, SessionStatus, Signature,
    SignedApproval, Threshold, Timestamp,
};
use sha2::{Digest, Sha256};

use super::{SessionAggregate, token_digest};
use crate::testing::given;

const T0: i64 = 1_795_000_000_000;

fn at(offset_ms: i64) -> Timestamp {
    Timestamp::from_millis(T0 + offset_ms)
}

fn pid(s: &str) -> PartyId {
    PartyId::parse(s).unwrap()
}

fn participant(name: &str, seed: u8) -> Participant {
    Participant {
        party_id: pid(name),
        identity: IdentityKey::new(&[seed; 32], &[seed.wrapping_add(100); 32]).unwrap(),
    }
}

/// The key holders' identities: real keys, so tests can sign with them.
fn holder_identities() -> &'static [PartyIdentity; 3] {
    static IDENTITIES: LazyLock<[PartyIdentity; 3]> =
        LazyLock::new(|| std::array::from_fn(|_| PartyIdentity::generate()));
    &IDENTITIES
}

fn trio() -> Vec<Participant> {
    ["device", "server", "recovery"]
        .iter()
        .zip(holder_identities())
        .map(|(name, identity)| Participant {
            party_id: pid(name),
            identity: identity.public(),
        })
        .collect()
}

fn tokens(ps: &[Participant]) -> BTreeMap<PartyId, mpc_events::TokenDigest> {
    ps.iter()
        .map(|p| {
            (
                p.party_id.clone(),
                token_digest(&format!("token-{}", p.party_id)),
            )
        })
        .collect()
}

fn keygen_session() -> SessionId {
    SessionId::from_uuid(uuid::Uuid::from_u128(1))
}

fn keygen_created() -> SessionCreated {
    SessionCreated {
        session_id: keygen_session(),
        spec: SessionSpec::Keygen {
            threshold: Threshold::new(2, 3).unwrap(),
            policy: KeyPolicy::AnyRequest,
        },
        participants: trio(),
        join_tokens: tokens(&trio()),
        join_expires_at: at(60_000),
        expires_at: at(120_000),
        at: at(0),
    }
}

fn create_from(c: SessionCreated) -> SessionCommand {
    SessionCommand::Create {
        session_id: c.session_id,
        spec: c.spec,
        participants: c.participants,
        join_tokens: c.join_tokens,
        join_expires_at: c.join_expires_at,
        expires_at: c.expires_at,
        now: c.at,
    }
}

fn join(name: &str, ms: i64) -> SessionCommand {
    SessionCommand::Join {
        party_id: pid(name),
        token: token_digest(&format!("token-{name}")),
        now: at(ms),
    }
}

fn joined(name: &str, ms: i64) -> SessionEvent {
    SessionEvent::ParticipantJoined {
        party_id: pid(name),
        at: at(ms),
    }
}

fn started_keygen() -> Vec<SessionEvent> {
    vec![
        SessionEvent::SessionCreated(keygen_created()),
        joined("device", 1),
        joined("server", 2),
        joined("recovery", 3),
        SessionEvent::SessionStarted { at: at(3) },
    ]
}

fn signing_key() -> SigningKey {
    SigningKey::from_bytes(&[7u8; 32].into()).unwrap()
}

fn group_key() -> PublicKey {
    let point = signing_key().verifying_key().to_sec1_point(true);
    PublicKey::from_slice(point.as_bytes()).unwrap()
}

fn other_key() -> PublicKey {
    let sk = SigningKey::from_bytes(&[9u8; 32].into()).unwrap();
    PublicKey::from_slice(sk.verifying_key().to_sec1_point(true).as_bytes()).unwrap()
}

fn pk_report(name: &str, pk: PublicKey, ms: i64) -> SessionCommand {
    SessionCommand::ReportCompletion {
        party_id: pid(name),
        outcome: PartyOutcome::PublicKey(pk),
        now: at(ms),
    }
}

fn pk_completed(name: &str, pk: PublicKey, ms: i64) -> SessionEvent {
    SessionEvent::PartyCompleted {
        party_id: pid(name),
        outcome: PartyOutcome::PublicKey(pk),
        at: at(ms),
    }
}

const MESSAGE: &[u8] = b"transfer 1 BTC to bc1q...";

fn message_hash() -> MessageHash {
    MessageHash::from_bytes(Sha256::digest(MESSAGE).into())
}

fn sign(hash: &MessageHash) -> Signature {
    let (sig, _) = signing_key().sign_prehash_recoverable(hash.as_bytes());
    let sig = sig.normalize_s();
    let bytes = sig.to_bytes();
    let rec = k256::ecdsa::RecoveryId::trial_recovery_from_prehash(
        signing_key().verifying_key(),
        hash.as_bytes(),
        &sig,
    )
    .unwrap();
    Signature::new(&bytes[..32], &bytes[32..], rec.to_byte()).unwrap()
}

fn key_ref() -> KeyRef {
    KeyRef {
        key_id: KeyId::of_keygen(keygen_session()),
        public_key: group_key(),
        threshold: Threshold::new(2, 3).unwrap(),
        parties: trio(),
        epoch: 1,
    }
}

fn signing_created(signers: &[&str]) -> SessionCreated {
    let participants: Vec<_> = trio()
        .into_iter()
        .filter(|p| signers.contains(&p.party_id.as_str()))
        .collect();
    SessionCreated {
        session_id: SessionId::from_uuid(uuid::Uuid::from_u128(2)),
        spec: SessionSpec::Signing {
            key: key_ref(),
            message_hash: message_hash(),
            message: Some(MESSAGE.to_vec()),
            approval: None,
        },
        join_tokens: tokens(&participants),
        participants,
        join_expires_at: at(60_000),
        expires_at: at(120_000),
        at: at(0),
    }
}

fn started_signing() -> Vec<SessionEvent> {
    vec![
        SessionEvent::SessionCreated(signing_created(&["device", "server"])),
        joined("device", 1),
        joined("server", 2),
        SessionEvent::SessionStarted { at: at(2) },
    ]
}

/// A signing session the server's verified signature completed at 10 ms.
fn completed_by_server() -> (Signature, Vec<SessionEvent>) {
    let sig = sign(&message_hash());
    let mut events = started_signing();
    events.extend(
        given::<SessionAggregate>(started_signing())
            .when(sig_report("server", sig, 10))
            .events(),
    );
    (sig, events)
}

fn sig_report(name: &str, sig: Signature, ms: i64) -> SessionCommand {
    SessionCommand::ReportCompletion {
        party_id: pid(name),
        outcome: PartyOutcome::Signature(sig),
        now: at(ms),
    }
}

// --- create ---

#[test]
fn creating_a_keygen_session_records_it() {
    given::<SessionAggregate>([])
        .when(create_from(keygen_created()))
        .then([SessionEvent::SessionCreated(keygen_created())]);
}

#[test]
fn creating_a_session_twice_is_refused() {
    given::<SessionAggregate>([SessionEvent::SessionCreated(keygen_created())])
        .when(create_from(keygen_created()))
        .then_err(SessionError::AlreadyExists);
}

#[test]
fn keygen_needs_exactly_n_participants() {
    let mut c = keygen_created();
    c.participants.pop();
    c.join_tokens = tokens(&c.participants);
    given::<SessionAggregate>([])
        .when(create_from(c))
        .then_err(SessionError::ParticipantCount {
            kind: SessionKind::Keygen,
            expected: 3,
            got: 2,
        });
}

#[test]
fn duplicate_party_ids_are_refused() {
    let mut c = keygen_created();
    c.participants[2] = participant("device", 9);
    given::<SessionAggregate>([])
        .when(create_from(c))
        .then_err(SessionError::DuplicateParty(pid("device")));
}

#[test]
fn thresholds_outside_two_to_n_cannot_even_be_expressed() {
    assert_eq!(Threshold::new(4, 3), Err(IdError::Threshold { t: 4, n: 3 }));
    assert_eq!(Threshold::new(1, 3), Err(IdError::Threshold { t: 1, n: 3 }));
}

#[test]
fn join_tokens_must_cover_exactly_the_participants() {
    let mut c = keygen_created();
    c.join_tokens.remove(&pid("server"));
    given::<SessionAggregate>([])
        .when(create_from(c))
        .then_err(SessionError::JoinTokensMismatch);
}

#[test]
fn deadlines_in_the_past_are_refused() {
    let mut c = keygen_created();
    c.join_expires_at = c.at;
    given::<SessionAggregate>([])
        .when(create_from(c))
        .then_err(SessionError::InvalidDeadline);
    let mut c = keygen_created();
    c.expires_at = at(30_000);
    given::<SessionAggregate>([])
        .when(create_from(c))
        .then_err(SessionError::InvalidDeadline);
}

#[test]
fn a_signing_session_with_t_key_holders_is_recorded() {
    let c = signing_created(&["device", "server"]);
    given::<SessionAggregate>([])
        .when(create_from(c.clone()))
        .then([SessionEvent::SessionCreated(c)]);
}

#[test]
fn a_signing_session_needs_exactly_t_signers() {
    let c = signing_created(&["device", "server", "recovery"]);
    given::<SessionAggregate>([])
        .when(create_from(c))
        .then_err(SessionError::ParticipantCount {
            kind: SessionKind::Signing,
            expected: 2,
            got: 3,
        });
}

#[test]
fn a_signer_outside_the_key_is_refused() {
    let mut c = signing_created(&["device", "server"]);
    c.participants[1] = participant("mallory", 2);
    c.join_tokens = tokens(&c.participants);
    given::<SessionAggregate>([])
        .when(create_from(c))
        .then_err(SessionError::NotAKeyHolder(pid("mallory")));
}

#[test]
fn a_signer_with_another_identity_key_is_refused() {
    let mut c = signing_created(&["device", "server"]);
    c.participants[1] = participant("server", 42);
    given::<SessionAggregate>([])
        .when(create_from(c))
        .then_err(SessionError::IdentityMismatch(pid("server")));
}

#[test]
fn a_message_that_does_not_hash_to_the_message_hash_is_refused() {
    let mut c = signing_created(&["device", "server"]);
    if let SessionSpec::Signing { message, .. } = &mut c.spec {
        *message = Some(b"something else".to_vec());
    }
    given::<SessionAggregate>([])
        .when(create_from(c))
        .then_err(SessionError::MessageHashMismatch);
}

// --- join ---

#[test]
fn joining_records_the_participant() {
    given::<SessionAggregate>([SessionEvent::SessionCreated(keygen_created())])
        .when(join("server", 5))
        .then([joined("server", 5)]);
}

#[test]
fn the_last_join_starts_the_session() {
    given::<SessionAggregate>([
        SessionEvent::SessionCreated(keygen_created()),
        joined("device", 1),
        joined("server", 2),
    ])
    .when(join("recovery", 3))
    .then([
        joined("recovery", 3),
        SessionEvent::SessionStarted { at: at(3) },
    ]);
}

#[test]
fn joining_an_unknown_session_is_refused() {
    given::<SessionAggregate>([])
        .when(join("device", 1))
        .then_err(SessionError::UnknownSession);
}

#[test]
fn a_wrong_token_is_refused() {
    given::<SessionAggregate>([SessionEvent::SessionCreated(keygen_created())])
        .when(SessionCommand::Join {
            party_id: pid("device"),
            token: token_digest("token-server"),
            now: at(1),
        })
        .then_err(SessionError::InvalidToken);
}

#[test]
fn a_party_that_was_not_invited_cannot_join() {
    given::<SessionAggregate>([SessionEvent::SessionCreated(keygen_created())])
        .when(join("mallory", 1))
        .then_err(SessionError::UnknownParty(pid("mallory")));
}

#[test]
fn a_reused_token_is_refused() {
    given::<SessionAggregate>([
        SessionEvent::SessionCreated(keygen_created()),
        joined("device", 1),
    ])
    .when(join("device", 2))
    .then_err(SessionError::AlreadyJoined(pid("device")));
}

#[test]
fn an_expired_token_is_refused() {
    given::<SessionAggregate>([SessionEvent::SessionCreated(keygen_created())])
        .when(join("device", 60_001))
        .then_err(SessionError::TokenExpired);
}

#[test]
fn joining_a_failed_session_is_refused() {
    let mut events = vec![SessionEvent::SessionCreated(keygen_created())];
    events.push(SessionEvent::SessionFailed {
        reason: FailureReason::Closed {
            reason: "operator".into(),
        },
        at: at(1),
    });
    given::<SessionAggregate>(events)
        .when(join("device", 2))
        .then_err(SessionError::NotJoinable(SessionStatus::Failed));
}

// --- keygen completion ---

#[test]
fn a_keygen_report_is_recorded_until_all_have_reported() {
    given::<SessionAggregate>(started_keygen())
        .when(pk_report("device", group_key(), 10))
        .then([pk_completed("device", group_key(), 10)]);
}

#[test]
fn keygen_completes_when_every_party_reports_the_same_key() {
    let mut events = started_keygen();
    events.push(pk_completed("device", group_key(), 10));
    events.push(pk_completed("server", group_key(), 11));
    given::<SessionAggregate>(events)
        .when(pk_report("recovery", group_key(), 12))
        .then([
            pk_completed("recovery", group_key(), 12),
            SessionEvent::SessionCompleted {
                outcome: PartyOutcome::PublicKey(group_key()),
                at: at(12),
            },
        ]);
}

#[test]
fn keygen_fails_naming_the_party_that_reported_another_key() {
    let mut events = started_keygen();
    events.push(pk_completed("device", group_key(), 10));
    events.push(pk_completed("server", other_key(), 11));
    given::<SessionAggregate>(events)
        .when(pk_report("recovery", group_key(), 12))
        .then([
            pk_completed("recovery", group_key(), 12),
            SessionEvent::SessionFailed {
                reason: FailureReason::PublicKeyMismatch {
                    disagreeing: vec![pid("server")],
                },
                at: at(12),
            },
        ]);
}

#[test]
fn a_report_repeated_word_for_word_records_nothing() {
    let mut events = started_keygen();
    events.push(pk_completed("device", group_key(), 10));
    given::<SessionAggregate>(events)
        .when(pk_report("device", group_key(), 11))
        .then([]);
}

#[test]
fn reporting_another_outcome_after_a_report_is_refused() {
    let mut events = started_keygen();
    events.push(pk_completed("device", group_key(), 10));
    given::<SessionAggregate>(events)
        .when(pk_report("device", other_key(), 11))
        .then_err(SessionError::AlreadyReported(pid("device")));
}

#[test]
fn the_signature_that_completed_the_session_reported_again_records_nothing() {
    let (sig, events) = completed_by_server();
    given::<SessionAggregate>(events)
        .when(sig_report("server", sig, 130_000))
        .then([]);
}

#[test]
fn reporting_before_the_session_started_is_refused() {
    given::<SessionAggregate>([SessionEvent::SessionCreated(keygen_created())])
        .when(pk_report("device", group_key(), 10))
        .then_err(SessionError::NotInProgress(SessionStatus::Created));
}

#[test]
fn a_public_key_that_is_not_on_the_curve_is_refused() {
    let mut bytes = *group_key().as_bytes();
    bytes[1..].copy_from_slice(&[0xff; 32]);
    let bogus = PublicKey::from_slice(&bytes).unwrap();
    given::<SessionAggregate>(started_keygen())
        .when(pk_report("device", bogus, 10))
        .then_err(SessionError::InvalidPublicKey);
}

#[test]
fn a_signature_reported_to_a_keygen_session_is_refused() {
    given::<SessionAggregate>(started_keygen())
        .when(sig_report("device", sign(&message_hash()), 10))
        .then_err(SessionError::WrongOutcome {
            kind: SessionKind::Keygen,
        });
}

#[test]
fn a_report_after_the_deadline_is_refused() {
    given::<SessionAggregate>(started_keygen())
        .when(pk_report("device", group_key(), 120_000))
        .then_err(SessionError::DeadlinePassed);
}

// --- signing completion ---

#[test]
fn a_verified_signature_completes_the_signing_session() {
    let sig = sign(&message_hash());
    given::<SessionAggregate>(started_signing())
        .when(sig_report("server", sig, 10))
        .then([
            SessionEvent::PartyCompleted {
                party_id: pid("server"),
                outcome: PartyOutcome::Signature(sig),
                at: at(10),
            },
            SessionEvent::SessionCompleted {
                outcome: PartyOutcome::Signature(sig),
                at: at(10),
            },
        ]);
}

#[test]
fn a_second_signer_reporting_the_same_signature_is_recorded() {
    let (sig, events) = completed_by_server();
    given::<SessionAggregate>(events)
        .when(sig_report("device", sig, 11))
        .then([SessionEvent::PartyCompleted {
            party_id: pid("device"),
            outcome: PartyOutcome::Signature(sig),
            at: at(11),
        }]);
}

#[test]
fn a_signature_that_does_not_verify_fails_the_session_naming_the_reporter() {
    let wrong = sign(&MessageHash::from_bytes([1; 32]));
    given::<SessionAggregate>(started_signing())
        .when(sig_report("device", wrong, 10))
        .then([SessionEvent::SessionFailed {
            reason: FailureReason::InvalidSignature {
                reported_by: pid("device"),
            },
            at: at(10),
        }]);
}

#[test]
fn a_party_outside_the_signing_session_cannot_report() {
    given::<SessionAggregate>(started_signing())
        .when(sig_report("recovery", sign(&message_hash()), 10))
        .then_err(SessionError::UnknownParty(pid("recovery")));
}

// --- failure, close, expire ---

#[test]
fn a_party_abort_fails_the_session_naming_the_culprit() {
    given::<SessionAggregate>(started_keygen())
        .when(SessionCommand::ReportFailure {
            party_id: pid("device"),
            culprits: vec![pid("server")],
            detail: "proof verification failed".into(),
            now: at(10),
        })
        .then([SessionEvent::SessionFailed {
            reason: FailureReason::PartyAborted {
                reported_by: pid("device"),
                culprits: vec![pid("server")],
                detail: "proof verification failed".into(),
            },
            at: at(10),
        }]);
}

/// A keygen only the device has joined yet.
fn joined_by_device() -> [SessionEvent; 2] {
    [
        SessionEvent::SessionCreated(keygen_created()),
        SessionEvent::ParticipantJoined {
            party_id: pid("device"),
            at: at(5),
        },
    ]
}

/// `party` ends the session naming nobody, giving `detail`.
fn refusal(party: &str, detail: &str) -> SessionCommand {
    SessionCommand::ReportFailure {
        party_id: pid(party),
        culprits: vec![],
        detail: detail.into(),
        now: at(10),
    }
}

#[test]
fn a_party_that_joined_and_refuses_fails_the_session_before_it_starts() {
    let refused = "session registered another identity key for this party";
    given::<SessionAggregate>(joined_by_device())
        .when(refusal("device", refused))
        .then([SessionEvent::SessionFailed {
            reason: FailureReason::PartyAborted {
                reported_by: pid("device"),
                culprits: vec![],
                detail: refused.into(),
            },
            at: at(10),
        }]);
}

#[test]
fn a_party_that_has_not_joined_cannot_fail_a_session_before_it_starts() {
    given::<SessionAggregate>(joined_by_device())
        .when(refusal("server", "no"))
        .then_err(SessionError::NotInProgress(SessionStatus::Created));
}

#[test]
fn an_abort_blaming_a_stranger_is_refused() {
    given::<SessionAggregate>(started_keygen())
        .when(SessionCommand::ReportFailure {
            party_id: pid("device"),
            culprits: vec![pid("mallory")],
            detail: "x".into(),
            now: at(10),
        })
        .then_err(SessionError::UnknownParty(pid("mallory")));
}

#[test]
fn closing_an_open_session_fails_it() {
    given::<SessionAggregate>(started_keygen())
        .when(SessionCommand::Close {
            reason: "operator cancelled".into(),
            now: at(10),
        })
        .then([SessionEvent::SessionFailed {
            reason: FailureReason::Closed {
                reason: "operator cancelled".into(),
            },
            at: at(10),
        }]);
}

#[test]
fn closing_a_finished_session_is_refused() {
    let mut events = started_keygen();
    events.push(SessionEvent::SessionExpired { at: at(120_000) });
    given::<SessionAggregate>(events)
        .when(SessionCommand::Close {
            reason: "late".into(),
            now: at(120_001),
        })
        .then_err(SessionError::Terminal(SessionStatus::Expired));
}

#[test]
fn a_session_expires_at_its_deadline() {
    given::<SessionAggregate>(started_keygen())
        .when(SessionCommand::Expire { now: at(120_000) })
        .then([SessionEvent::SessionExpired { at: at(120_000) }]);
}

#[test]
fn a_session_does_not_expire_before_its_deadline() {
    given::<SessionAggregate>(started_keygen())
        .when(SessionCommand::Expire { now: at(119_999) })
        .then_err(SessionError::NotYetExpired(T0 + 120_000));
}

#[test]
fn expiring_an_unknown_session_is_refused() {
    given::<SessionAggregate>([])
        .when(SessionCommand::Expire { now: at(0) })
        .then_err(SessionError::UnknownSession);
}

// --- evolve and view ---

#[test]
fn evolve_folds_a_session_to_completed_with_its_key() {
    let mut events = started_keygen();
    for (i, name) in ["device", "server", "recovery"].into_iter().enumerate() {
        events.push(pk_completed(name, group_key(), 10 + i as i64));
    }
    events.push(SessionEvent::SessionCompleted {
        outcome: PartyOutcome::PublicKey(group_key()),
        at: at(12),
    });
    let state = events
        .iter()
        .fold(super::SessionState::default(), super::evolve);
    let s = state.0.unwrap();
    assert_eq!(s.status, SessionStatus::Completed);
    assert_eq!(s.outcome, Some(PartyOutcome::PublicKey(group_key())));
    assert_eq!(s.joined.len(), 3);
    assert_eq!(s.updated_at, at(12));
}

#[test]
fn events_before_creation_leave_the_state_empty() {
    let state = super::evolve(super::SessionState::default(), &joined("device", 1));
    assert_eq!(state.0, None);
}

#[test]
fn a_signing_view_numbers_signers_by_their_place_in_the_key() {
    let events = [SessionEvent::SessionCreated(signing_created(&[
        "server", "recovery",
    ]))];
    let state = events
        .iter()
        .fold(super::SessionState::default(), super::evolve);
    let view = state.0.unwrap().view();
    let indices: Vec<_> = view
        .participants
        .iter()
        .map(|(i, p)| (*i, p.party_id.to_string()))
        .collect();
    assert_eq!(
        indices,
        vec![(2, "server".to_string()), (3, "recovery".to_string())]
    );
}

// --- refresh ---

fn new_device() -> IdentityKey {
    IdentityKey::new(&[44; 32], &[45; 32]).unwrap()
}

/// A repair of the device's share, authorized by server and recovery.
fn repair(helpers: &[&str]) -> RepairSpec {
    let key = key_ref();
    let authorizations = [1, 2]
        .into_iter()
        .map(|i| SignedApproval {
            approver: key.parties[i].party_id.clone(),
            signature: holder_identities()[i].authorize_recovery(
                key.key_id,
                key.epoch,
                &pid("device"),
                &new_device(),
            ),
        })
        .collect();
    RepairSpec {
        target: pid("device"),
        identity: new_device(),
        helpers: helpers.iter().map(|h| pid(h)).collect(),
        authorizations,
        policy: KeyPolicy::AnyRequest,
    }
}

fn refresh_created(repair: Option<RepairSpec>) -> SessionCreated {
    let mut participants = trio();
    if let Some(r) = &repair {
        participants[0].identity = r.identity;
    }
    SessionCreated {
        session_id: SessionId::from_uuid(uuid::Uuid::from_u128(3)),
        spec: SessionSpec::Refresh {
            key: key_ref(),
            repair: repair.map(Box::new),
        },
        join_tokens: tokens(&participants),
        participants,
        join_expires_at: at(60_000),
        expires_at: at(120_000),
        at: at(0),
    }
}

fn started_refresh(repair: Option<RepairSpec>) -> Vec<SessionEvent> {
    vec![
        SessionEvent::SessionCreated(refresh_created(repair)),
        joined("device", 1),
        joined("server", 2),
        joined("recovery", 3),
        SessionEvent::SessionStarted { at: at(3) },
    ]
}

fn refreshed(pk: PublicKey, digest: u8) -> PartyOutcome {
    PartyOutcome::Refreshed {
        public_key: pk,
        digest: RefreshDigest::from_bytes([digest; 32]),
    }
}

fn refresh_report(name: &str, outcome: PartyOutcome, ms: i64) -> SessionCommand {
    SessionCommand::ReportCompletion {
        party_id: pid(name),
        outcome,
        now: at(ms),
    }
}

fn refresh_reported(name: &str, outcome: PartyOutcome, ms: i64) -> SessionEvent {
    SessionEvent::PartyCompleted {
        party_id: pid(name),
        outcome,
        at: at(ms),
    }
}

#[test]
fn a_plain_refresh_and_a_repair_with_t_helpers_are_created() {
    for repair in [None, Some(repair(&["server", "recovery"]))] {
        let created = refresh_created(repair);
        given::<SessionAggregate>([])
            .when(create_from(created.clone()))
            .then([SessionEvent::SessionCreated(created)]);
    }
}

#[test]
fn a_refresh_needs_every_holder() {
    let mut c = refresh_created(None);
    c.participants.pop();
    c.join_tokens = tokens(&c.participants);
    given::<SessionAggregate>([])
        .when(create_from(c))
        .then_err(SessionError::ParticipantCount {
            kind: SessionKind::Refresh,
            expected: 3,
            got: 2,
        });
}

#[test]
fn a_repair_with_fewer_than_t_helpers_is_refused() {
    given::<SessionAggregate>([])
        .when(create_from(refresh_created(Some(repair(&["server"])))))
        .then_err(SessionError::TooFewHelpers { needed: 2, got: 1 });
}

#[test]
fn the_target_cannot_help_rebuild_its_own_share() {
    given::<SessionAggregate>([])
        .when(create_from(refresh_created(Some(repair(&[
            "server", "device",
        ])))))
        .then_err(SessionError::TargetIsHelper(pid("device")));
}

#[test]
fn the_target_must_present_the_new_device_identity_and_helpers_their_own() {
    let mut impostor = refresh_created(Some(repair(&["server", "recovery"])));
    impostor.participants[0].identity = IdentityKey::new(&[66; 32], &[67; 32]).unwrap();
    given::<SessionAggregate>([])
        .when(create_from(impostor))
        .then_err(SessionError::IdentityMismatch(pid("device")));
    let mut swapped = refresh_created(Some(repair(&["server", "recovery"])));
    swapped.participants[1].identity = new_device();
    given::<SessionAggregate>([])
        .when(create_from(swapped))
        .then_err(SessionError::IdentityMismatch(pid("server")));
}

#[test]
fn a_repair_without_the_authorizations_of_t_other_holders_is_refused() {
    let mut one = repair(&["server", "recovery"]);
    one.authorizations.pop();
    let mut replayed = repair(&["server", "recovery"]);
    replayed.identity = IdentityKey::new(&[66; 32], &[67; 32]).unwrap();
    for (r, why) in [
        (
            one,
            "1 authorizations by holders other than the target, the repair needs at least 2",
        ),
        (
            replayed,
            "the authorization of server does not verify for this key, generation, target and new identity",
        ),
    ] {
        given::<SessionAggregate>([])
            .when(create_from(refresh_created(Some(r))))
            .then_err(SessionError::RepairNotAuthorized(why.to_owned()));
    }
}

#[test]
fn the_new_device_identity_must_be_new() {
    let mut r = repair(&["server", "recovery"]);
    r.identity = trio()[1].identity;
    given::<SessionAggregate>([])
        .when(create_from(refresh_created(Some(r))))
        .then_err(SessionError::RepairIdentityNotNew);
}

#[test]
fn a_refresh_completes_when_every_holder_reports_the_same_digest() {
    let mut history = started_refresh(None);
    history.push(refresh_reported("device", refreshed(group_key(), 1), 10));
    history.push(refresh_reported("server", refreshed(group_key(), 1), 11));
    given::<SessionAggregate>(history)
        .when(refresh_report("recovery", refreshed(group_key(), 1), 12))
        .then([
            refresh_reported("recovery", refreshed(group_key(), 1), 12),
            SessionEvent::SessionCompleted {
                outcome: refreshed(group_key(), 1),
                at: at(12),
            },
        ]);
}

#[test]
fn a_refresh_with_a_dissenting_digest_fails_naming_the_dissenter() {
    let mut history = started_refresh(None);
    history.push(refresh_reported("device", refreshed(group_key(), 1), 10));
    history.push(refresh_reported("server", refreshed(group_key(), 2), 11));
    given::<SessionAggregate>(history)
        .when(refresh_report("recovery", refreshed(group_key(), 1), 12))
        .then([
            refresh_reported("recovery", refreshed(group_key(), 1), 12),
            SessionEvent::SessionFailed {
                reason: FailureReason::PublicKeyMismatch {
                    disagreeing: vec![pid("server")],
                },
                at: at(12),
            },
        ]);
}

#[test]
fn a_refresh_that_changes_the_group_key_fails() {
    let mut history = started_refresh(None);
    history.push(refresh_reported("device", refreshed(other_key(), 1), 10));
    history.push(refresh_reported("server", refreshed(other_key(), 1), 11));
    given::<SessionAggregate>(history)
        .when(refresh_report("recovery", refreshed(other_key(), 1), 12))
        .then([
            refresh_reported("recovery", refreshed(other_key(), 1), 12),
            SessionEvent::SessionFailed {
                reason: FailureReason::PublicKeyMismatch {
                    disagreeing: vec![pid("device"), pid("server"), pid("recovery")],
                },
                at: at(12),
            },
        ]);
}

#[test]
fn a_refresh_accepts_only_refresh_results() {
    given::<SessionAggregate>(started_refresh(None))
        .when(pk_report("device", group_key(), 10))
        .then_err(SessionError::WrongOutcome {
            kind: SessionKind::Refresh,
        });
}

#[test]
fn a_completed_repair_moves_the_key_to_the_next_generation_under_the_new_device() {
    let spec = refresh_created(Some(repair(&["server", "recovery"]))).spec;
    let next = super::refreshed_key(&spec).unwrap();
    assert_eq!(next.epoch, 2);
    assert_eq!(next.public_key, group_key());
    assert_eq!(next.parties[0].identity, new_device());
    assert_eq!(next.parties[1..], trio()[1..]);
    let keygen = keygen_created().spec;
    assert!(super::refreshed_key(&keygen).is_none());
}
