//! Given/when/then tests of the account aggregate and the uniqueness claims.

use mpc_crypto::PartyIdentity;
use mpc_events::{Participant, PartyId};

use super::*;
use crate::testing::given;

const T0: i64 = 1_795_000_000_000;

fn at(offset: i64) -> Timestamp {
    Timestamp::from_millis(T0 + offset)
}

fn participant(name: &str) -> Participant {
    Participant {
        party_id: PartyId::parse(name).unwrap(),
        identity: PartyIdentity::generate().public(),
    }
}

fn parties() -> AccountParties {
    AccountParties {
        device: participant("alice-phone"),
        server: participant("server"),
        recovery: participant("recovery"),
    }
}

fn account_id() -> AccountId {
    AccountId::from_uuid(uuid::Uuid::from_u128(1))
}

fn keygen() -> SessionId {
    SessionId::from_uuid(uuid::Uuid::from_u128(2))
}

fn opened_with(parties: AccountParties) -> AccountEvent {
    AccountEvent::AccountOpened {
        account_id: account_id(),
        username: Username::parse("alice").unwrap(),
        email: Email::parse("alice@example.com").unwrap(),
        phone: Some(Phone::parse("+491701234567").unwrap()),
        parties,
        keygen_session: keygen(),
        at: at(0),
    }
}

fn open_command(event: AccountEvent) -> AccountCommand {
    let AccountEvent::AccountOpened {
        account_id,
        username,
        email,
        phone,
        parties,
        keygen_session,
        at,
    } = event
    else {
        unreachable!()
    };
    AccountCommand::Open {
        account_id,
        username,
        email,
        phone,
        parties,
        keygen_session,
        now: at,
    }
}

fn opened() -> AccountEvent {
    opened_with(parties())
}

fn reason() -> String {
    "compliance review".to_owned()
}

#[test]
fn opening_an_account_records_its_three_share_holders() {
    let event = opened();
    given::<AccountAggregate>([])
        .when(open_command(event.clone()))
        .then([event]);
}

#[test]
fn opening_an_account_twice_is_refused() {
    given::<AccountAggregate>([opened()])
        .when(open_command(opened()))
        .then_err(AccountError::AlreadyExists);
}

#[test]
fn one_party_cannot_hold_two_of_the_account_shares() {
    let mut p = parties();
    p.recovery.party_id = p.device.party_id.clone();
    given::<AccountAggregate>([])
        .when(open_command(opened_with(p)))
        .then_err(AccountError::PartiesNotDistinct);
    let mut p = parties();
    p.server.identity = p.device.identity;
    given::<AccountAggregate>([])
        .when(open_command(opened_with(p)))
        .then_err(AccountError::PartiesNotDistinct);
}

#[test]
fn commands_to_an_unknown_account_are_refused() {
    given::<AccountAggregate>([])
        .when(AccountCommand::Reactivate { now: at(1) })
        .then_err(AccountError::UnknownAccount);
}

#[test]
fn a_new_account_is_active_and_records_each_use() {
    let state = [opened()].iter().fold(AccountState::default(), evolve);
    assert_eq!(state.0.as_ref().unwrap().status, AccountStatus::Active);
    let signing = SessionId::new();
    given::<AccountAggregate>([opened()])
        .when(AccountCommand::RecordUse {
            signing_session: signing,
            now: at(5),
        })
        .then([AccountEvent::AccountUsed {
            signing_session: signing,
            at: at(5),
        }]);
}

#[test]
fn a_suspended_account_cannot_sign_until_reactivated() {
    let suspended = AccountEvent::AccountSuspended {
        reason: reason(),
        at: at(1),
    };
    given::<AccountAggregate>([opened(), suspended.clone()])
        .when(AccountCommand::RecordUse {
            signing_session: SessionId::new(),
            now: at(2),
        })
        .then_err(AccountError::NotActive(AccountStatus::Suspended));
    given::<AccountAggregate>([opened(), suspended])
        .when(AccountCommand::Reactivate { now: at(2) })
        .then([AccountEvent::AccountReactivated { at: at(2) }]);
}

