//! What an approver's node was asked to approve, kept under its data directory until
//! its human decides: the review desk behind `mpc party approvals` and the party's
//! `/v1/reviews` routes.
//!
//! A review request (workflow, key, payload) reaches the node from whoever runs the
//! workflow, through the node's credentialed listener. Nothing in it is trusted: the
//! approver signs over the payload *it* stored and shows, so a request carrying
//! another payload than the workflow's yields a decision the gateway refuses. A later
//! request for the same workflow replaces a pending one, so a decision names the
//! SHA-256 of the payload the human saw ([`ReviewDesk::to_decide`]) and is refused if
//! the stored payload changed since; a decided review is never replaced.
//!
//! One JSON file per workflow (`reviews/<workflow id>.json`, see [`crate::folder`]).

use std::path::Path;

use mpc_events::{Decision, KeyId, WorkflowId};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::folder::{Folder, Read};

/// The directory under a party's data directory that holds its reviews.
pub const REVIEWS_DIR: &str = "reviews";
/// How many undecided reviews a node keeps; a request beyond them is refused.
pub const MAX_PENDING: usize = 256;
/// The largest payload a review request may carry.
pub const MAX_PAYLOAD_BYTES: usize = 1024 * 1024;

/// A review request as it arrives (`POST /v1/reviews`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReviewRequest {
    pub workflow_id: String,
    pub key_id: String,
    #[serde(default)]
    pub title: String,
    pub payload_hex: String,
}

/// One review: what was asked and, once decided, the decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    pub workflow_id: String,
    pub key_id: String,
    pub title: String,
    pub payload_hex: String,
    /// SHA-256 of the payload: what a decision must name.
    pub payload_sha256: String,
    /// `approve` or `reject` once decided.
    pub decision: Option<String>,
}

impl Review {
    pub fn workflow(&self) -> Result<WorkflowId, ReviewError> {
        self.workflow_id
            .parse()
            .map_err(|_| ReviewError::Corrupt(self.workflow_id.clone()))
    }

    pub fn key(&self) -> Result<KeyId, ReviewError> {
        self.key_id
            .parse()
            .map_err(|_| ReviewError::Corrupt(self.workflow_id.clone()))
    }

    pub fn payload(&self) -> Result<Vec<u8>, ReviewError> {
        hex::decode(&self.payload_hex).map_err(|_| ReviewError::Corrupt(self.workflow_id.clone()))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("not a workflow id: {0:?}")]
    InvalidWorkflow(String),
    #[error("not a key id: {0:?}")]
    InvalidKey(String),
    #[error("payload_hex is not hex")]
    InvalidPayload,
    #[error("the payload is over {MAX_PAYLOAD_BYTES} bytes")]
    PayloadTooLarge,
    #[error("{MAX_PENDING} reviews are already waiting for a decision")]
    Full,
    #[error("workflow {0} was already decided here")]
    AlreadyDecided(String),
    #[error("no review of workflow {0} here")]
    Unknown(String),
    #[error(
        "the payload of workflow {workflow} changed since it was shown (it is now \
         {current}); review it again"
    )]
    Changed { workflow: String, current: String },
    #[error("the stored review of workflow {0} is damaged")]
    Corrupt(String),
    #[error("reviews directory: {0}")]
    Io(#[from] std::io::Error),
}

/// A node's reviews, in `<data dir>/reviews`.
#[derive(Debug, Clone)]
pub struct ReviewDesk {
    folder: Folder,
}

impl ReviewDesk {
    /// The desk of the party whose data directory is `data_dir`.
    pub fn new(data_dir: &Path) -> Self {
        Self {
            folder: Folder::new(data_dir.join(REVIEWS_DIR)),
        }
    }

    /// Stores a request: a new review, or the replacement of a pending one (the
    /// same payload again changes nothing). Refuses bad input, a decided workflow
    /// and a full desk, storing nothing.
    pub fn receive(&self, request: ReviewRequest) -> Result<Review, ReviewError> {
        let workflow: WorkflowId = request
            .workflow_id
            .parse()
            .map_err(|_| ReviewError::InvalidWorkflow(request.workflow_id.clone()))?;
        let key: KeyId = request
            .key_id
            .parse()
            .map_err(|_| ReviewError::InvalidKey(request.key_id.clone()))?;
        if request.payload_hex.len() > 2 * MAX_PAYLOAD_BYTES {
            return Err(ReviewError::PayloadTooLarge);
        }
        let payload = hex::decode(&request.payload_hex).map_err(|_| ReviewError::InvalidPayload)?;
        let review = Review {
            workflow_id: workflow.to_string(),
            key_id: key.to_string(),
            title: request.title,
            payload_hex: hex::encode(&payload),
            payload_sha256: hex::encode(Sha256::digest(&payload)),
            decision: None,
        };
        match self.get(&review.workflow_id) {
            Ok(stored) if stored.decision.is_some() => {
                return Err(ReviewError::AlreadyDecided(review.workflow_id));
            }
            Ok(_) => {}
            Err(ReviewError::Unknown(_)) => {
                if self.list()?.iter().filter(|r| r.decision.is_none()).count() >= MAX_PENDING {
                    return Err(ReviewError::Full);
                }
            }
            Err(e) => return Err(e),
        }
        self.store(&review)?;
        Ok(review)
    }

    /// Every review, pending and decided, oldest workflow first.
    pub fn list(&self) -> Result<Vec<Review>, ReviewError> {
        self.folder
            .names()?
            .iter()
            .map(|workflow| self.get(workflow))
            .collect()
    }

