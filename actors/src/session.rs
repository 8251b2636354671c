//! The MPC session aggregate: the coordinator's rules as pure functions.
//!
//! created → (all joined) → in_progress → completed | failed | expired.
//! A keygen session completes when every party reports the same public key; a
//! signing session completes when a reported signature verifies against the key; a
//! refresh session completes when every holder reports the key's public key and the
//! same refresh digest. A refresh that rebuilds a lost share names the target, the
//! new device identity that replaces the target's, and at least t other holders
//! as helpers.
//! A signing session started by an approval workflow carries the approvals; it is
//! only created when they are exactly t valid approvals by its signers.

use std::collections::BTreeSet;

use mpc_events::{
    FailureReason, KeyRef, Participant, PartyId, PartyOutcome, PublicKey, RepairSpec,
    SessionCommand, SessionCreated, SessionError, SessionEvent, SessionKind, SessionSpec,
    SessionStatus, SessionView, Timestamp, stream,
};
use mpc_schemas::{Encoded, SchemaError};
use sha2::{Digest, Sha256};

use crate::aggregate::Aggregate;

/// A session as the coordinator knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub created: SessionCreated,
    pub status: SessionStatus,
    pub joined: BTreeSet<PartyId>,
    /// What each party reported, in the order reports arrived.
    pub reports: Vec<(PartyId, PartyOutcome)>,
    pub outcome: Option<PartyOutcome>,
    pub failure: Option<FailureReason>,
    pub updated_at: Timestamp,
}

impl Session {
    pub fn kind(&self) -> SessionKind {
        self.created.spec.kind()
    }

    fn participant(&self, party: &PartyId) -> Result<&Participant, SessionError> {
        self.created
            .participants
            .iter()
            .find(|p| &p.party_id == party)
            .ok_or_else(|| SessionError::UnknownParty(party.clone()))
    }

    /// Participants with their protocol indices: keygen order for keygen, the
    /// party's position in the key for signing.
    pub fn view(&self) -> SessionView {
        let indexed = match &self.created.spec {
            SessionSpec::Keygen { .. } => self
                .created
                .participants
                .iter()
                .zip(1u8..)
                .map(|(p, i)| (i, p.clone()))
                .collect(),
            SessionSpec::Signing { key, .. } | SessionSpec::Refresh { key, .. } => {
                let mut v: Vec<_> = self
                    .created
                    .participants
                    .iter()
                    .filter_map(|p| {
                        key.parties
                            .iter()
                            .position(|k| k.party_id == p.party_id)
                            .and_then(|pos| u8::try_from(pos + 1).ok())
                            .map(|i| (i, p.clone()))
                    })
                    .collect();
                v.sort_by_key(|(i, _)| *i);
                v
            }
        };
        SessionView {
            session_id: self.created.session_id,
            spec: self.created.spec.clone(),
            participants: indexed,
            status: self.status,
            expires_at: self.created.expires_at,
        }
    }
}

/// Sessions by kind and outcome (`created`, then `completed`, `failed` or `expired`).
pub const SESSIONS_TOTAL: &str = "mpc_sessions_total";
/// Time from creation to the end of a session, by kind, outcome and `t-of-n`.
pub const SESSION_SECONDS: &str = "mpc_session_duration_seconds";

/// Counts `events` of `session` into [`SESSIONS_TOTAL`] and, for its end,
/// [`SESSION_SECONDS`].
fn observe(session: &Session, events: &[SessionEvent]) {
    let kind = session.kind().to_string();
    for event in events {
        let outcome = match event {
            SessionEvent::SessionCreated(_) => "created",
            SessionEvent::SessionCompleted { .. } => "completed",
            SessionEvent::SessionFailed { .. } => "failed",
            SessionEvent::SessionExpired { .. } => "expired",
            _ => continue,
        };
        metrics::counter!(SESSIONS_TOTAL, "kind" => kind.clone(), "outcome" => outcome)
            .increment(1);
        if outcome != "created" {
            let threshold = session.created.spec.threshold();
            let millis = event
                .at()
                .as_millis()
                .saturating_sub(session.created.at.as_millis());
            metrics::histogram!(
                SESSION_SECONDS,
                "kind" => kind.clone(),
                "outcome" => outcome,
                "threshold" => format!("{}-of-{}", threshold.t(), threshold.n()),
            )
            .record(millis as f64 / 1000.0);
        }
    }
}

/// The folded state of one session stream; `None` until it is created.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionState(pub Option<Session>);

