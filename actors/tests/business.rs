//! The account and approval services over real event stores (SQLite and
//! PostgreSQL, each case on both): uniqueness, status rules, and that fewer than t
//! approvals, duplicate approvers or approvals of another payload never start a
//! signing session, while t approvals start one that carries them.

use std::sync::Arc;
use std::time::Duration;

use k256::ecdsa::SigningKey;
use mpc_actors::{
    AccountServiceError, Accounts, ApprovalServiceError, Approvals, CommandMeta, Coordinator,
    NewAccount, NewKeygen, NewWorkflow, SigningPayload, StatusChange, SystemClock,
};
use mpc_crypto::PartyIdentity;
use mpc_events::{
    AccountError, AccountParties, AccountStatus, Decision, Email, KeyId, KeyPolicy, KeyRef,
    MessageHash, Participant, PartyId, PartyOutcome, PublicKey, SessionSpec, Threshold, Username,
    WorkflowError, WorkflowStatus,
};
use mpc_store::{EventStore, PostgresStore, SqliteStore};
use sha2::{Digest, Sha256};
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

const TTL: Duration = Duration::from_secs(300);

/// A store for one test: a SQLite file, or a fresh PostgreSQL database dropped
/// afterwards.
enum Backend {
    Sqlite { _dir: tempfile::TempDir },
    Postgres { server: String, name: String },
}

impl Backend {
    async fn sqlite() -> (Self, Arc<dyn EventStore>) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("events.db"))
            .await
            .unwrap();
        (Self::Sqlite { _dir: dir }, Arc::new(store))
    }

    async fn postgres() -> (Self, Arc<dyn EventStore>) {
        let server = std::env::var("MPC_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
            .trim_end_matches('/')
            .to_owned();
        let name = format!("mpc_test_{}", Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(&format!("{server}/postgres"))
            .await
            .unwrap_or_else(|e| {
                panic!("PostgreSQL unreachable at {server} ({e}): run scripts/ensure-postgres.sh")
            });
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .unwrap();
        admin.close().await.ok();
        let store = PostgresStore::connect(&format!("{server}/{name}"))
            .await
            .unwrap();
        (Self::Postgres { server, name }, Arc::new(store))
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        let Self::Postgres { server, name } = self else {
            return;
        };
        let (server, name) = (server.clone(), name.clone());
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut admin = PgConnection::connect(&format!("{server}/postgres"))
                    .await
                    .ok()?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut admin)
                .await
                .ok()
            })
        })
        .join();
    }
}

struct World {
    _backend: Backend,
    coordinator: Arc<Coordinator>,
    accounts: Accounts,
    approvals: Approvals,
}

async fn world(postgres: bool) -> World {
    let (backend, store) = if postgres {
        Backend::postgres().await
    } else {
        Backend::sqlite().await
    };
    let clock = Arc::new(SystemClock);
    let coordinator = Arc::new(Coordinator::new(store.clone(), clock.clone()));
    World {
        _backend: backend,
        accounts: Accounts::new(store.clone(), clock.clone(), coordinator.clone()),
        approvals: Approvals::new(store, clock, coordinator.clone()),
        coordinator,
    }
}

fn participant(name: &str, identity: &PartyIdentity) -> Participant {
    Participant {
        party_id: PartyId::parse(name).unwrap(),
        identity: identity.public(),
    }
}

fn new_account(username: &str, email: &str) -> NewAccount {
    NewAccount {
        username: Username::parse(username).unwrap(),
        email: Email::parse(email).unwrap(),
        phone: None,
        parties: AccountParties {
            device: participant(&format!("{username}-phone"), &PartyIdentity::generate()),
            server: participant("server", &PartyIdentity::generate()),
            recovery: participant("recovery", &PartyIdentity::generate()),
        },
        keygen_ttl: TTL,
    }
}

fn group_key() -> PublicKey {
    let sk = SigningKey::from_bytes(&[5u8; 32].into()).unwrap();
    PublicKey::from_slice(sk.verifying_key().to_sec1_point(true).as_bytes()).unwrap()
}

/// Completes keygen session `created` by having every participant join and report
/// the same public key (the coordinator checks agreement, not the protocol).
async fn complete_keygen(coordinator: &Coordinator, created: &mpc_actors::CreatedSession) -> KeyId {
    for (party, token) in &created.join_tokens {
        coordinator
            .join(
                created.session_id,
                party,
                token.expose(),
                CommandMeta::new(),
            )
            .await
            .unwrap();
    }
    for party in created.join_tokens.keys() {
        coordinator
            .report_completion(
                created.session_id,
                party,
                PartyOutcome::PublicKey(group_key()),
                CommandMeta::new(),
            )
            .await
            .unwrap();
    }
    KeyId::of_keygen(created.session_id)
}

