//! Operator commands that call the coordinator's gateway with the admin bearer
//! token:
//!
//! - `mpc recovery request` asks the holders of a recovering account's key to
//!   authorize rebuilding its device share for a new device: it pushes the request
//!   to their nodes named by `--review PARTY=URL` (their `mpc party recoveries`
//!   desk). `mpc recovery start` starts an account's recovery session (`device_lost`:
//!   the new device's share rebuilt by server and recovery, with the authorizations
//!   their humans approved, collected from their nodes with `--authorizations-from`
//!   or given as files; `share_rotation`: every share refreshed);
//!   `mpc recovery list` prints the account's recovery sessions.
//! - `mpc refresh` rotates every share of any completed key once, or, with
//!   `--every`, whenever the current share generation is that old.
//! - `mpc workflow open` asks a key's holders to review a payload and pushes the
//!   review request to the approvers' nodes named by `--review PARTY=URL` (their
//!   `mpc party approvals` desk); `mpc workflow show` prints a workflow;
//!   `mpc workflow sign` starts the signing session of an approved workflow.
//!
//! A new session's join tokens go to the parties named by `--invite PARTY=URL`
//! (the invitation listener of their `mpc party run`); the tokens of the others are
//! printed, as JSON, for the operator to hand over (e.g. to a phone). Invitations
//! carry `MPC_PARTY_INVITATION_TOKEN`, when set, as the listeners' credential.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use mpc_api::{
    AccountDto, CreateSessionResponse, CreateWorkflowRequest, CreateWorkflowResponse, IdentityDto,
    KeyStateDto, RecoveriesDto, RecoveryRequest, SessionTtlRequest, SignedApprovalDto, WorkflowDto,
};
use mpc_app::admin::AdminClient;
use mpc_app::recoveries::request_id;
use mpc_app::reviews::ReviewRequest;
use mpc_events::{AccountId, IdentityKey, KeyId, PartyId, Timestamp, WorkflowId};
use serde_json::json;
use zeroize::Zeroizing;

use crate::party::secret;

/// How often `mpc refresh --every` reads the key's state.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(60);

/// Where the gateway is and the operator's credential.
#[derive(Args, Debug, Clone)]
pub struct GatewayArgs {
    /// Base URL of the coordinator's gateway.
    #[arg(long, env = "MPC_COORDINATOR_URL")]
    pub coordinator: String,
    /// File holding the operator's bearer credential: an API key (`mpc operator
    /// add`) or the bootstrap admin token (default: the MPC_ADMIN_TOKEN variable).
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
    /// Ask the key's holders to authorize a new device: push the request to their
    /// nodes, where their humans approve or reject it.
    Request(RequestArgs),
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
    /// For `device_lost`: a holder's authorization, the JSON `mpc party
    /// authorize-recovery` printed (once per holder: server and recovery).
    #[arg(long = "authorization", value_name = "FILE")]
    pub authorizations: Vec<PathBuf>,
    /// For `device_lost`: collect holder PARTY's authorization from its node at URL,
    /// where its human approved `mpc recovery request`'s request.
    #[arg(long = "authorizations-from", value_name = "PARTY=URL", value_parser = parse_invite)]
    pub authorizations_from: Vec<Invite>,
    /// Lifetime of the session in seconds (default 600).
    #[arg(long)]
    pub ttl_seconds: Option<u64>,
    /// Hand PARTY's join token to its `mpc party run` listener at URL.
    #[arg(long = "invite", value_name = "PARTY=URL", value_parser = parse_invite)]
    pub invites: Vec<Invite>,
}