/// Marker type implementing [`Aggregate`] for sessions.
pub struct SessionAggregate;

impl Aggregate for SessionAggregate {
    type State = SessionState;
    type Command = SessionCommand;
    type Event = SessionEvent;
    type Error = SessionError;
    const CATEGORY: &'static str = stream::SESSION;

    fn decide(
        state: &SessionState,
        command: SessionCommand,
    ) -> Result<Vec<SessionEvent>, SessionError> {
        decide(state, command)
    }

    fn evolve(state: SessionState, event: &SessionEvent) -> SessionState {
        evolve(state, event)
    }

    fn deadline(state: &SessionState) -> Option<Timestamp> {
        state
            .0
            .as_ref()
            .filter(|s| !s.status.is_terminal())
            .map(|s| s.created.expires_at)
    }

    fn deadline_command(now: Timestamp) -> Option<SessionCommand> {
        Some(SessionCommand::Expire { now })
    }

    fn observe(state: &SessionState, events: &[SessionEvent]) {
        if let Some(session) = &state.0 {
            observe(session, events);
        }
    }

    fn encode(event: &SessionEvent) -> Result<Encoded, SchemaError> {
        mpc_schemas::stored::session::encode(event)
    }

    fn decode(event_type: &str, version: u16, payload: &[u8]) -> Result<SessionEvent, SchemaError> {
        mpc_schemas::stored::session::decode(event_type, version, payload)
    }

    fn occurred_at(event: &SessionEvent) -> Timestamp {
        event.at()
    }
}

/// The events `command` causes, or why it is refused. Pure.
pub fn decide(
    state: &SessionState,
    command: SessionCommand,
) -> Result<Vec<SessionEvent>, SessionError> {
    let session = match (&state.0, command) {
        (
            None,
            SessionCommand::Create {
                session_id,
                spec,
                participants,
                join_tokens,
                join_expires_at,
                expires_at,
                now,
            },
        ) => {
            let created = SessionCreated {
                session_id,
                spec,
                participants,
                join_tokens,
                join_expires_at,
                expires_at,
                at: now,
            };
            validate_new(&created)?;
            return Ok(vec![SessionEvent::SessionCreated(created)]);
        }
        (Some(_), SessionCommand::Create { .. }) => return Err(SessionError::AlreadyExists),
        (None, _) => return Err(SessionError::UnknownSession),
        (Some(session), command) => (session, command),
    };
    match session {
        (
            s,
            SessionCommand::Join {
                party_id,
                token,
                now,
            },
        ) => {
            s.participant(&party_id)?;
            if s.created.join_tokens.get(&party_id) != Some(&token) {
                return Err(SessionError::InvalidToken);
            }
            if s.joined.contains(&party_id) {
                return Err(SessionError::AlreadyJoined(party_id));
            }
            if s.status != SessionStatus::Created {
                return Err(SessionError::NotJoinable(s.status));
            }
            if now > s.created.join_expires_at {
                return Err(SessionError::TokenExpired);
            }
            let mut events = vec![SessionEvent::ParticipantJoined { party_id, at: now }];
            if s.joined.len() + 1 == s.created.participants.len() {
                events.push(SessionEvent::SessionStarted { at: now });
            }
            Ok(events)
        }
        (
            s,
            SessionCommand::ReportCompletion {
                party_id,
                outcome,
                now,
            },
        ) => report_completion(s, party_id, outcome, now),
        (
            s,
            SessionCommand::ReportFailure {
                party_id,
                culprits,
                detail,
                now,
            },
        ) => {
            s.participant(&party_id)?;
            for c in &culprits {
                s.participant(c)?;
            }
            // A participant that joined and refuses what the session asks ends it
            // at once, with its reason, rather than leaving the others to wait out
            // the deadline.
            let refusing = s.status == SessionStatus::Created && s.joined.contains(&party_id);
            if s.status != SessionStatus::InProgress && !refusing {
                return Err(SessionError::NotInProgress(s.status));
            }
            Ok(vec![SessionEvent::SessionFailed {
                reason: FailureReason::PartyAborted {
                    reported_by: party_id,
                    culprits,
                    detail,
                },
                at: now,
            }])
        }
        (s, SessionCommand::Close { reason, now }) => {
            if s.status.is_terminal() {
                return Err(SessionError::Terminal(s.status));
            }
            Ok(vec![SessionEvent::SessionFailed {
                reason: FailureReason::Closed { reason },
                at: now,
            }])
        }
        (s, SessionCommand::Expire { now }) => {
            if s.status.is_terminal() {
                return Err(SessionError::Terminal(s.status));
            }
            if now < s.created.expires_at {
                return Err(SessionError::NotYetExpired(
                    s.created.expires_at.as_millis(),
                ));
            }
            Ok(vec![SessionEvent::SessionExpired { at: now }])
        }
        (_, SessionCommand::Create { .. }) => Err(SessionError::AlreadyExists),
    }
}

