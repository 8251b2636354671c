//! Operator commands that call the coordinator's gateway with the admin bearer
//! token:
//!
//! - `mpc recovery start` starts an account's recovery session (`device_lost`: a
//!   new device's share rebuilt by server and recovery; `share_rotation`: every
//!   share refreshed); `mpc recovery list` prints the account's recovery sessions.
//! - `mpc refresh` rotates every share of any completed key once, or, with
//!   `--every`, whenever the current share generation is that old.
//!
//! A new session's join tokens go to the parties named by `--invite PARTY=URL`
//! (the invitation listener of their `mpc party run`); the tokens of the others are
//! printed, as JSON, for the operator to hand over (e.g. to a phone).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use mpc_events::{AccountId, IdentityKey, KeyId, Timestamp};
use mpc_schemas::http::{
    ApiError, CreateSessionResponse, IdentityDto, KeyStateDto, RecoveriesDto, RecoveryRequest,
    SessionTtlRequest,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use zeroize::Zeroizing;

use crate::party::secret;

/// How often `mpc refresh --every` reads the key's state.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(60);
/// How long one request to the gateway or a party may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the gateway is and the operator's credential.
#[derive(Args, Debug, Clone)]
pub struct GatewayArgs {
    /// Base URL of the coordinator's gateway.
    #[arg(long, env = "MPC_COORDINATOR_URL")]
    pub coordinator: String,
    /// File holding the operator's bearer token (default: the MPC_ADMIN_TOKEN
    /// variable).
    #[arg(long, env = "MPC_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,
}

/// A party's invitation listener (`mpc party run --bind`): `PARTY=URL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invite {
    pub party: String,
    pub url: String,
}

/// Parses `PARTY=URL`.
pub fn parse_invite(raw: &str) -> Result<Invite, String> {
    match raw.split_once('=') {
        Some((party, url)) if !party.is_empty() && !url.is_empty() => Ok(Invite {
            party: party.to_owned(),
            url: url.trim_end_matches('/').to_owned(),
        }),
        _ => Err(format!("expected PARTY=URL, got {raw:?}")),
    }
}

/// Parses `<n>s`, `<n>m`, `<n>h` or `<n>d` with `n` a positive integer.
pub fn parse_every(raw: &str) -> Result<Duration, String> {
    let unit_at = raw.len().saturating_sub(1);
    let (number, unit) = raw.split_at(unit_at);
    let seconds_per_unit: u64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return Err(format!("expected <n>s, <n>m, <n>h or <n>d, got {raw:?}")),
    };
    match number.parse::<u64>() {
        Ok(n) if n > 0 => n
            .checked_mul(seconds_per_unit)
            .map(Duration::from_secs)
            .ok_or_else(|| format!("{raw:?} is too long")),
        _ => Err(format!(
            "expected a positive number before {unit:?}, got {raw:?}"
        )),
    }
}

/// Whether a scheduled refresh is due at `now`: the current share generation
/// (`generation_at`) is at least `every` old and no refresh of the key is running.
pub fn refresh_due(
    generation_at: Timestamp,
    every: Duration,
    now: Timestamp,
    refresh_running: bool,
) -> bool {
    let age = now.as_millis().saturating_sub(generation_at.as_millis());
    !refresh_running && u128::try_from(age).is_ok_and(|age| age >= every.as_millis())
}

#[derive(Subcommand, Debug)]
pub enum RecoveryCommand {
    /// Start a recovery session of an account; invite parties or print the tokens.
    Start(StartArgs),
    /// Print an account's recovery sessions, oldest first, as JSON.
    List(ListArgs),
}

/// What a recovery does.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecoveryType {
    /// The device share is lost: server and recovery rebuild it for a new device
    /// (the account must be recovering).
    #[value(name = "device_lost")]
    DeviceLost,
    /// Every share is refreshed (the account must be active).
    #[value(name = "share_rotation")]
    ShareRotation,
}

