//! The typed report of `mpc demo`: what each scenario did, read back from the event
//! log and the read models; [`to_json`] (its `Serialize` form) for `--json`, and
//! the text form.

use std::path::PathBuf;

use mpc_events::{
    KeyId, KeyPolicy, MessageHash, PartyId, PublicKey, RecoveryStatus, SessionId, Signature,
    Threshold, WorkflowId, WorkflowStatus,
};
use mpc_projections::SessionStatusRow;
use serde::{Serialize, Serializer};
use serde_json::json;

use crate::demo::Scenario;

/// One signature the demo produced.
#[derive(Debug, Clone, Serialize)]
pub struct SignatureReport {
    #[serde(serialize_with = "display")]
    pub session_id: SessionId,
    #[serde(serialize_with = "party_ids")]
    pub signers: Vec<PartyId>,
    #[serde(rename = "message_hex", serialize_with = "hex_bytes")]
    pub message: Vec<u8>,
    #[serde(rename = "message_hash_hex", serialize_with = "message_hash_hex")]
    pub message_hash: MessageHash,
    #[serde(flatten, serialize_with = "signature_parts")]
    pub signature: Signature,
    pub verified: bool,
}

/// One recorded event, as read back from the log.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryEntry {
    pub position: u64,
    pub version: u64,
    #[serde(rename = "type")]
    pub event_type: String,
    #[serde(rename = "occurred_at_ms")]
    pub occurred_at: i64,
}

/// What the approval scenario's workflow went through.
#[derive(Debug, Clone, Serialize)]
pub struct WorkflowReport {
    #[serde(serialize_with = "display")]
    pub workflow_id: WorkflowId,
    pub title: String,
    #[serde(serialize_with = "display")]
    pub status: WorkflowStatus,
    /// The workflow as the approval-workflow read model shows it (e.g. `signed`).
    pub read_model_status: Option<String>,
    #[serde(serialize_with = "party_ids")]
    pub approved_by: Vec<PartyId>,
    #[serde(serialize_with = "party_ids")]
    pub rejected_by: Vec<PartyId>,
    /// The key's signing policy, fixed at keygen and pinned by every holder.
    #[serde(serialize_with = "display")]
    pub key_policy: KeyPolicy,
    /// Why a plain signing request of the payload, without the workflow, was
    /// refused.
    pub unapproved_request: String,
}

/// One recovery session of the recovery scenario's account.
#[derive(Debug, Clone, Serialize)]
pub struct RecoveryReport {
    #[serde(serialize_with = "display")]
    pub session_id: SessionId,
    /// `device_lost` or `share_rotation`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(serialize_with = "display")]
    pub status: RecoveryStatus,
    /// The key's share generation after the session.
    pub epoch: u32,
    /// The holders whose signed authorizations the repair carried (`device_lost`).
    #[serde(serialize_with = "party_ids")]
    pub authorized_by: Vec<PartyId>,
}

/// Everything the demo did; serialized, the `--json` report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub scenario: Scenario,
    #[serde(serialize_with = "threshold")]
    pub threshold: Threshold,
    #[serde(serialize_with = "party_ids")]
    pub parties: Vec<PartyId>,
    #[serde(serialize_with = "display")]
    pub key_id: KeyId,
    #[serde(serialize_with = "public_key_hex")]
    pub public_key: PublicKey,
    pub signatures: Vec<SignatureReport>,
    #[serde(serialize_with = "history")]
    pub history: Vec<(SessionId, Vec<HistoryEntry>)>,
    /// The sessions as the session-status projection shows them.
    #[serde(rename = "sessions", serialize_with = "session_rows")]
    pub read_model: Vec<SessionStatusRow>,
    /// How many records the audit log holds after the run.
    pub audit_records: u64,
    /// The audit log's chain head: the last record's hash.
    #[serde(serialize_with = "optional_hex")]
    pub audit_head: Option<[u8; 32]>,
    #[serde(skip)]
    pub data_dir: Option<PathBuf>,
    /// Which vault each party keeps its share in.
    #[serde(serialize_with = "vaults")]
    pub vaults: Vec<(PartyId, String)>,
    pub workflow: Option<WorkflowReport>,
    /// Data scenario: whether the signature also verifies over a tampered copy of
    /// the document (it must not).
    #[serde(rename = "tampered_data_verifies")]
    pub tampered_verifies: Option<bool>,
    /// Recovery scenario: the group key before the device was lost.
    #[serde(serialize_with = "optional_public_key_hex")]
    pub public_key_before: Option<PublicKey>,
    /// Recovery scenario: the account's recovery sessions.
    #[serde(rename = "recovery_sessions")]
    pub recoveries: Vec<RecoveryReport>,
}

/// The `--json` form of a report.
pub fn to_json(report: &Report) -> serde_json::Value {
    serde_json::to_value(report)
        .unwrap_or_else(|e| unreachable!("a demo report is plain data: {e}"))
}

// How the report's domain values appear in JSON: ids and statuses as text, keys,
// hashes and bytes as hex, parties by name.

fn display<S: Serializer>(value: &impl std::fmt::Display, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(value)
}

fn party_ids<S: Serializer>(parties: &[PartyId], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(parties.iter().map(PartyId::as_str))
}

fn hex_bytes<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(bytes))
}