fn validate_new(c: &SessionCreated) -> Result<(), SessionError> {
    let mut seen = BTreeSet::new();
    for p in &c.participants {
        if !seen.insert(&p.party_id) {
            return Err(SessionError::DuplicateParty(p.party_id.clone()));
        }
    }
    let threshold = c.spec.threshold();
    let expected = match &c.spec {
        SessionSpec::Keygen { threshold, .. } => usize::from(threshold.n()),
        SessionSpec::Signing {
            key,
            message_hash,
            message,
            approval,
        } => {
            if key.parties.len() != usize::from(threshold.n()) {
                return Err(SessionError::ParticipantCount {
                    kind: SessionKind::Keygen,
                    expected: usize::from(threshold.n()),
                    got: key.parties.len(),
                });
            }
            if !is_valid_point(&key.public_key) {
                return Err(SessionError::InvalidPublicKey);
            }
            for p in &c.participants {
                let holder = key
                    .parties
                    .iter()
                    .find(|k| k.party_id == p.party_id)
                    .ok_or_else(|| SessionError::NotAKeyHolder(p.party_id.clone()))?;
                if holder.identity != p.identity {
                    return Err(SessionError::IdentityMismatch(p.party_id.clone()));
                }
            }
            if let Some(message) = message
                && Sha256::digest(message).as_slice() != message_hash.as_bytes()
            {
                return Err(SessionError::MessageHashMismatch);
            }
            if let Some(evidence) = approval {
                if &evidence.payload_hash != message_hash {
                    return Err(SessionError::MessageHashMismatch);
                }
                let signers: Vec<PartyId> =
                    c.participants.iter().map(|p| p.party_id.clone()).collect();
                mpc_crypto::verify_evidence(evidence, key, message.as_deref(), &signers)
                    .map_err(|e| SessionError::InvalidApprovalEvidence(e.to_string()))?;
            }
            usize::from(threshold.t())
        }
        SessionSpec::Refresh { key, repair } => {
            validate_refresh(key, repair.as_deref(), &c.participants)?;
            usize::from(threshold.n())
        }
    };
    if c.participants.len() != expected {
        return Err(SessionError::ParticipantCount {
            kind: c.spec.kind(),
            expected,
            got: c.participants.len(),
        });
    }
    let token_parties: BTreeSet<_> = c.join_tokens.keys().collect();
    if token_parties != seen {
        return Err(SessionError::JoinTokensMismatch);
    }
    if c.join_expires_at <= c.at || c.expires_at < c.join_expires_at {
        return Err(SessionError::InvalidDeadline);
    }
    Ok(())
}

/// A refresh session's participants are every holder of the key, each with its
/// registered identity, except a repair's target, which presents the new device's.
/// A repair carries the authorizations of t holders other than the target (checked
/// here against the key's holders for a clear early answer; every holder checks
/// them again against the roster it pinned).
fn validate_refresh(
    key: &KeyRef,
    repair: Option<&RepairSpec>,
    participants: &[Participant],
) -> Result<(), SessionError> {
    let threshold = key.threshold;
    if key.parties.len() != usize::from(threshold.n()) {
        return Err(SessionError::ParticipantCount {
            kind: SessionKind::Keygen,
            expected: usize::from(threshold.n()),
            got: key.parties.len(),
        });
    }
    if !is_valid_point(&key.public_key) {
        return Err(SessionError::InvalidPublicKey);
    }
    if let Some(repair) = repair {
        if !key.parties.iter().any(|k| k.party_id == repair.target) {
            return Err(SessionError::NotAKeyHolder(repair.target.clone()));
        }
        if key.parties.iter().any(|k| k.identity == repair.identity) {
            return Err(SessionError::RepairIdentityNotNew);
        }
        let mut helpers = BTreeSet::new();
        for helper in &repair.helpers {
            if *helper == repair.target {
                return Err(SessionError::TargetIsHelper(helper.clone()));
            }
            if !key.parties.iter().any(|k| &k.party_id == helper) {
                return Err(SessionError::NotAKeyHolder(helper.clone()));
            }
            if !helpers.insert(helper) {
                return Err(SessionError::DuplicateParty(helper.clone()));
            }
        }
        if helpers.len() < usize::from(threshold.t()) {
            return Err(SessionError::TooFewHelpers {
                needed: threshold.t(),
                got: helpers.len(),
            });
        }
        repair_authorized(key, repair)?;
    }
    for p in participants {
        let holder = key
            .parties
            .iter()
            .find(|k| k.party_id == p.party_id)
            .ok_or_else(|| SessionError::NotAKeyHolder(p.party_id.clone()))?;
        let expected = match repair {
            Some(repair) if repair.target == p.party_id => &repair.identity,
            _ => &holder.identity,
        };
        if *expected != p.identity {
            return Err(SessionError::IdentityMismatch(p.party_id.clone()));
        }
    }
    Ok(())
}