    /// The review of `workflow`.
    pub fn get(&self, workflow: &str) -> Result<Review, ReviewError> {
        let id: WorkflowId = workflow
            .parse()
            .map_err(|_| ReviewError::InvalidWorkflow(workflow.to_owned()))?;
        match self.folder.read(&id.to_string())? {
            Read::Found(review) => Ok(review),
            Read::Missing => Err(ReviewError::Unknown(id.to_string())),
            Read::Corrupt => Err(ReviewError::Corrupt(id.to_string())),
        }
    }

    /// The pending review of `workflow` whose payload hashes to `shown_sha256`
    /// (hex), about to be decided: refused if it was decided, or its payload is not
    /// the one shown.
    pub fn to_decide(&self, workflow: &str, shown_sha256: &str) -> Result<Review, ReviewError> {
        let review = self.get(workflow)?;
        if review.decision.is_some() {
            return Err(ReviewError::AlreadyDecided(review.workflow_id));
        }
        if !review
            .payload_sha256
            .eq_ignore_ascii_case(shown_sha256.trim())
        {
            return Err(ReviewError::Changed {
                workflow: review.workflow_id,
                current: review.payload_sha256,
            });
        }
        Ok(review)
    }

    /// Records that `review` was decided (after the coordinator accepted it).
    pub fn decided(&self, mut review: Review, decision: Decision) -> Result<Review, ReviewError> {
        review.decision = Some(
            match decision {
                Decision::Approve => "approve",
                Decision::Reject => "reject",
            }
            .to_owned(),
        );
        self.store(&review)?;
        Ok(review)
    }

    fn store(&self, review: &Review) -> Result<(), ReviewError> {
        Ok(self.folder.write(&review.workflow()?.to_string(), review)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(workflow: WorkflowId, payload: &[u8]) -> ReviewRequest {
        ReviewRequest {
            workflow_id: workflow.to_string(),
            key_id: KeyId::of_keygen(mpc_events::SessionId::new()).to_string(),
            title: "Q4 payment".into(),
            payload_hex: hex::encode(payload),
        }
    }

    fn sha(payload: &[u8]) -> String {
        hex::encode(Sha256::digest(payload))
    }

    #[test]
    fn a_request_is_kept_until_decided_and_a_decided_one_is_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let desk = ReviewDesk::new(dir.path());
        let workflow = WorkflowId::new();
        let review = desk.receive(request(workflow, b"pay 10")).unwrap();
        assert_eq!(review.payload_sha256, sha(b"pay 10"));
        assert_eq!(desk.list().unwrap(), vec![review.clone()]);

        let pending = desk
            .to_decide(&workflow.to_string(), &sha(b"pay 10"))
            .unwrap();
        let decided = desk.decided(pending, Decision::Reject).unwrap();
        assert_eq!(decided.decision.as_deref(), Some("reject"));
        assert!(matches!(
            desk.receive(request(workflow, b"pay 10")),
            Err(ReviewError::AlreadyDecided(_))
        ));
        assert!(matches!(
            desk.to_decide(&workflow.to_string(), &sha(b"pay 10")),
            Err(ReviewError::AlreadyDecided(_))
        ));
        assert_eq!(desk.get(&workflow.to_string()).unwrap(), decided);
    }

    #[test]
    fn a_payload_replaced_after_it_was_shown_cannot_be_decided_on_the_old_digest() {
        let dir = tempfile::tempdir().unwrap();
        let desk = ReviewDesk::new(dir.path());
        let workflow = WorkflowId::new();
        desk.receive(request(workflow, b"pay 10 to Alice")).unwrap();
        desk.receive(request(workflow, b"pay 10 000 to Mallory"))
            .unwrap();
        match desk.to_decide(&workflow.to_string(), &sha(b"pay 10 to Alice")) {
            Err(ReviewError::Changed { current, .. }) => {
                assert_eq!(current, sha(b"pay 10 000 to Mallory"));
            }
            other => panic!("expected Changed, got {other:?}"),
        }
        let review = desk
            .to_decide(&workflow.to_string(), &sha(b"pay 10 000 to Mallory"))
            .unwrap();
        assert_eq!(review.payload().unwrap(), b"pay 10 000 to Mallory");
    }

    #[test]
    fn bad_requests_store_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let desk = ReviewDesk::new(dir.path());
        let good = request(WorkflowId::new(), b"x");
        let cases = [
            (
                ReviewRequest {
                    workflow_id: "nope".into(),
                    ..good.clone()
                },
                "not a workflow id",
            ),
            (
                ReviewRequest {
                    key_id: "nope".into(),
                    ..good.clone()
                },
                "not a key id",
            ),
            (
                ReviewRequest {
                    payload_hex: "zz".into(),
                    ..good.clone()
                },
                "not hex",
            ),
            (
                ReviewRequest {
                    payload_hex: "00".repeat(MAX_PAYLOAD_BYTES + 1),
                    ..good
                },
                "over",
            ),
        ];
        for (bad, says) in cases {
            let error = desk.receive(bad).unwrap_err().to_string();
            assert!(error.contains(says), "{error}");
        }
        assert!(desk.list().unwrap().is_empty());
        assert!(matches!(
            desk.get(&WorkflowId::new().to_string()),
            Err(ReviewError::Unknown(_))
        ));
    }

    #[test]
    fn a_full_desk_refuses_new_workflows_but_takes_replacements() {
        let dir = tempfile::tempdir().unwrap();
        let desk = ReviewDesk::new(dir.path());
        let first = WorkflowId::new();
        desk.receive(request(first, b"0")).unwrap();
        for _ in 1..MAX_PENDING {
            desk.receive(request(WorkflowId::new(), b"1")).unwrap();
        }
        assert!(matches!(
            desk.receive(request(WorkflowId::new(), b"2")),
            Err(ReviewError::Full)
        ));
        desk.receive(request(first, b"3")).unwrap();
        assert_eq!(desk.list().unwrap().len(), MAX_PENDING);
    }
}
