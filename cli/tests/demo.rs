//! `mpc demo` end to end: the library entry point and the real binary.

use std::process::Command;

use indicatif::ProgressBar;
use mpc_cli::demo::{Options, Scenario, execute};
use mpc_crypto::verify_signature;
use mpc_events::{KeyPolicy, MessageHash, PublicKey, Signature};
use sha2::{Digest, Sha256};

fn names(ps: &[mpc_events::PartyId]) -> Vec<&str> {
    ps.iter().map(|p| p.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_demo_signs_with_two_signer_sets_and_records_every_step() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        scenario: Scenario::Foundation,
        hsm: None,
        threshold: 2,
        parties: 3,
        data_dir: Some(dir.path().to_owned()),
        message: b"pay alice 5".to_vec(),
        json: false,
    };
    let report = execute(&options, &ProgressBar::hidden()).await.unwrap();

    assert_eq!(names(&report.parties), ["device", "server", "recovery"]);
    assert_eq!(report.signatures.len(), 2);
    assert_eq!(names(&report.signatures[0].signers), ["device", "server"]);
    assert_eq!(names(&report.signatures[1].signers), ["server", "recovery"]);
    let hash = MessageHash::from_bytes(Sha256::digest(b"pay alice 5").into());
    for s in &report.signatures {
        assert_eq!(s.message_hash, hash);
        assert!(verify_signature(&report.public_key, &hash, &s.signature));
    }

    let (keygen, events) = &report.history[0];
    assert_eq!(keygen, &report.key_id.keygen_session());
    let types: Vec<_> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        [
            "SessionCreated",
            "ParticipantJoined",
            "ParticipantJoined",
            "ParticipantJoined",
            "SessionStarted",
            "PartyCompleted",
            "PartyCompleted",
            "PartyCompleted",
            "SessionCompleted",
        ]
    );
    for (_, events) in &report.history[1..] {
        let types: Vec<_> = events.iter().map(|e| e.event_type.as_str()).collect();
        assert_eq!(
            types[..4],
            [
                "SessionCreated",
                "ParticipantJoined",
                "ParticipantJoined",
                "SessionStarted"
            ]
        );
        assert!(types.contains(&"SessionCompleted"));
        assert_eq!(types.iter().filter(|t| **t == "PartyCompleted").count(), 2);
    }
    // The session-status projection shows every session completed.
    assert_eq!(report.read_model.len(), 3);
    for row in &report.read_model {
        assert_eq!(row.status, mpc_events::SessionStatus::Completed);
    }
    assert_eq!(report.read_model[0].reported, 3);
    // The event log stayed in the data directory.
    assert!(dir.path().join("events.db").exists());
}