#[derive(Args, Debug)]
pub struct StartArgs {
    #[command(flatten)]
    pub gateway: GatewayArgs,
    #[arg(long)]
    pub account: AccountId,
    #[arg(long = "type", value_enum)]
    pub kind: RecoveryType,
    /// For `device_lost`: the new device's identity, the JSON `mpc party identity`
    /// prints, from this file or `-` for standard input.
    #[arg(long, required_if_eq("kind", "device_lost"))]
    pub device_identity_json: Option<PathBuf>,
    /// Lifetime of the session in seconds (default 600).
    #[arg(long)]
    pub ttl_seconds: Option<u64>,
    /// Hand PARTY's join token to its `mpc party run` listener at URL.
    #[arg(long = "invite", value_name = "PARTY=URL", value_parser = parse_invite)]
    pub invites: Vec<Invite>,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    #[command(flatten)]
    pub gateway: GatewayArgs,
    #[arg(long)]
    pub account: AccountId,
}

#[derive(Args, Debug)]
pub struct RefreshArgs {
    #[command(flatten)]
    pub gateway: GatewayArgs,
    /// The completed key whose shares to rotate.
    #[arg(long)]
    pub key: KeyId,
    /// Lifetime of each refresh session in seconds (default 600).
    #[arg(long)]
    pub ttl_seconds: Option<u64>,
    /// Hand PARTY's join token to its `mpc party run` listener at URL.
    #[arg(long = "invite", value_name = "PARTY=URL", value_parser = parse_invite)]
    pub invites: Vec<Invite>,
    /// Run as a scheduler: every minute, rotate the shares once the current
    /// generation is this old (`<n>s`, `<n>m`, `<n>h` or `<n>d`) and no refresh runs.
    #[arg(long, value_parser = parse_every)]
    pub every: Option<Duration>,
}

/// Runs `mpc recovery …`.
pub async fn recovery(command: RecoveryCommand) -> anyhow::Result<()> {
    match command {
        RecoveryCommand::Start(args) => {
            let client = AdminClient::new(&args.gateway)?;
            let request = recovery_request(&args)?;
            let created: CreateSessionResponse = client
                .post(
                    &format!("/v1/accounts/{}/recoveries", args.account),
                    &request,
                )
                .await?;
            let handed = hand_out(&client, created, &args.invites).await?;
            println!("{handed}");
        }
        RecoveryCommand::List(args) => {
            let client = AdminClient::new(&args.gateway)?;
            let list: RecoveriesDto = client
                .get(&format!("/v1/accounts/{}/recoveries", args.account))
                .await?;
            println!("{}", serde_json::to_string_pretty(&list)?);
        }
    }
    Ok(())
}

/// Runs `mpc refresh`: once, or as a scheduler with `--every`.
pub async fn refresh(args: RefreshArgs) -> anyhow::Result<()> {
    let client = AdminClient::new(&args.gateway)?;
    let Some(every) = args.every else {
        let handed = start_refresh(&client, &args).await?;
        println!("{handed}");
        return Ok(());
    };
    let mut ticks = tokio::time::interval(CHECK_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match refresh_if_due(&client, &args, every).await {
            Ok(Some(handed)) => println!("{handed}"),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(key = %args.key, error = format!("{e:#}"), "scheduled refresh")
            }
        }
    }
}

/// One scheduler check: starts a refresh when one is due.
async fn refresh_if_due(
    client: &AdminClient,
    args: &RefreshArgs,
    every: Duration,
) -> anyhow::Result<Option<serde_json::Value>> {
    let state: KeyStateDto = client.get(&format!("/v1/keys/{}", args.key)).await?;
    let running = match &state.last_refresh {
        Some(last) => last.is_running()?,
        None => false,
    };
    let now = Timestamp::from_millis(
        i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .context("the clock is before 1970")?
                .as_millis(),
        )
        .context("the clock is past the year 292 million")?,
    );
    let generation_at = Timestamp::from_millis(state.generation_at);
    if !refresh_due(generation_at, every, now, running) {
        return Ok(None);
    }
    start_refresh(client, args).await.map(Some)
}

async fn start_refresh(
    client: &AdminClient,
    args: &RefreshArgs,
) -> anyhow::Result<serde_json::Value> {
    let created: CreateSessionResponse = client
        .post(
            &format!("/v1/keys/{}/refresh", args.key),
            &SessionTtlRequest {
                ttl_seconds: args.ttl_seconds,
            },
        )
        .await?;
    hand_out(client, created, &args.invites).await
}