#[test]
fn locking_suspending_and_recovery_follow_the_lifecycle() {
    given::<AccountAggregate>([opened()])
        .when(AccountCommand::Lock {
            reason: reason(),
            now: at(1),
        })
        .then([AccountEvent::AccountLocked {
            reason: reason(),
            at: at(1),
        }]);
    let locked = AccountEvent::AccountLocked {
        reason: reason(),
        at: at(1),
    };
    given::<AccountAggregate>([opened(), locked.clone()])
        .when(AccountCommand::StartRecovery {
            reason: "device lost".into(),
            now: at(2),
        })
        .then([AccountEvent::AccountRecoveryStarted {
            reason: "device lost".into(),
            at: at(2),
        }]);
    let suspended = AccountEvent::AccountSuspended {
        reason: reason(),
        at: at(1),
    };
    given::<AccountAggregate>([opened(), suspended])
        .when(AccountCommand::StartRecovery {
            reason: "device lost".into(),
            now: at(2),
        })
        .then_err(AccountError::InvalidTransition {
            from: AccountStatus::Suspended,
            to: AccountStatus::Recovering,
        });
    given::<AccountAggregate>([opened(), locked])
        .when(AccountCommand::Lock {
            reason: reason(),
            now: at(2),
        })
        .then_err(AccountError::AlreadyInStatus(AccountStatus::Locked));
    given::<AccountAggregate>([opened()])
        .when(AccountCommand::Reactivate { now: at(2) })
        .then_err(AccountError::AlreadyInStatus(AccountStatus::Active));
}

#[test]
fn a_status_change_needs_a_reason() {
    for bad in ["", "   ", &"x".repeat(501)] {
        given::<AccountAggregate>([opened()])
            .when(AccountCommand::Suspend {
                reason: bad.to_owned(),
                now: at(1),
            })
            .then_err(AccountError::InvalidReason);
    }
}

#[test]
fn a_new_keygen_session_replaces_the_old_one_once() {
    let next = SessionId::new();
    given::<AccountAggregate>([opened()])
        .when(AccountCommand::RestartKeygen {
            keygen_session: next,
            now: at(1),
        })
        .then([AccountEvent::AccountKeygenRestarted {
            keygen_session: next,
            at: at(1),
        }]);
    given::<AccountAggregate>([opened()])
        .when(AccountCommand::RestartKeygen {
            keygen_session: keygen(),
            now: at(1),
        })
        .then_err(AccountError::SessionAlreadyRecorded(keygen()));
}

fn owner(n: u128) -> AccountId {
    AccountId::from_uuid(uuid::Uuid::from_u128(n))
}

#[test]
fn an_unclaimed_value_is_claimed_by_its_first_owner() {
    given::<UsernameClaims>([])
        .when(ClaimCommand::Claim {
            owner: owner(1),
            now: at(0),
        })
        .then([ClaimEvent::ValueClaimed {
            owner: owner(1),
            at: at(0),
        }]);
}

#[test]
fn a_claimed_value_is_taken_for_everyone_else_and_idempotent_for_its_owner() {
    let claimed = ClaimEvent::ValueClaimed {
        owner: owner(1),
        at: at(0),
    };
    given::<EmailClaims>([claimed.clone()])
        .when(ClaimCommand::Claim {
            owner: owner(2),
            now: at(1),
        })
        .then_err(ClaimError::Taken);
    given::<EmailClaims>([claimed])
        .when(ClaimCommand::Claim {
            owner: owner(1),
            now: at(1),
        })
        .then([]);
}

#[test]
fn only_the_owner_releases_a_value_and_it_can_then_be_claimed_again() {
    let claimed = ClaimEvent::ValueClaimed {
        owner: owner(1),
        at: at(0),
    };
    given::<UsernameClaims>([claimed.clone()])
        .when(ClaimCommand::Release {
            owner: owner(2),
            now: at(1),
        })
        .then_err(ClaimError::NotOwner);
    let released = ClaimEvent::ValueReleased {
        owner: owner(1),
        at: at(1),
    };
    given::<UsernameClaims>([claimed, released])
        .when(ClaimCommand::Claim {
            owner: owner(2),
            now: at(2),
        })
        .then([ClaimEvent::ValueClaimed {
            owner: owner(2),
            at: at(2),
        }]);
}

// --- recovery sessions ---

fn recovery_session(n: u128) -> SessionId {
    SessionId::from_uuid(uuid::Uuid::from_u128(100 + n))
}

fn recovering() -> Vec<AccountEvent> {
    vec![
        opened(),
        AccountEvent::AccountRecoveryStarted {
            reason: "phone lost".into(),
            at: at(1),
        },
    ]
}

fn new_device() -> mpc_events::IdentityKey {
    PartyIdentity::generate().public()
}

fn parties_of(history: &[AccountEvent]) -> AccountParties {
    match &history[0] {
        AccountEvent::AccountOpened { parties, .. } => parties.clone(),
        other => panic!("not an opening: {other:?}"),
    }
}

fn device_lost(identity: mpc_events::IdentityKey) -> RecoveryKind {
    RecoveryKind::DeviceLost { identity }
}

fn requested(n: u128, kind: RecoveryKind) -> AccountEvent {
    AccountEvent::RecoveryRequested {
        session_id: recovery_session(n),
        kind,
        at: at(2),
    }
}