#[test]
fn the_binary_prints_verifiable_json_for_three_of_five() {
    let out = Command::new(env!("CARGO_BIN_EXE_mpc"))
        .args([
            "demo",
            "--json",
            "--threshold",
            "3",
            "--parties",
            "5",
            "--message",
            "audit me",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "demo failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let public_key =
        PublicKey::from_slice(&hex::decode(json["public_key"].as_str().unwrap()).unwrap()).unwrap();
    let sigs = json["signatures"].as_array().unwrap();
    assert_eq!(sigs.len(), 2);
    for s in sigs {
        assert_eq!(s["signers"].as_array().unwrap().len(), 3);
        let message = hex::decode(s["message_hex"].as_str().unwrap()).unwrap();
        assert_eq!(message, b"audit me");
        let hash = hex::decode(s["message_hash_hex"].as_str().unwrap()).unwrap();
        assert_eq!(hash, Sha256::digest(&message).to_vec());
        let sig = Signature::new(
            &hex::decode(s["r_hex"].as_str().unwrap()).unwrap(),
            &hex::decode(s["s_hex"].as_str().unwrap()).unwrap(),
            u8::try_from(s["recovery_id"].as_u64().unwrap()).unwrap(),
        )
        .unwrap();
        assert!(verify_signature(
            &public_key,
            &MessageHash::from_slice(&hash).unwrap(),
            &sig
        ));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_approval_scenario_signs_only_after_t_signed_approvals_and_only_by_the_approvers() {
    let options = Options {
        scenario: Scenario::Approval,
        hsm: None,
        threshold: 3,
        parties: 5,
        data_dir: None,
        message: b"release batch 42".to_vec(),
        json: false,
    };
    let report = execute(&options, &ProgressBar::hidden()).await.unwrap();
    let workflow = report.workflow.as_ref().expect("a workflow report");
    assert_eq!(names(&workflow.rejected_by), ["approver-2"]);
    assert_eq!(workflow.key_policy, KeyPolicy::ApprovedOnly);
    assert!(
        workflow
            .unapproved_request
            .contains("signs only approved payloads"),
        "{}",
        workflow.unapproved_request
    );
    assert_eq!(
        names(&workflow.approved_by),
        ["approver-1", "approver-3", "approver-4"]
    );
    assert_eq!(report.signatures.len(), 1);
    let signature = &report.signatures[0];
    assert_eq!(names(&signature.signers), names(&workflow.approved_by));
    assert_eq!(workflow.read_model_status.as_deref(), Some("signed"));
    let hash = MessageHash::from_bytes(Sha256::digest(b"release batch 42").into());
    assert!(verify_signature(
        &report.public_key,
        &hash,
        &signature.signature
    ));
    // The signing session is recorded from its creation to its completion.
    let (_, events) = &report.history[1];
    assert_eq!(events[0].event_type, "SessionCreated");
    assert!(events.iter().any(|e| e.event_type == "SessionCompleted"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recovery_scenario_keeps_the_key_and_the_new_device_signs() {
    let options = Options {
        scenario: Scenario::Recovery,
        hsm: None,
        threshold: 2,
        parties: 3,
        data_dir: None,
        message: b"after recovery".to_vec(),
        json: true,
    };
    let report = execute(&options, &ProgressBar::hidden()).await.unwrap();
    assert_eq!(report.public_key_before, Some(report.public_key));
    let recoveries: Vec<_> = report
        .recoveries
        .iter()
        .map(|r| (r.kind.as_str(), r.status.to_string(), r.epoch))
        .collect();
    assert_eq!(
        recoveries,
        [
            ("device_lost", "completed".to_owned(), 2),
            ("share_rotation", "completed".to_owned(), 3)
        ]
    );
    let kinds: Vec<_> = report
        .read_model
        .iter()
        .map(|r| r.kind.to_string())
        .collect();
    assert_eq!(kinds, ["keygen", "refresh", "refresh", "signing"]);
    assert_eq!(report.signatures.len(), 1);
    let signature = &report.signatures[0];
    assert_eq!(names(&signature.signers), ["device", "server"]);
    let hash = MessageHash::from_bytes(Sha256::digest(b"after recovery").into());
    assert!(verify_signature(
        &report.public_key,
        &hash,
        &signature.signature
    ));

    let json = mpc_cli::demo::to_json(&report);
    assert_eq!(json["scenario"], "recovery");
    assert_eq!(json["public_key_before"], json["public_key"]);
    assert_eq!(json["recovery_sessions"][0]["type"], "device_lost");
    assert_eq!(
        json["recovery_sessions"][0]["authorized_by"],
        serde_json::json!(["server", "recovery"])
    );
    assert_eq!(
        json["recovery_sessions"][1]["authorized_by"],
        serde_json::json!([])
    );
    assert_eq!(json["signatures"][0]["verified"], true);
}

#[test]
fn the_data_scenario_signs_a_document_with_the_hsm_backed_party() {
    let out = Command::new(env!("CARGO_BIN_EXE_mpc"))
        .args([
            "demo",
            "--scenario",
            "data",
            "--json",
            "--message",
            "invoice 2026-117",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "demo failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["scenario"], "data");
    let vaults: Vec<(&str, &str)> = json["vaults"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["party"].as_str().unwrap(), v["vault"].as_str().unwrap()))
        .collect();
    assert_eq!(vaults[0], ("app-server", "file"));
    assert_eq!(vaults[1].0, "hsm");
    // The test command installs SoftHSM2, so the HSM party must really use it.
    if std::path::Path::new("/usr/lib/softhsm/libsofthsm2.so").exists() {
        assert!(vaults[1].1.starts_with("pkcs11"), "{vaults:?}");
    }
    assert_eq!(json["tampered_data_verifies"], false);
    let public_key =
        PublicKey::from_slice(&hex::decode(json["public_key"].as_str().unwrap()).unwrap()).unwrap();
    let s = &json["signatures"][0];
    assert_eq!(s["signers"], serde_json::json!(["app-server", "hsm"]));
    let sig = Signature::new(
        &hex::decode(s["r_hex"].as_str().unwrap()).unwrap(),
        &hex::decode(s["s_hex"].as_str().unwrap()).unwrap(),
        u8::try_from(s["recovery_id"].as_u64().unwrap()).unwrap(),
    )
    .unwrap();
    let hash = MessageHash::from_bytes(Sha256::digest(b"invoice 2026-117").into());
    assert!(verify_signature(&public_key, &hash, &sig));
    let tampered = MessageHash::from_bytes(Sha256::digest(b"invoice 2026-118").into());
    assert!(!verify_signature(&public_key, &tampered, &sig));
}

#[test]
fn the_data_scenario_refuses_another_threshold() {
    let out = Command::new(env!("CARGO_BIN_EXE_mpc"))
        .args([
            "demo",
            "--scenario",
            "data",
            "--threshold",
            "3",
            "--parties",
            "3",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("2-of-3"), "{stderr}");
}

#[test]
fn the_binary_refuses_an_impossible_threshold_with_a_clear_message() {
    for args in [
        ["--threshold", "4", "--parties", "3"],
        ["--threshold", "1", "--parties", "3"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_mpc"))
            .arg("demo")
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("invalid --threshold/--parties"), "{stderr}");
        assert!(stderr.contains("2 <= t <= n <= 20"), "{stderr}");
    }
}