macro_rules! on_both_stores {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() { super::$case(super::world(false).await).await })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() { super::$case(super::world(true).await).await })*
        }
    };
}

on_both_stores!(
    an_account_opens_with_a_2_of_3_keygen_and_signs_with_device_and_server,
    usernames_and_emails_are_unique_and_a_refused_open_claims_nothing,
    a_suspended_account_does_not_sign,
    t_signed_approvals_start_a_signing_session_that_carries_them,
    fewer_than_t_duplicates_or_foreign_approvals_never_start_signing,
    enough_rejections_end_the_workflow,
);

async fn an_account_opens_with_a_2_of_3_keygen_and_signs_with_device_and_server(w: World) {
    let opened = w
        .accounts
        .open(
            new_account("alice", "alice@example.com"),
            CommandMeta::new(),
        )
        .await
        .unwrap();
    let account = w.accounts.account(opened.account_id).await.unwrap();
    assert_eq!(account.status, AccountStatus::Active);
    assert_eq!(account.keygen_session, opened.keygen.session_id);
    let keygen = w
        .coordinator
        .session(opened.keygen.session_id)
        .await
        .unwrap();
    assert_eq!(
        keygen.created.spec.threshold(),
        Threshold::new(2, 3).unwrap()
    );
    assert_eq!(keygen.created.participants, account.parties.in_order());
    // No key yet: signing is refused, and records nothing.
    let early = w
        .accounts
        .sign(
            opened.account_id,
            SigningPayload::Message(b"x".to_vec()),
            TTL,
            CommandMeta::new(),
        )
        .await;
    assert!(
        matches!(early, Err(AccountServiceError::Coordinator(_))),
        "{early:?}"
    );
    assert_eq!(
        w.accounts
            .account(opened.account_id)
            .await
            .unwrap()
            .last_used_at,
        None
    );

    complete_keygen(&w.coordinator, &opened.keygen).await;
    let signing = w
        .accounts
        .sign(
            opened.account_id,
            SigningPayload::Message(b"pay bob 3".to_vec()),
            TTL,
            CommandMeta::new(),
        )
        .await
        .unwrap();
    let session = w.coordinator.session(signing.session_id).await.unwrap();
    let signers: Vec<&str> = session
        .created
        .participants
        .iter()
        .map(|p| p.party_id.as_str())
        .collect();
    assert_eq!(signers, ["alice-phone", "server"]);
    assert!(
        w.accounts
            .account(opened.account_id)
            .await
            .unwrap()
            .last_used_at
            .is_some()
    );
}

async fn usernames_and_emails_are_unique_and_a_refused_open_claims_nothing(w: World) {
    w.accounts
        .open(
            new_account("alice", "alice@example.com"),
            CommandMeta::new(),
        )
        .await
        .unwrap();
    let same_name = w
        .accounts
        .open(
            new_account("Alice", "other@example.com"),
            CommandMeta::new(),
        )
        .await;
    assert!(
        matches!(
            same_name,
            Err(AccountServiceError::Account(AccountError::UsernameTaken(_)))
        ),
        "{same_name:?}"
    );
    let same_email = w
        .accounts
        .open(
            new_account("alice2", "ALICE@example.com"),
            CommandMeta::new(),
        )
        .await;
    assert!(
        matches!(
            same_email,
            Err(AccountServiceError::Account(AccountError::EmailTaken(_)))
        ),
        "{same_email:?}"
    );
    // The refused open of alice2 released its username claim: it can be used now.
    w.accounts
        .open(
            new_account("alice2", "alice2@example.com"),
            CommandMeta::new(),
        )
        .await
        .unwrap();
    // A refusal by the account itself (one party twice) releases both claims.
    let mut twice = new_account("carol", "carol@example.com");
    twice.parties.recovery = twice.parties.device.clone();
    let refused = w.accounts.open(twice, CommandMeta::new()).await;
    assert!(
        matches!(
            refused,
            Err(AccountServiceError::Account(
                AccountError::PartiesNotDistinct
            ))
        ),
        "{refused:?}"
    );
    w.accounts
        .open(
            new_account("carol", "carol@example.com"),
            CommandMeta::new(),
        )
        .await
        .unwrap();
}