fn recovery_request(args: &StartArgs) -> anyhow::Result<RecoveryRequest> {
    Ok(match (args.kind, &args.device_identity_json) {
        (RecoveryType::DeviceLost, Some(path)) => RecoveryRequest::DeviceLost {
            device_identity: read_identity(path)?,
            ttl_seconds: args.ttl_seconds,
        },
        (RecoveryType::DeviceLost, None) => bail!("device_lost needs --device-identity-json"),
        (RecoveryType::ShareRotation, None) => RecoveryRequest::ShareRotation {
            ttl_seconds: args.ttl_seconds,
        },
        (RecoveryType::ShareRotation, Some(_)) => {
            bail!("--device-identity-json is only for device_lost")
        }
    })
}

/// The identity in `mpc party identity`'s output (or a bare `{signing, encryption}`)
/// from `path`, `-` for standard input; checked before it is sent.
fn read_identity(path: &Path) -> anyhow::Result<IdentityDto> {
    let text = if path == Path::new("-") {
        std::io::read_to_string(std::io::stdin()).context("cannot read standard input")?
    } else {
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?
    };
    parse_identity(&text)
}

/// Parses `mpc party identity`'s output (or a bare `{signing, encryption}`).
pub fn parse_identity(text: &str) -> anyhow::Result<IdentityDto> {
    let mut value: serde_json::Value =
        serde_json::from_str(text).context("the device identity is not JSON")?;
    if let Some(inner) = value.get_mut("identity") {
        value = inner.take();
    }
    let identity: IdentityDto =
        serde_json::from_value(value).context("expected the JSON `mpc party identity` prints")?;
    IdentityKey::try_from(&identity).context("the device identity is invalid")?;
    Ok(identity)
}

/// Sends each invited party its token; answers with the session and the tokens of
/// the parties not invited.
async fn hand_out(
    client: &AdminClient,
    created: CreateSessionResponse,
    invites: &[Invite],
) -> anyhow::Result<serde_json::Value> {
    let CreateSessionResponse {
        session_id,
        mut join_tokens,
        expires_at,
    } = created;
    let mut invited = Vec::new();
    for invite in invites {
        let token = Zeroizing::new(join_tokens.remove(&invite.party).with_context(|| {
            format!(
                "{} is not a party of session {session_id} (or was invited twice)",
                invite.party
            )
        })?);
        client
            .invite(&invite.url, &session_id, &token)
            .await
            .with_context(|| format!("cannot invite {} at {}", invite.party, invite.url))?;
        invited.push(invite.party.clone());
    }
    Ok(json!({
        "session_id": session_id,
        "expires_at": expires_at,
        "invited": invited,
        "join_tokens": join_tokens,
    }))
}

/// The gateway's admin routes over HTTP, and parties' invitation listeners.
struct AdminClient {
    base: String,
    token: Zeroizing<String>,
    http: reqwest::Client,
}

impl AdminClient {
    fn new(args: &GatewayArgs) -> anyhow::Result<Self> {
        let token = secret(
            args.admin_token_file.as_deref(),
            "MPC_ADMIN_TOKEN",
            "--admin-token-file",
        )?;
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Self {
            base: args.coordinator.trim_end_matches('/').to_owned(),
            token,
            http,
        })
    }

    async fn get<R: DeserializeOwned>(&self, path: &str) -> anyhow::Result<R> {
        let request = self.http.get(format!("{}{path}", self.base));
        self.send(request).await
    }

    async fn post<B: Serialize, R: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> anyhow::Result<R> {
        let request = self.http.post(format!("{}{path}", self.base)).json(body);
        self.send(request).await
    }

    async fn send<R: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> anyhow::Result<R> {
        let response = request
            .bearer_auth(self.token.as_str())
            .send()
            .await
            .context("the gateway does not answer")?;
        let status = response.status();
        if status.is_success() {
            return response
                .json()
                .await
                .context("the gateway's answer is not the expected JSON");
        }
        match response.json::<ApiError>().await {
            Ok(e) => bail!("{} ({status}): {}", e.code, e.message),
            Err(_) => bail!("the gateway answered {status}"),
        }
    }

    /// Posts `{session_id, token}` to `url`'s `/v1/invitations`.
    async fn invite(&self, url: &str, session_id: &str, token: &str) -> anyhow::Result<()> {
        let response = self
            .http
            .post(format!("{url}/v1/invitations"))
            .json(&BTreeMap::from([
                ("session_id", session_id),
                ("token", token),
            ]))
            .send()
            .await
            .context("the party does not answer")?;
        if !response.status().is_success() {
            bail!("the party answered {}", response.status());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

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
}