/// Whether `repair` of `key` carries the authorizations of t holders other than
/// the target (checked against the key's holders; every holder checks again
/// against the roster it pinned).
pub(crate) fn repair_authorized(key: &KeyRef, repair: &RepairSpec) -> Result<(), SessionError> {
    mpc_crypto::verify_recovery(
        &key.parties,
        key.threshold.t(),
        key.key_id,
        key.epoch,
        repair,
    )
    .map_err(|e| SessionError::RepairNotAuthorized(e.to_string()))
}

/// The key after refresh session `spec` completed (see [`KeyRef::refreshed`]).
pub fn refreshed_key(spec: &SessionSpec) -> Option<KeyRef> {
    match spec {
        SessionSpec::Refresh { key, repair } => Some(key.refreshed(repair.as_deref())),
        _ => None,
    }
}

fn report_completion(
    s: &Session,
    party_id: PartyId,
    outcome: PartyOutcome,
    now: Timestamp,
) -> Result<Vec<SessionEvent>, SessionError> {
    s.participant(&party_id)?;
    let kind = s.kind();
    match (&outcome, kind) {
        (PartyOutcome::PublicKey(_), SessionKind::Keygen)
        | (PartyOutcome::Signature(_), SessionKind::Signing)
        | (PartyOutcome::Refreshed { .. }, SessionKind::Refresh) => {}
        _ => return Err(SessionError::WrongOutcome { kind }),
    }
    // A report repeated word for word (its first answer was lost and the party
    // retried) was recorded already: nothing more happens. Another outcome from a
    // party that reported is refused.
    if let Some((_, earlier)) = s.reports.iter().find(|(p, _)| p == &party_id) {
        if earlier == &outcome {
            return Ok(vec![]);
        }
        return Err(SessionError::AlreadyReported(party_id));
    }
    // A signer that finishes after the first verified signature completed the
    // session still gets its (identical) report recorded.
    let late_signer = s.status == SessionStatus::Completed
        && kind == SessionKind::Signing
        && s.outcome.as_ref() == Some(&outcome);
    if s.status != SessionStatus::InProgress && !late_signer {
        return Err(SessionError::NotInProgress(s.status));
    }
    if !late_signer && now >= s.created.expires_at {
        return Err(SessionError::DeadlinePassed);
    }
    let completed = SessionEvent::PartyCompleted {
        party_id: party_id.clone(),
        outcome: outcome.clone(),
        at: now,
    };
    if late_signer {
        return Ok(vec![completed]);
    }
    match (&s.created.spec, &outcome) {
        (SessionSpec::Keygen { .. }, PartyOutcome::PublicKey(pk)) => {
            if !is_valid_point(pk) {
                return Err(SessionError::InvalidPublicKey);
            }
            let mut reports: Vec<(&PartyId, &PartyOutcome)> =
                s.reports.iter().map(|(p, o)| (p, o)).collect();
            reports.push((&party_id, &outcome));
            if reports.len() < s.created.participants.len() {
                return Ok(vec![completed]);
            }
            let verdict = match majority_dissent(&reports) {
                Ok(agreed) => SessionEvent::SessionCompleted {
                    outcome: agreed.clone(),
                    at: now,
                },
                Err(disagreeing) => SessionEvent::SessionFailed {
                    reason: FailureReason::PublicKeyMismatch { disagreeing },
                    at: now,
                },
            };
            Ok(vec![completed, verdict])
        }
        (SessionSpec::Refresh { key, .. }, PartyOutcome::Refreshed { .. }) => {
            let mut reports: Vec<(&PartyId, &PartyOutcome)> =
                s.reports.iter().map(|(p, o)| (p, o)).collect();
            reports.push((&party_id, &outcome));
            if reports.len() < s.created.participants.len() {
                return Ok(vec![completed]);
            }
            let verdict = match majority_dissent(&reports) {
                Ok(agreed @ PartyOutcome::Refreshed { public_key, .. })
                    if *public_key == key.public_key =>
                {
                    SessionEvent::SessionCompleted {
                        outcome: agreed.clone(),
                        at: now,
                    }
                }
                Ok(_) => SessionEvent::SessionFailed {
                    reason: FailureReason::PublicKeyMismatch {
                        disagreeing: reports.iter().map(|(p, _)| (*p).clone()).collect(),
                    },
                    at: now,
                },
                Err(disagreeing) => SessionEvent::SessionFailed {
                    reason: FailureReason::PublicKeyMismatch { disagreeing },
                    at: now,
                },
            };
            Ok(vec![completed, verdict])
        }
        (
            SessionSpec::Signing {
                key, message_hash, ..
            },
            PartyOutcome::Signature(sig),
        ) => {
            if mpc_crypto::verify_signature(&key.public_key, message_hash, sig) {
                Ok(vec![
                    completed,
                    SessionEvent::SessionCompleted { outcome, at: now },
                ])
            } else {
                Ok(vec![SessionEvent::SessionFailed {
                    reason: FailureReason::InvalidSignature {
                        reported_by: party_id,
                    },
                    at: now,
                }])
            }
        }
        _ => Err(SessionError::WrongOutcome { kind }),
    }
}