async fn a_suspended_account_does_not_sign(w: World) {
    let opened = w
        .accounts
        .open(new_account("dave", "dave@example.com"), CommandMeta::new())
        .await
        .unwrap();
    complete_keygen(&w.coordinator, &opened.keygen).await;
    let account = w
        .accounts
        .change_status(
            opened.account_id,
            StatusChange::Suspend("unpaid".into()),
            CommandMeta::new(),
        )
        .await
        .unwrap();
    assert_eq!(account.status, AccountStatus::Suspended);
    let refused = w
        .accounts
        .sign(
            opened.account_id,
            SigningPayload::Message(b"x".to_vec()),
            TTL,
            CommandMeta::new(),
        )
        .await;
    assert!(
        matches!(
            refused,
            Err(AccountServiceError::Account(AccountError::NotActive(
                AccountStatus::Suspended
            )))
        ),
        "{refused:?}"
    );
    let bad = w
        .accounts
        .change_status(
            opened.account_id,
            StatusChange::StartRecovery("lost".into()),
            CommandMeta::new(),
        )
        .await;
    assert!(matches!(
        bad,
        Err(AccountServiceError::Account(
            AccountError::InvalidTransition { .. }
        ))
    ));
    w.accounts
        .change_status(
            opened.account_id,
            StatusChange::Reactivate,
            CommandMeta::new(),
        )
        .await
        .unwrap();
    w.accounts
        .sign(
            opened.account_id,
            SigningPayload::Message(b"x".to_vec()),
            TTL,
            CommandMeta::new(),
        )
        .await
        .unwrap();
}

/// A completed 3-of-5 key among five approvers, and a workflow over it.
struct Review {
    identities: Vec<PartyIdentity>,
    names: Vec<PartyId>,
    key: KeyRef,
    workflow: mpc_events::WorkflowId,
    hash: MessageHash,
}

const PAYLOAD: &[u8] = b"wire 1,000,000 EUR to ACME GmbH";

async fn review(w: &World) -> Review {
    let identities: Vec<PartyIdentity> = (0..5).map(|_| PartyIdentity::generate()).collect();
    let names: Vec<PartyId> = (1..=5)
        .map(|i| PartyId::parse(format!("approver-{i}")).unwrap())
        .collect();
    let created = w
        .coordinator
        .create_keygen(
            NewKeygen {
                policy: KeyPolicy::AnyRequest,
                threshold: Threshold::new(3, 5).unwrap(),
                participants: names
                    .iter()
                    .zip(&identities)
                    .map(|(n, i)| participant(n.as_str(), i))
                    .collect(),
                ttl: TTL,
            },
            CommandMeta::new(),
        )
        .await
        .unwrap();
    let key_id = complete_keygen(&w.coordinator, &created).await;
    let workflow = w
        .approvals
        .create(
            NewWorkflow {
                key_id,
                title: "Wire to ACME".into(),
                payload: PAYLOAD.to_vec(),
                ttl: TTL,
            },
            CommandMeta::new(),
        )
        .await
        .unwrap();
    Review {
        identities,
        names,
        key: w.coordinator.key(key_id).await.unwrap(),
        workflow,
        hash: MessageHash::from_bytes(Sha256::digest(PAYLOAD).into()),
    }
}

impl Review {
    async fn decide(
        &self,
        w: &World,
        i: usize,
        decision: Decision,
    ) -> Result<mpc_actors::workflow::Workflow, ApprovalServiceError> {
        let signature =
            self.identities[i].sign_decision(self.workflow, &self.key, &self.hash, decision);
        w.approvals
            .decide(
                self.workflow,
                self.names[i].clone(),
                decision,
                signature,
                CommandMeta::new(),
            )
            .await
    }
}