fn optional_hex<S: Serializer>(bytes: &Option<[u8; 32]>, s: S) -> Result<S::Ok, S::Error> {
    bytes.map(hex::encode).serialize(s)
}

fn message_hash_hex<S: Serializer>(hash: &MessageHash, s: S) -> Result<S::Ok, S::Error> {
    hex_bytes(hash.as_bytes(), s)
}

fn public_key_hex<S: Serializer>(key: &PublicKey, s: S) -> Result<S::Ok, S::Error> {
    hex_bytes(key.as_bytes(), s)
}

fn optional_public_key_hex<S: Serializer>(
    key: &Option<PublicKey>,
    s: S,
) -> Result<S::Ok, S::Error> {
    key.map(|k| hex::encode(k.as_bytes())).serialize(s)
}

fn threshold<S: Serializer>(threshold: &Threshold, s: S) -> Result<S::Ok, S::Error> {
    json!({"t": threshold.t(), "n": threshold.n()}).serialize(s)
}

fn signature_parts<S: Serializer>(signature: &Signature, s: S) -> Result<S::Ok, S::Error> {
    json!({
        "r_hex": hex::encode(signature.r()),
        "s_hex": hex::encode(signature.s()),
        "recovery_id": signature.recovery_id(),
    })
    .serialize(s)
}

fn vaults<S: Serializer>(vaults: &[(PartyId, String)], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(
        vaults
            .iter()
            .map(|(party, vault)| json!({"party": party.as_str(), "vault": vault})),
    )
}

fn session_rows<S: Serializer>(rows: &[SessionStatusRow], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(rows.iter().map(|r| {
        json!({
            "session_id": r.session_id.to_string(),
            "kind": r.kind.to_string(),
            "status": r.status.to_string(),
            "joined": r.joined,
            "reported": r.reported,
        })
    }))
}

fn history<S: Serializer>(
    history: &[(SessionId, Vec<HistoryEntry>)],
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_seq(
        history
            .iter()
            .map(|(session, events)| json!({"session_id": session.to_string(), "events": events})),
    )
}

/// Prints the text form of `report`.
pub fn print_text(report: &Report) {
    let names = |ps: &[PartyId]| {
        ps.iter()
            .map(PartyId::as_str)
            .collect::<Vec<_>>()
            .join(" + ")
    };
    println!(
        "scenario {}: {} key among {}",
        report.scenario.name(),
        report.threshold,
        names(&report.parties)
    );
    for (party, vault) in &report.vaults {
        println!("  {:<12} vault {vault}", party.as_str());
    }
    println!("  key id      {}", report.key_id);
    println!(
        "  public key  {}",
        hex::encode(report.public_key.as_bytes())
    );
    for s in &report.signatures {
        println!();
        println!("signature by {}", names(&s.signers));
        println!("  message     {:?}", String::from_utf8_lossy(&s.message));
        println!("  sha-256     {}", hex::encode(s.message_hash.as_bytes()));
        println!("  r           {}", hex::encode(s.signature.r()));
        println!("  s           {}", hex::encode(s.signature.s()));
        println!("  recovery id {}", s.signature.recovery_id());
        println!(
            "  verified    {}",
            if s.verified {
                "yes (k256, low-S)"
            } else {
                "NO"
            }
        );
    }
    if let Some(w) = &report.workflow {
        println!();
        println!("approval workflow {} ({:?})", w.workflow_id, w.title);
        println!(
            "  key policy  {} (pinned by every approver at keygen)",
            w.key_policy
        );
        println!("  unapproved  refused: {}", w.unapproved_request);
        println!("  rejected by {}", names(&w.rejected_by));
        println!("  approved by {}", names(&w.approved_by));
        println!("  status      {}", w.status);
        if let Some(projected) = &w.read_model_status {
            println!("  read model  {projected}");
        }
    }
    if let Some(before) = &report.public_key_before {
        println!();
        println!(
            "public key before recovery {}",
            hex::encode(before.as_bytes())
        );
        for r in &report.recoveries {
            println!(
                "  recovery {} {:<14} {:<10} share generation {}",
                r.session_id, r.kind, r.status, r.epoch
            );
            if !r.authorized_by.is_empty() {
                let by: Vec<&str> = r.authorized_by.iter().map(PartyId::as_str).collect();
                println!("    authorized by {}", by.join(", "));
            }
        }
    }
    if let Some(tampered) = report.tampered_verifies {
        println!();
        println!(
            "tampered document verifies: {}",
            if tampered { "YES (broken)" } else { "no" }
        );
    }
    println!();
    println!("session history, read back from the event log:");
    for (session, events) in &report.history {
        println!("  session-{session}");
        for e in events {
            println!(
                "    #{:<4} v{:<2} {:<18} {}",
                e.position,
                e.version,
                e.event_type,
                rfc3339(e.occurred_at)
            );
        }
    }
    println!();
    println!("session-status read model (projection):");
    for r in &report.read_model {
        println!(
            "  {} {:<8} {:<10} joined {} reported {}",
            r.session_id, r.kind, r.status, r.joined, r.reported
        );
    }
    println!();
    println!(
        "audit log: {} records, chain head {}",
        report.audit_records,
        report
            .audit_head
            .map_or_else(|| "(none)".to_owned(), hex::encode)
    );
    if let Some(dir) = &report.data_dir {
        println!();
        println!("event log and vaults kept in {}", dir.display());
    }
}

fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("{ms} ms"))
}
