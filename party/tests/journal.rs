//! The approval-journal contract, run against every adapter: a workflow's approvals
//! are spent on one session; the same session again is fine (a retried join);
//! another session is refused naming the first; workflows are independent; and the
//! file journal remembers across reopening (a restarted node).

use mpc_events::{SessionId, WorkflowId};
use mpc_party::{ApprovalJournal, FileJournal, JournalError, MemoryJournal};

fn contract(journal: &dyn ApprovalJournal) {
    let (w1, w2) = (WorkflowId::new(), WorkflowId::new());
    let (s1, s2) = (SessionId::new(), SessionId::new());
    assert_eq!(journal.spend(w1, s1), Ok(()));
    assert_eq!(journal.spend(w1, s1), Ok(()));
    assert_eq!(
        journal.spend(w1, s2),
        Err(JournalError::Spent {
            workflow: w1,
            session: s1
        })
    );
    assert_eq!(journal.spend(w2, s2), Ok(()));
    assert_eq!(
        journal.spend(w2, s1),
        Err(JournalError::Spent {
            workflow: w2,
            session: s2
        })
    );
}

#[test]
fn the_memory_journal_keeps_the_contract() {
    contract(&MemoryJournal::default());
}

#[test]
fn the_file_journal_keeps_the_contract_and_remembers_across_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("approvals.journal");
    contract(&FileJournal::new(&path));
    let (workflow, first) = (WorkflowId::new(), SessionId::new());
    FileJournal::new(&path).spend(workflow, first).unwrap();
    let reopened = FileJournal::new(&path);
    assert_eq!(
        reopened.spend(workflow, SessionId::new()),
        Err(JournalError::Spent {
            workflow,
            session: first
        })
    );
    assert_eq!(reopened.spend(workflow, first), Ok(()));
}

#[test]
fn a_corrupted_file_journal_is_an_error_not_a_fresh_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("approvals.journal");
    std::fs::write(&path, "not a journal line\n").unwrap();
    let refused = FileJournal::new(&path).spend(WorkflowId::new(), SessionId::new());
    assert!(matches!(refused, Err(JournalError::Io(_))), "{refused:?}");
}