async fn t_signed_approvals_start_a_signing_session_that_carries_them(w: World) {
    let r = review(&w).await;
    for i in [0, 2] {
        assert_eq!(
            r.decide(&w, i, Decision::Approve).await.unwrap().status,
            WorkflowStatus::Pending
        );
    }
    let approved = r.decide(&w, 4, Decision::Approve).await.unwrap();
    assert_eq!(approved.status, WorkflowStatus::Approved);
    let created = w
        .approvals
        .start_signing(r.workflow, TTL, CommandMeta::new())
        .await
        .unwrap();
    let session = w.coordinator.session(created.session_id).await.unwrap();
    let SessionSpec::Signing {
        message,
        approval: Some(evidence),
        ..
    } = &session.created.spec
    else {
        panic!("the signing session carries no approvals");
    };
    assert_eq!(message.as_deref(), Some(PAYLOAD));
    let approvers: Vec<&str> = evidence
        .approvals
        .iter()
        .map(|a| a.approver.as_str())
        .collect();
    assert_eq!(approvers, ["approver-1", "approver-3", "approver-5"]);
    let signers: Vec<&str> = session
        .created
        .participants
        .iter()
        .map(|p| p.party_id.as_str())
        .collect();
    assert_eq!(signers, approvers);
    assert_eq!(
        w.approvals.workflow(r.workflow).await.unwrap().status,
        WorkflowStatus::Signing
    );
    // Approvals are single-use: no second session, while the first runs or after
    // it failed.
    for close in [false, true] {
        if close {
            w.coordinator
                .close(
                    created.session_id,
                    "signer offline".into(),
                    CommandMeta::new(),
                )
                .await
                .unwrap();
        }
        let again = w
            .approvals
            .start_signing(r.workflow, TTL, CommandMeta::new())
            .await;
        assert!(
            matches!(
                again,
                Err(ApprovalServiceError::Workflow(WorkflowError::ApprovalsUsed(used)))
                    if used == created.session_id
            ),
            "{again:?}"
        );
    }
    let workflow = w.approvals.workflow(r.workflow).await.unwrap();
    assert_eq!(workflow.signing_sessions, [created.session_id]);
}

async fn fewer_than_t_duplicates_or_foreign_approvals_never_start_signing(w: World) {
    let r = review(&w).await;
    r.decide(&w, 0, Decision::Approve).await.unwrap();
    r.decide(&w, 1, Decision::Approve).await.unwrap();
    let early = w
        .approvals
        .start_signing(r.workflow, TTL, CommandMeta::new())
        .await;
    assert!(
        matches!(
            early,
            Err(ApprovalServiceError::Workflow(WorkflowError::NotApproved(
                WorkflowStatus::Pending
            )))
        ),
        "{early:?}"
    );
    let duplicate = r.decide(&w, 1, Decision::Approve).await;
    assert!(matches!(
        duplicate,
        Err(ApprovalServiceError::Workflow(
            WorkflowError::AlreadyDecided(_)
        ))
    ));
    // Approver 3 signs an approval of another payload: refused, nothing recorded.
    let other = MessageHash::from_bytes(Sha256::digest(b"wire it all to mallory").into());
    let foreign = r.identities[2].sign_decision(r.workflow, &r.key, &other, Decision::Approve);
    let refused = w
        .approvals
        .decide(
            r.workflow,
            r.names[2].clone(),
            Decision::Approve,
            foreign,
            CommandMeta::new(),
        )
        .await;
    assert!(matches!(
        refused,
        Err(ApprovalServiceError::Workflow(
            WorkflowError::BadApprovalSignature(_)
        ))
    ));
    // Approver 2's key signing for approver 3: refused.
    let stolen = r.identities[1].sign_decision(r.workflow, &r.key, &r.hash, Decision::Approve);
    let refused = w
        .approvals
        .decide(
            r.workflow,
            r.names[2].clone(),
            Decision::Approve,
            stolen,
            CommandMeta::new(),
        )
        .await;
    assert!(matches!(
        refused,
        Err(ApprovalServiceError::Workflow(
            WorkflowError::BadApprovalSignature(_)
        ))
    ));
    let workflow = w.approvals.workflow(r.workflow).await.unwrap();
    assert_eq!(workflow.decisions.len(), 2);
    assert_eq!(workflow.status, WorkflowStatus::Pending);
    assert!(workflow.signing_sessions.is_empty());
}

async fn enough_rejections_end_the_workflow(w: World) {
    let r = review(&w).await;
    r.decide(&w, 0, Decision::Reject).await.unwrap();
    r.decide(&w, 1, Decision::Approve).await.unwrap();
    r.decide(&w, 2, Decision::Reject).await.unwrap();
    let rejected = r.decide(&w, 3, Decision::Reject).await.unwrap();
    assert_eq!(rejected.status, WorkflowStatus::Rejected);
    let late = r.decide(&w, 4, Decision::Approve).await;
    assert!(matches!(
        late,
        Err(ApprovalServiceError::Workflow(WorkflowError::NotPending(
            WorkflowStatus::Rejected
        )))
    ));
    let signing = w
        .approvals
        .start_signing(r.workflow, TTL, CommandMeta::new())
        .await;
    assert!(matches!(
        signing,
        Err(ApprovalServiceError::Workflow(WorkflowError::NotApproved(
            _
        )))
    ));
}
