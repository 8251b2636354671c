//! `mpc recovery` and `mpc refresh`: their flags, and the parsing and scheduling
//! rules behind them.

use std::time::Duration;

use clap::Parser;
use mpc_api::IdentityDto;
use mpc_cli::operator::{
    Invite, RecoveryCommand, RecoveryType, RefreshArgs, parse_every, parse_identity, parse_invite,
    recovery_request, refresh_due,
};
use mpc_events::{AccountId, KeyId, Timestamp};
use serde_json::json;

#[derive(Parser, Debug)]
enum Cli {
    #[command(subcommand)]
    Recovery(RecoveryCommand),
    Refresh(RefreshArgs),
}

fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(std::iter::once("mpc").chain(args.iter().copied()))
}

#[test]
fn commands_parse_their_flags() {
    let account = AccountId::new().to_string();
    let gateway = ["--coordinator", "http://127.0.0.1:8080"];
    let start = |extra: &[&str]| {
        let mut args = vec!["recovery", "start", "--account", account.as_str()];
        args.extend(gateway);
        args.extend(extra);
        parse(&args)
    };
    let Ok(Cli::Recovery(RecoveryCommand::Start(args))) = start(&[
        "--type",
        "share_rotation",
        "--invite",
        "server=http://10.0.0.2:8090",
        "--invite",
        "recovery=http://10.0.0.3:8090",
    ]) else {
        panic!("share_rotation with invitations did not parse");
    };
    assert_eq!(args.kind, RecoveryType::ShareRotation);
    assert_eq!(args.invites.len(), 2);
    assert_eq!(args.invites[1].party, "recovery");
    assert_eq!(args.gateway.coordinator, "http://127.0.0.1:8080");
    assert!(recovery_request(&args).is_ok());
    let Ok(Cli::Recovery(RecoveryCommand::Start(args))) = start(&[
        "--type",
        "device_lost",
        "--device-identity-json",
        "-",
        "--ttl-seconds",
        "120",
    ]) else {
        panic!("device_lost with an identity did not parse");
    };
    assert_eq!(args.kind, RecoveryType::DeviceLost);
    assert_eq!(args.ttl_seconds, Some(120));
    assert!(start(&["--type", "device_lost"]).is_err());
    assert!(start(&["--type", "device-lost"]).is_err());
    assert!(start(&["--type", "share_rotation", "--invite", "server"]).is_err());
    let Ok(Cli::Recovery(RecoveryCommand::Start(args))) = start(&[
        "--type",
        "share_rotation",
        "--device-identity-json",
        "id.json",
    ]) else {
        panic!("the flags did not parse");
    };
    assert!(recovery_request(&args).is_err());
    assert!(
        parse(&[
            "recovery",
            "list",
            "--account",
            "nope",
            gateway[0],
            gateway[1]
        ])
        .is_err()
    );

    let key = KeyId::of_keygen(mpc_events::SessionId::new()).to_string();
    let Ok(Cli::Refresh(args)) = parse(&[
        "refresh",
        "--key",
        key.as_str(),
        gateway[0],
        gateway[1],
        "--every",
        "24h",
    ]) else {
        panic!("refresh --every did not parse");
    };
    assert_eq!(args.every, Some(Duration::from_secs(86_400)));
    assert!(
        parse(&[
            "refresh",
            "--key",
            key.as_str(),
            gateway[0],
            gateway[1],
            "--every",
            "1y"
        ])
        .is_err()
    );
}

#[test]
fn invites_are_party_equals_url() {
    assert_eq!(
        parse_invite("server=http://10.0.0.2:8090/"),
        Ok(Invite {
            party: "server".into(),
            url: "http://10.0.0.2:8090".into()
        })
    );
    assert!(parse_invite("server").is_err());
    assert!(parse_invite("=http://x").is_err());
    assert!(parse_invite("server=").is_err());
}

#[test]
fn periods_are_a_positive_number_and_a_unit() {
    assert_eq!(parse_every("90s"), Ok(Duration::from_secs(90)));
    assert_eq!(parse_every("15m"), Ok(Duration::from_secs(900)));
    assert_eq!(parse_every("24h"), Ok(Duration::from_secs(86_400)));
    assert_eq!(parse_every("7d"), Ok(Duration::from_secs(604_800)));
    for bad in [
        "",
        "h",
        "0h",
        "-1h",
        "1.5h",
        "24",
        "24w",
        "h24",
        "99999999999999999999d",
    ] {
        assert!(parse_every(bad).is_err(), "{bad:?} accepted");
    }
    assert!(parse_every("300000000000000000d").is_err());
}

#[test]
fn a_refresh_is_due_once_the_generation_is_old_enough_and_none_runs() {
    let day = Duration::from_secs(86_400);
    let at = |ms: i64| Timestamp::from_millis(ms);
    let generation = 1_700_000_000_000;
    let day_ms = 86_400_000;
    assert!(!refresh_due(at(generation), day, at(generation), false));
    assert!(!refresh_due(
        at(generation),
        day,
        at(generation + day_ms - 1),
        false
    ));
    assert!(refresh_due(
        at(generation),
        day,
        at(generation + day_ms),
        false
    ));
    assert!(refresh_due(
        at(generation),
        day,
        at(generation + 3 * day_ms),
        false
    ));
    assert!(!refresh_due(
        at(generation),
        day,
        at(generation + 3 * day_ms),
        true
    ));
    // A clock behind the generation is not due.
    assert!(!refresh_due(
        at(generation),
        day,
        at(generation - day_ms),
        false
    ));
}

#[test]
fn device_identities_come_from_party_identity_output() {
    let signing = hex::encode([1; 32]);
    let encryption = hex::encode([2; 32]);
    let printed = json!({
        "party_id": "device",
        "identity": {"signing": signing, "encryption": encryption},
    })
    .to_string();
    let expected = IdentityDto {
        signing: signing.clone(),
        encryption: encryption.clone(),
    };
    assert_eq!(parse_identity(&printed).unwrap(), expected);
    let bare = json!({"signing": signing, "encryption": encryption}).to_string();
    assert_eq!(parse_identity(&bare).unwrap(), expected);
    assert!(parse_identity("not json").is_err());
    assert!(parse_identity(r#"{"party_id": "device"}"#).is_err());
    assert!(parse_identity(r#"{"signing": "zz", "encryption": "00"}"#).is_err());
}