#[derive(Args, Debug)]
pub struct RequestArgs {
    #[command(flatten)]
    pub gateway: GatewayArgs,
    /// The recovering account whose device share is lost.
    #[arg(long)]
    pub account: AccountId,
    /// The new device's identity, the JSON `mpc party identity` prints there, from
    /// this file or `-` for standard input.
    #[arg(long)]
    pub device_identity_json: PathBuf,
    /// Why, for the holders deciding (at most 500 characters).
    #[arg(long, default_value = "")]
    pub reason: String,
    /// Send holder PARTY's node (`mpc party run` at URL) the request.
    #[arg(long = "review", value_name = "PARTY=URL", value_parser = parse_invite)]
    pub reviews: Vec<Invite>,
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

#[derive(Subcommand, Debug)]
pub enum WorkflowCommand {
    /// Ask a key's holders to review a payload before it is signed, and push the
    /// review request to the approvers' nodes.
    Open(OpenWorkflowArgs),
    /// Print a workflow: status, payload, approvers and their decisions.
    Show(ShowWorkflowArgs),
    /// Start the signing session of an approved workflow; invite its signers.
    Sign(SignWorkflowArgs),
}

#[derive(Args, Debug)]
pub struct OpenWorkflowArgs {
    #[command(flatten)]
    pub gateway: GatewayArgs,
    /// The completed key whose holders approve.
    #[arg(long)]
    pub key: KeyId,
    /// What the approvers are asked (1 to 200 characters).
    #[arg(long)]
    pub title: String,
    /// The payload to sign once approved, from this file or `-` for standard input.
    #[arg(long)]
    pub payload_file: PathBuf,
    /// How long approvers have to decide, in seconds (default 86 400).
    #[arg(long)]
    pub ttl_seconds: Option<u64>,
    /// Send approver PARTY's node (`mpc party run` at URL) the review request.
    #[arg(long = "review", value_name = "PARTY=URL", value_parser = parse_invite)]
    pub reviews: Vec<Invite>,
}

#[derive(Args, Debug)]
pub struct ShowWorkflowArgs {
    #[command(flatten)]
    pub gateway: GatewayArgs,
    #[arg(long)]
    pub workflow: WorkflowId,
}

#[derive(Args, Debug)]
pub struct SignWorkflowArgs {
    #[command(flatten)]
    pub gateway: GatewayArgs,
    #[arg(long)]
    pub workflow: WorkflowId,
    /// Lifetime of the session in seconds (default 600).
    #[arg(long)]
    pub ttl_seconds: Option<u64>,
    /// Hand PARTY's join token to its `mpc party run` listener at URL.
    #[arg(long = "invite", value_name = "PARTY=URL", value_parser = parse_invite)]
    pub invites: Vec<Invite>,
}

/// Runs `mpc workflow …`.
pub async fn workflow(command: WorkflowCommand) -> anyhow::Result<()> {
    match command {
        WorkflowCommand::Open(args) => {
            let client = admin_client(&args.gateway)?;
            let opened = open_workflow(&client, &args).await?;
            println!("{opened}");
        }
        WorkflowCommand::Show(args) => {
            let client = admin_client(&args.gateway)?;
            let workflow: WorkflowDto = client
                .get(&format!("/v1/workflows/{}", args.workflow))
                .await?;
            println!("{}", serde_json::to_string_pretty(&workflow)?);
        }
        WorkflowCommand::Sign(args) => {
            let client = admin_client(&args.gateway)?;
            let created: CreateSessionResponse = client
                .post(
                    &format!("/v1/workflows/{}/signing", args.workflow),
                    &SessionTtlRequest {
                        ttl_seconds: args.ttl_seconds,
                    },
                )
                .await?;
            let handed = hand_out(&client, created, &args.invites).await?;
            println!("{handed}");
        }
    }
    Ok(())
}

/// Opens the workflow, then sends each `--review` party the request. A party
/// that is not one of the key's approvers is refused before anything is created.
async fn open_workflow(
    client: &AdminClient,
    args: &OpenWorkflowArgs,
) -> anyhow::Result<serde_json::Value> {
    let key: KeyStateDto = client.get(&format!("/v1/keys/{}", args.key)).await?;
    let holders: Vec<&str> = key
        .key
        .parties
        .iter()
        .map(|p| p.party_id.as_str())
        .collect();
    if let Some(stranger) = args
        .reviews
        .iter()
        .find(|r| !holders.contains(&r.party.as_str()))
    {
        bail!(
            "{} does not hold key {} (its approvers: {})",
            stranger.party,
            args.key,
            holders.join(", ")
        );
    }
    let payload = read_bytes(&args.payload_file)?;
    let request = ReviewRequest {
        workflow_id: String::new(),
        key_id: args.key.to_string(),
        title: args.title.clone(),
        payload_hex: hex::encode(&payload),
    };
    let created: CreateWorkflowResponse = client
        .post(
            "/v1/workflows",
            &CreateWorkflowRequest {
                key_id: request.key_id.clone(),
                title: request.title.clone(),
                payload_hex: request.payload_hex.clone(),
                ttl_seconds: args.ttl_seconds,
            },
        )
        .await?;
    let request = ReviewRequest {
        workflow_id: created.workflow_id.clone(),
        ..request
    };
    let credential = party_credential();
    let mut sent = Vec::new();
    for review in &args.reviews {
        client
            .request_review(
                &review.url,
                &request,
                credential.as_deref().map(String::as_str),
            )
            .await
            .with_context(|| {
                format!(
                    "workflow {} is open, but the review request did not reach {} at {}",
                    created.workflow_id, review.party, review.url
                )
            })?;
        sent.push(review.party.clone());
    }
    Ok(json!({
        "workflow_id": created.workflow_id,
        "payload_hash_hex": created.payload_hash_hex,
        "approvers": created.approvers,
        "threshold": created.threshold,
        "expires_at": created.expires_at,
        "reviews_sent": sent,
    }))
}

/// Runs `mpc recovery …`.
pub async fn recovery(command: RecoveryCommand) -> anyhow::Result<()> {
    match command {
        RecoveryCommand::Request(args) => {
            let client = admin_client(&args.gateway)?;
            let requested = request_recovery(&client, &args).await?;
            println!("{requested}");
        }
        RecoveryCommand::Start(args) => {
            let client = admin_client(&args.gateway)?;
            let mut request = recovery_request(&args)?;
            if let RecoveryRequest::DeviceLost {
                device_identity,
                authorizations,
                ..
            } = &mut request
                && !args.authorizations_from.is_empty()
            {
                let asked = asked_of(&client, args.account, device_identity).await?;
                for holder in &args.authorizations_from {
                    authorizations.push(collect_authorization(&client, &asked, holder).await?);
                }
            }
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
            let client = admin_client(&args.gateway)?;
            let list: RecoveriesDto = client
                .get(&format!("/v1/accounts/{}/recoveries", args.account))
                .await?;
            println!("{}", serde_json::to_string_pretty(&list)?);
        }
    }
    Ok(())
}

/// What a device-lost recovery of an account asks its holders: the request their
/// nodes keep, and the holders.
struct Asked {
    request: mpc_app::recoveries::RecoveryRequest,
    id: String,
    holders: Vec<String>,
}

/// The request to rebuild `account`'s device share for the device `identity`, from
/// the account as the gateway shows it.
async fn asked_of(
    client: &AdminClient,
    account: AccountId,
    identity: &IdentityDto,
) -> anyhow::Result<Asked> {
    let account: AccountDto = client.get(&format!("/v1/accounts/{account}")).await?;
    let key = account
        .key_id
        .as_deref()
        .context("the account's key is not generated yet")?;
    let target = account
        .shares
        .get("device")
        .context("the account has no device share")?;
    let id = request_id(
        key.parse()
            .context("the gateway answered a malformed key id")?,
        &PartyId::parse(target.as_str()).context("the gateway answered a malformed party id")?,
        &IdentityKey::try_from(identity).context("the device identity is invalid")?,
    );
    Ok(Asked {
        request: mpc_app::recoveries::RecoveryRequest {
            key_id: key.to_owned(),
            target: target.clone(),
            device_identity: identity.clone(),
            reason: String::new(),
        },
        id,
        holders: account
            .shares
            .values()
            .filter(|holder| *holder != target)
            .cloned()
            .collect(),
    })
}

/// Checks that `holder` is one of the holders a request goes to.
fn check_holder(asked: &Asked, holder: &Invite) -> anyhow::Result<()> {
    if asked.holders.contains(&holder.party) {
        return Ok(());
    }
    bail!(
        "{} is not a holder that can authorize this recovery (they are: {})",
        holder.party,
        asked.holders.join(", ")
    )
}

/// Sends each `--review` holder's node the request.
async fn request_recovery(
    client: &AdminClient,
    args: &RequestArgs,
) -> anyhow::Result<serde_json::Value> {
    let identity = read_identity(&args.device_identity_json)?;
    let mut asked = asked_of(client, args.account, &identity).await?;
    asked.request.reason = args.reason.clone();
    for review in &args.reviews {
        check_holder(&asked, review)?;
    }
    let credential = party_credential();
    let mut sent = Vec::new();
    for review in &args.reviews {
        let kept = client
            .request_recovery(
                &review.url,
                &asked.request,
                credential.as_deref().map(String::as_str),
            )
            .await
            .with_context(|| {
                format!(
                    "the recovery request did not reach {} at {}",
                    review.party, review.url
                )
            })?;
        if kept.request_id != asked.id {
            bail!(
                "{} keeps the request as {}, not {}",
                review.party,
                kept.request_id,
                asked.id
            );
        }
        sent.push(review.party.clone());
    }
    Ok(json!({
        "request_id": asked.id,
        "key_id": asked.request.key_id,
        "target": asked.request.target,
        "device_identity": asked.request.device_identity,
        "requests_sent": sent,
    }))
}

/// The authorization `holder`'s human approved on its node.
async fn collect_authorization(
    client: &AdminClient,
    asked: &Asked,
    holder: &Invite,
) -> anyhow::Result<SignedApprovalDto> {
    check_holder(asked, holder)?;
    let credential = party_credential();
    let kept = client
        .recovery(
            &holder.url,
            &asked.id,
            credential.as_deref().map(String::as_str),
        )
        .await
        .with_context(|| {
            format!(
                "cannot read recovery request {} from {} at {}",
                asked.id, holder.party, holder.url
            )
        })?;
    match (kept.decision.as_deref(), kept.authorization) {
        (Some("approve"), Some(authorization)) => Ok(authorization),
        (Some("reject"), _) => bail!("{} rejected recovery request {}", holder.party, asked.id),
        _ => bail!(
            "{} has not decided recovery request {} yet",
            holder.party,
            asked.id
        ),
    }
}

/// The credential of parties' listeners, when one is set.
fn party_credential() -> Option<Zeroizing<String>> {
    std::env::var(crate::party::INVITATION_TOKEN)
        .ok()
        .map(Zeroizing::new)
}

/// Runs `mpc refresh`: once, or as a scheduler with `--every`.
pub async fn refresh(args: RefreshArgs) -> anyhow::Result<()> {
    let client = admin_client(&args.gateway)?;
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

/// The request `mpc recovery start` sends.
pub fn recovery_request(args: &StartArgs) -> anyhow::Result<RecoveryRequest> {
    Ok(match (args.kind, &args.device_identity_json) {
        (RecoveryType::DeviceLost, Some(path)) => RecoveryRequest::DeviceLost {
            device_identity: read_identity(path)?,
            authorizations: args
                .authorizations
                .iter()
                .map(|path| {
                    serde_json::from_str(&read_text(path)?).with_context(|| {
                        format!(
                            "{} is not an authorization (approver, signature_hex)",
                            path.display()
                        )
                    })
                })
                .collect::<anyhow::Result<_>>()?,
            ttl_seconds: args.ttl_seconds,
        },
        (RecoveryType::DeviceLost, None) => bail!("device_lost needs --device-identity-json"),
        (RecoveryType::ShareRotation, None)
            if args.authorizations.is_empty() && args.authorizations_from.is_empty() =>
        {
            RecoveryRequest::ShareRotation {
                ttl_seconds: args.ttl_seconds,
            }
        }
        (RecoveryType::ShareRotation, _) => {
            bail!(
                "--device-identity-json, --authorization and --authorizations-from are only \
                 for device_lost"
            )
        }
    })
}

/// The identity in `mpc party identity`'s output (or a bare `{signing, encryption}`)
/// from `path`, `-` for standard input; checked before it is sent.
pub(crate) fn read_identity(path: &Path) -> anyhow::Result<IdentityDto> {
    parse_identity(&read_text(path)?)
}

/// The text of `path`, `-` for standard input.
fn read_text(path: &Path) -> anyhow::Result<String> {
    String::from_utf8(read_bytes(path)?)
        .with_context(|| format!("{} is not UTF-8 text", path.display()))
}

/// The bytes of `path`, `-` for standard input.
fn read_bytes(path: &Path) -> anyhow::Result<Vec<u8>> {
    if path == Path::new("-") {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes)
            .context("cannot read standard input")?;
        Ok(bytes)
    } else {
        std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
    }
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
    let credential = party_credential();
    let mut invited = Vec::new();
    for invite in invites {
        let token = Zeroizing::new(join_tokens.remove(&invite.party).with_context(|| {
            format!(
                "{} is not a party of session {session_id} (or was invited twice)",
                invite.party
            )
        })?);
        client
            .invite(
                &invite.url,
                &session_id,
                &token,
                credential.as_deref().map(String::as_str),
            )
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

/// The client of the gateway `args` name, with the operator's credential.
pub fn admin_client(args: &GatewayArgs) -> anyhow::Result<AdminClient> {
    let token = secret(
        args.admin_token_file.as_deref(),
        "MPC_ADMIN_TOKEN",
        "--admin-token-file",
    )?;
    Ok(AdminClient::new(&args.coordinator, token)?)
}
