//! `mpc operator add|list|revoke`: the operators' API keys, over the gateway's
//! `/v1/operators` routes (adding and revoking need the `admin` role: the
//! bootstrap admin token or an admin key; listing also the `auditor` role).
//!
//! `add` prints the new key once, on standard output and nothing else there, so it
//! can go straight into a file or a secret store; the coordinator keeps only its
//! digest.

use clap::{Args, Subcommand};
use mpc_api::{CreateOperatorRequest, CreatedOperatorDto, OperatorDto, OperatorsDto};
use mpc_events::{CredentialId, Role};

use crate::operator::{GatewayArgs, admin_client};

#[derive(Subcommand, Debug)]
pub enum OperatorCommand {
    /// Add an API key with a role; prints the key, shown only this once.
    Add(AddArgs),
    /// List every API key's id, name, role and revocation (never a key).
    List(ListArgs),
    /// Revoke an API key for good.
    Revoke(RevokeArgs),
}

#[derive(Args, Debug)]
pub struct AddArgs {
    #[command(flatten)]
    pub gateway: GatewayArgs,
    /// A display name, unique among active keys (1 to 64 characters).
    #[arg(long)]
    pub name: String,
    /// admin, key-manager, requester or auditor.
    #[arg(long)]
    pub role: Role,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    #[command(flatten)]
    pub gateway: GatewayArgs,
}

#[derive(Args, Debug)]
pub struct RevokeArgs {
    #[command(flatten)]
    pub gateway: GatewayArgs,
    /// The credential id (`mpc operator list`).
    pub credential: CredentialId,
}

fn line(o: &OperatorDto) -> String {
    let role = Role::from(o.role).as_str();
    let state = o
        .revoked_at
        .map_or_else(|| "active".to_owned(), |at| format!("revoked at {at}"));
    format!("{}  {role:<11}  {}  ({state})", o.credential_id, o.name)
}

/// Runs `mpc operator …`.
pub async fn run(command: OperatorCommand) -> anyhow::Result<()> {
    match command {
        OperatorCommand::Add(args) => {
            let client = admin_client(&args.gateway)?;
            let request = CreateOperatorRequest {
                name: args.name,
                role: args.role.into(),
            };
            let created: CreatedOperatorDto = client.post("/v1/operators", &request).await?;
            eprintln!(
                "added {}; the key below is shown only now:",
                line(&created.operator)
            );
            println!("{}", created.api_key);
        }
        OperatorCommand::List(args) => {
            let client = admin_client(&args.gateway)?;
            let listed: OperatorsDto = client.get("/v1/operators").await?;
            for operator in &listed.operators {
                println!("{}", line(operator));
            }
        }
        OperatorCommand::Revoke(args) => {
            let client = admin_client(&args.gateway)?;
            let revoked: OperatorDto = client
                .delete(&format!("/v1/operators/{}", args.credential))
                .await?;
            println!("{}", line(&revoked));
        }
    }
    Ok(())
}
