//! The approval journal port: which signing session each approval workflow was
//! spent on, as this party recorded it itself.
//!
//! Approvals are single-use. The workflow aggregate names one signing session per
//! workflow, but that is the coordinator's word; every approver node also records
//! the first session it signs for a workflow, before it sends anything, and refuses
//! any other session carrying the same workflow's approvals, across restarts.
//! Adapters: [`MemoryJournal`] (one process lifetime: tests, the browser until an
//! app supplies storage) and, with the `native` feature, [`FileJournal`] (an
//! append-only file, synced before the answer). Both pass the contract suite in
//! `party/tests/journal.rs`.

use std::collections::HashMap;
use std::sync::Mutex;

use mpc_events::{SessionId, WorkflowId};

/// Why a workflow's approvals cannot be used for a session.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JournalError {
    #[error(
        "this party already signed for workflow {workflow} in session {session}; \
         approvals are single-use"
    )]
    Spent {
        workflow: WorkflowId,
        session: SessionId,
    },
    #[error("approval journal: {0}")]
    Io(String),
}

/// Where a party records the session each workflow's approvals were spent on.
pub trait ApprovalJournal: Send + Sync {
    /// Records that this party signs for `workflow` in `session`. The same session
    /// again is fine (a retried join); another session is [`JournalError::Spent`].
    fn spend(&self, workflow: WorkflowId, session: SessionId) -> Result<(), JournalError>;
}

/// The rule every adapter applies to what it has recorded.
fn check(
    recorded: Option<SessionId>,
    workflow: WorkflowId,
    session: SessionId,
) -> Result<bool, JournalError> {
    match recorded {
        None => Ok(true),
        Some(s) if s == session => Ok(false),
        Some(s) => Err(JournalError::Spent {
            workflow,
            session: s,
        }),
    }
}

/// A journal that lasts as long as the process.
#[derive(Debug, Default)]
pub struct MemoryJournal(Mutex<HashMap<WorkflowId, SessionId>>);

impl ApprovalJournal for MemoryJournal {
    fn spend(&self, workflow: WorkflowId, session: SessionId) -> Result<(), JournalError> {
        let mut spent = self
            .0
            .lock()
            .map_err(|_| JournalError::Io("journal lock poisoned".into()))?;
        if check(spent.get(&workflow).copied(), workflow, session)? {
            spent.insert(workflow, session);
        }
        Ok(())
    }
}

#[cfg(feature = "native")]
pub use file::FileJournal;

#[cfg(feature = "native")]
mod file {
    use std::fs::{File, OpenOptions};
    use std::io::{BufRead, BufReader, Write};
    use std::path::{Path, PathBuf};
    use std::sync::Mutex;

    use mpc_events::{SessionId, WorkflowId};

    use super::{ApprovalJournal, JournalError, check};

    /// An append-only file of `<workflow id> <session id>` lines, synced to disk
    /// before a spend is answered, so a crash never forgets a spent workflow.
    #[derive(Debug)]
    pub struct FileJournal {
        path: PathBuf,
        lock: Mutex<()>,
    }

    impl FileJournal {
        /// The journal at `path` (created on first use).
        pub fn new(path: impl AsRef<Path>) -> Self {
            Self {
                path: path.as_ref().to_owned(),
                lock: Mutex::new(()),
            }
        }

        fn recorded(&self, workflow: WorkflowId) -> Result<Option<SessionId>, JournalError> {
            let file = match File::open(&self.path) {
                Ok(file) => file,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(io(&self.path, e)),
            };
            for line in BufReader::new(file).lines() {
                let line = line.map_err(|e| io(&self.path, e))?;
                let malformed = || JournalError::Io(format!("malformed line {line:?}"));
                let (w, s) = line.split_once(' ').ok_or_else(malformed)?;
                if w.parse::<WorkflowId>().map_err(|_| malformed())? == workflow {
                    return Ok(Some(s.parse::<SessionId>().map_err(|_| malformed())?));
                }
            }
            Ok(None)
        }
    }

    impl ApprovalJournal for FileJournal {
        fn spend(&self, workflow: WorkflowId, session: SessionId) -> Result<(), JournalError> {
            let _guard = self
                .lock
                .lock()
                .map_err(|_| JournalError::Io("journal lock poisoned".into()))?;
            if check(self.recorded(workflow)?, workflow, session)? {
                let mut file = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.path)
                    .map_err(|e| io(&self.path, e))?;
                writeln!(file, "{workflow} {session}").map_err(|e| io(&self.path, e))?;
                file.sync_all().map_err(|e| io(&self.path, e))?;
            }
            Ok(())
        }
    }

    fn io(path: &Path, e: std::io::Error) -> JournalError {
        JournalError::Io(format!("{}: {e}", path.display()))
    }
}