/// `Ok(value)` when every report agrees; otherwise the parties outside the largest
/// group of equal reports (ties go to the group reported first).
fn majority_dissent<'a>(
    reports: &[(&PartyId, &'a PartyOutcome)],
) -> Result<&'a PartyOutcome, Vec<PartyId>> {
    let mut groups: Vec<(&PartyOutcome, usize)> = Vec::new();
    for (_, o) in reports {
        match groups.iter_mut().find(|(g, _)| g == o) {
            Some((_, n)) => *n += 1,
            None => groups.push((o, 1)),
        }
    }
    let mut best = groups[0];
    for g in &groups[1..] {
        if g.1 > best.1 {
            best = *g;
        }
    }
    if groups.len() == 1 {
        return Ok(reports[0].1);
    }
    Err(reports
        .iter()
        .filter(|(_, o)| *o != best.0)
        .map(|(p, _)| (*p).clone())
        .collect())
}

fn is_valid_point(pk: &PublicKey) -> bool {
    k256::PublicKey::from_sec1_bytes(pk.as_bytes()).is_ok()
}

/// Folds one event into the state. Total: an event that does not apply leaves the
/// state as it is.
pub fn evolve(state: SessionState, event: &SessionEvent) -> SessionState {
    let SessionState(inner) = state;
    let session = match (inner, event) {
        (None, SessionEvent::SessionCreated(created)) => Session {
            created: created.clone(),
            status: SessionStatus::Created,
            joined: BTreeSet::new(),
            reports: Vec::new(),
            outcome: None,
            failure: None,
            updated_at: created.at,
        },
        (None, _) => return SessionState(None),
        (Some(mut s), e) => {
            match e {
                SessionEvent::SessionCreated(_) => return SessionState(Some(s)),
                SessionEvent::ParticipantJoined { party_id, .. } => {
                    s.joined.insert(party_id.clone());
                }
                SessionEvent::SessionStarted { .. } => s.status = SessionStatus::InProgress,
                SessionEvent::PartyCompleted {
                    party_id, outcome, ..
                } => s.reports.push((party_id.clone(), outcome.clone())),
                SessionEvent::SessionCompleted { outcome, .. } => {
                    s.status = SessionStatus::Completed;
                    s.outcome = Some(outcome.clone());
                }
                SessionEvent::SessionFailed { reason, .. } => {
                    s.status = SessionStatus::Failed;
                    s.failure = Some(reason.clone());
                }
                SessionEvent::SessionExpired { .. } => s.status = SessionStatus::Expired,
            }
            s.updated_at = e.at();
            s
        }
    };
    SessionState(Some(session))
}

/// Digest under which join tokens are recorded.
pub fn token_digest(token: &str) -> mpc_events::TokenDigest {
    mpc_events::TokenDigest::from_bytes(Sha256::digest(token.as_bytes()).into())
}

#[cfg(test)]
mod tests;