#[test]
fn a_lost_device_recovery_needs_a_recovering_account() {
    let kind = device_lost(new_device());
    given::<AccountAggregate>([opened()])
        .when(AccountCommand::RequestRecovery {
            session_id: recovery_session(1),
            kind: kind.clone(),
            now: at(2),
        })
        .then_err(AccountError::NotRecovering(AccountStatus::Active));
    given::<AccountAggregate>(recovering())
        .when(AccountCommand::RequestRecovery {
            session_id: recovery_session(1),
            kind: kind.clone(),
            now: at(2),
        })
        .then([requested(1, kind)]);
}

#[test]
fn a_share_rotation_needs_an_active_account() {
    given::<AccountAggregate>(recovering())
        .when(AccountCommand::RequestRecovery {
            session_id: recovery_session(1),
            kind: RecoveryKind::ShareRotation,
            now: at(2),
        })
        .then_err(AccountError::NotActive(AccountStatus::Recovering));
    given::<AccountAggregate>([opened()])
        .when(AccountCommand::RequestRecovery {
            session_id: recovery_session(1),
            kind: RecoveryKind::ShareRotation,
            now: at(2),
        })
        .then([requested(1, RecoveryKind::ShareRotation)]);
}

#[test]
fn the_new_device_must_not_reuse_a_party_identity() {
    let history = recovering();
    let server = parties_of(&history).server.identity;
    given::<AccountAggregate>(history)
        .when(AccountCommand::RequestRecovery {
            session_id: recovery_session(1),
            kind: device_lost(server),
            now: at(2),
        })
        .then_err(AccountError::DeviceIdentityNotNew);
}

#[test]
fn one_recovery_at_a_time() {
    let mut history = recovering();
    history.push(requested(1, device_lost(new_device())));
    given::<AccountAggregate>(history)
        .when(AccountCommand::RequestRecovery {
            session_id: recovery_session(2),
            kind: device_lost(new_device()),
            now: at(3),
        })
        .then_err(AccountError::RecoveryOpen(recovery_session(1)));
}

#[test]
fn a_recovery_goes_requested_in_progress_completed_and_binds_the_new_device() {
    let device = new_device();
    let mut history = recovering();
    history.push(requested(1, device_lost(device)));
    given::<AccountAggregate>(history.clone())
        .when(AccountCommand::MarkRecoveryInProgress {
            session_id: recovery_session(1),
            now: at(3),
        })
        .then([AccountEvent::RecoveryInProgress {
            session_id: recovery_session(1),
            at: at(3),
        }]);
    history.push(AccountEvent::RecoveryInProgress {
        session_id: recovery_session(1),
        at: at(3),
    });
    given::<AccountAggregate>(history.clone())
        .when(AccountCommand::MarkRecoveryInProgress {
            session_id: recovery_session(1),
            now: at(4),
        })
        .then([]);
    let completed = AccountEvent::RecoveryCompleted {
        session_id: recovery_session(1),
        at: at(5),
    };
    given::<AccountAggregate>(history.clone())
        .when(AccountCommand::CompleteRecovery {
            session_id: recovery_session(1),
            now: at(5),
        })
        .then([completed.clone()]);
    history.push(completed);
    let account = history
        .iter()
        .fold(AccountState::default(), evolve)
        .0
        .unwrap();
    assert_eq!(account.status, AccountStatus::Active);
    assert_eq!(account.parties.device.identity, device);
    assert_eq!(account.parties.server, parties_of(&history).server);
    assert_eq!(account.recoveries[0].status, RecoveryStatus::Completed);
    assert!(account.open_recovery().is_none());
}

#[test]
fn a_failed_recovery_keeps_the_account_recovering_and_allows_another() {
    let mut history = recovering();
    history.push(requested(1, device_lost(new_device())));
    let failed = AccountEvent::RecoveryFailed {
        session_id: recovery_session(1),
        reason: "helper sent a wrong term".into(),
        at: at(4),
    };
    given::<AccountAggregate>(history.clone())
        .when(AccountCommand::FailRecovery {
            session_id: recovery_session(1),
            reason: "helper sent a wrong term".into(),
            now: at(4),
        })
        .then([failed.clone()]);
    history.push(failed);
    let account = history
        .iter()
        .fold(AccountState::default(), evolve)
        .0
        .unwrap();
    assert_eq!(account.status, AccountStatus::Recovering);
    assert_eq!(account.parties, parties_of(&history));
    given::<AccountAggregate>(history)
        .when(AccountCommand::CompleteRecovery {
            session_id: recovery_session(1),
            now: at(5),
        })
        .then_err(AccountError::NoOpenRecovery(recovery_session(1)));
}
