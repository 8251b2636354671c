//! The accounts read model: one row per account with its administrative status and
//! the state of its key, the share-location map (which party holds which of the
//! account's three shares), and the account's recovery sessions (the seed's
//! `account_recovery_sessions`).
//!
//! Reads `account-<id>` streams, and `session-<id>` streams for the outcome of each
//! account's current keygen session (the one named by `AccountOpened` or the latest
//! `AccountKeygenRestarted`): a session event changes an account only when its
//! session is that account's current keygen session.
//!
//! A recovery session is recorded by `RecoveryRequested` (kind `device_lost`, with the
//! new device's identity, or `share_rotation`) and moved on by `RecoveryInProgress`,
//! `RecoveryCompleted` and `RecoveryFailed`, as the account aggregate folds them: a
//! completed `device_lost` recovery makes the new identity the device share's holder
//! identity and the account active again (without a status reason).

use std::fmt;

use async_trait::async_trait;
use mpc_events::{
    AccountEvent, AccountId, AccountParties, AccountStatus, Email, KeyId, PartyId, PartyOutcome,
    Phone, RecoveryKind, RecoveryStatus, SessionEvent, SessionId, ShareRole, Timestamp, Username,
};
use mpc_store::RecordedEvent;

use crate::db::{Conn, ReadModels, Row, Sql, Value, sql};
use crate::error::ProjectionError;
use crate::runner::{Projection, from_sql_int, to_sql_int};
use crate::session_status::decode_session_event;
use crate::stream::{decode_failed, entity_id, inconsistent};

macro_rules! select_accounts {
    ($tail:literal) => {
        concat!(
            "SELECT account_id, username, email, phone, status, keygen_session_id, key_status, ",
            "key_id, public_key_hex, created_at, updated_at, last_used_at, status_reason, ",
            "last_position FROM accounts ",
            $tail
        )
    };
}

/// How far an account's key has come: the outcome of its current keygen session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyStatus {
    /// The keygen session has not ended yet.
    Pending,
    /// The keygen session completed with the key.
    Ready,
    /// The keygen session failed or expired; the account may restart it.
    Failed,
}

impl KeyStatus {
    const ALL: [KeyStatus; 3] = [Self::Pending, Self::Ready, Self::Failed];
}

impl fmt::Display for KeyStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pending => "pending",
            Self::Ready => "ready",
            Self::Failed => "failed",
        })
    }
}

/// One account as the read model shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRow {
    pub account_id: AccountId,
    pub username: Username,
    pub email: Email,
    pub phone: Option<Phone>,
    pub status: AccountStatus,
    /// Why the account was suspended, locked or put in recovery; `None` while active.
    pub status_reason: Option<String>,
    /// The keygen session currently named by the account.
    pub keygen_session_id: SessionId,
    pub key_status: KeyStatus,
    /// Once the keygen session completed: the key's id.
    pub key_id: Option<KeyId>,
    /// Once the keygen session completed: the group public key, compressed SEC1,
    /// lowercase hex.
    pub public_key_hex: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// When a signing session with the account's key last started.
    pub last_used_at: Option<Timestamp>,
    /// Global position of the last event applied to this row.
    pub last_position: u64,
}

/// Which party holds one of an account's shares (never the share itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountShare {
    pub account_id: AccountId,
    pub role: ShareRole,
    pub party_id: PartyId,
    /// The party's identity signing key, lowercase hex.
    pub identity_signing_hex: String,
}

macro_rules! select_recoveries {
    ($tail:literal) => {
        concat!(
            "SELECT session_id, account_id, kind, status, new_device_identity_signing_hex, ",
            "failure, requested_at, updated_at, last_position FROM account_recovery_sessions ",
            $tail
        )
    };
}

/// One recovery session of an account (the seed's `account_recovery_sessions`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoverySessionRow {
    /// The refresh session that carries the recovery out.
    pub session_id: SessionId,
    pub account_id: AccountId,
    /// `device_lost` or `share_rotation` ([`RecoveryKind::name`]).
    pub kind: String,
    pub status: RecoveryStatus,
    /// For `device_lost`: the new device's identity signing key, lowercase hex.
    pub new_device_identity_signing_hex: Option<String>,
    /// Why the recovery failed, once it did.
    pub failure: Option<String>,
    pub requested_at: Timestamp,
    pub updated_at: Timestamp,
    /// Global position of the last event applied to this row.
    pub last_position: u64,
}

/// Keeps the `accounts`, `account_shares` and `account_recovery_sessions` tables from
/// `account-<id>` and `session-<id>` streams, and queries them.
///
/// Its tables exist once [`ReadModels::migrate`] has run (a
/// [`crate::ProjectionRunner`] runs it when created).
#[derive(Debug, Clone)]
pub struct AccountsProjection {
    models: ReadModels,
}

impl AccountsProjection {
    /// The checkpoint name of this projection.
    pub const NAME: &'static str = "accounts";

    /// A projection whose queries read from `models`: the database its runner writes
    /// to.
    pub fn new(models: ReadModels) -> Self {
        Self { models }
    }

    /// The row of one account, if the projection has seen it.
    pub async fn get(&self, account_id: AccountId) -> Result<Option<AccountRow>, ProjectionError> {
        let row = self
            .models
            .fetch_optional(
                sql(select_accounts!("WHERE account_id = $1")).bind(account_id.to_string()),
            )
            .await
            .map_err(ProjectionError::database(format!(
                "reading account {account_id}"
            )))?;
        row.as_ref().map(decode_account_row).transpose()
    }

    /// The account holding `username`, if any.
    pub async fn by_username(
        &self,
        username: &Username,
    ) -> Result<Option<AccountRow>, ProjectionError> {
        let row = self
            .models
            .fetch_optional(sql(select_accounts!("WHERE username = $1")).bind(username.as_str()))
            .await
            .map_err(ProjectionError::database(format!(
                "reading the account of {username}"
            )))?;
        row.as_ref().map(decode_account_row).transpose()
    }

    /// Where the shares of one account are, in keygen order (device, server,
    /// recovery); empty for an unknown account.
    pub async fn shares(
        &self,
        account_id: AccountId,
    ) -> Result<Vec<AccountShare>, ProjectionError> {
        let rows = self
            .models
            .fetch_all(
                sql(
                    "SELECT account_id, role, party_id, identity_signing_hex FROM account_shares \
                     WHERE account_id = $1",
                )
                .bind(account_id.to_string()),
            )
            .await
            .map_err(ProjectionError::database(format!(
                "reading the shares of account {account_id}"
            )))?;
        let mut shares = rows
            .iter()
            .map(decode_share_row)
            .collect::<Result<Vec<_>, _>>()?;
        shares.sort_by_key(|share| share.role);
        Ok(shares)
    }

    /// The recovery sessions of one account, oldest first (by request time, then
    /// session id); empty for an unknown account.
    pub async fn recoveries(
        &self,
        account_id: AccountId,
    ) -> Result<Vec<RecoverySessionRow>, ProjectionError> {
        let rows = self
            .models
            .fetch_all(
                sql(select_recoveries!(
                    "WHERE account_id = $1 ORDER BY requested_at, session_id"
                ))
                .bind(account_id.to_string()),
            )
            .await
            .map_err(ProjectionError::database(format!(
                "reading the recovery sessions of account {account_id}"
            )))?;
        rows.iter().map(decode_recovery_row).collect()
    }

    /// Up to `limit` accounts, newest first (by creation time, then id).
    pub async fn list(&self, limit: u32) -> Result<Vec<AccountRow>, ProjectionError> {
        let rows = self
            .models
            .fetch_all(
                sql(select_accounts!(
                    "ORDER BY created_at DESC, account_id DESC LIMIT $1"
                ))
                .bind(i64::from(limit)),
            )
            .await
            .map_err(ProjectionError::database("listing accounts"))?;
        rows.iter().map(decode_account_row).collect()
    }
}

/// An account with its shares and its recovery sessions.
pub(crate) type AccountWithDetails = (AccountRow, Vec<AccountShare>, Vec<RecoverySessionRow>);

/// Every account with its shares and recovery sessions, ordered by account id (shares
/// in keygen order, recovery sessions oldest first): the whole read model, for
/// comparing it with a rebuilt one.
pub(crate) async fn select_accounts_with_details(
    conn: &mut Conn<'_>,
) -> Result<Vec<AccountWithDetails>, ProjectionError> {
    let accounts = sql(select_accounts!("ORDER BY account_id"))
        .fetch_all(conn)
        .await
        .map_err(ProjectionError::database("reading every account"))?;
    let shares = sql("SELECT account_id, role, party_id, identity_signing_hex FROM account_shares")
        .fetch_all(conn)
        .await
        .map_err(ProjectionError::database("reading every account share"))?;
    let mut shares = shares
        .iter()
        .map(decode_share_row)
        .collect::<Result<Vec<_>, _>>()?;
    shares.sort_by_key(|share| (share.account_id, share.role));
    let mut shares = shares.into_iter().peekable();
    let recoveries = sql(select_recoveries!(
        "ORDER BY account_id, requested_at, session_id"
    ))
    .fetch_all(conn)
    .await
    .map_err(ProjectionError::database("reading every recovery session"))?;
    let mut recoveries = recoveries
        .iter()
        .map(decode_recovery_row)
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .peekable();
    accounts
        .iter()
        .map(|row| {
            let account = decode_account_row(row)?;
            let mut own_shares = Vec::new();
            while let Some(share) = shares.next_if(|s| s.account_id == account.account_id) {
                own_shares.push(share);
            }
            let mut own_recoveries = Vec::new();
            while let Some(recovery) = recoveries.next_if(|r| r.account_id == account.account_id) {
                own_recoveries.push(recovery);
            }
            Ok((account, own_shares, own_recoveries))
        })
        .collect()
}

#[async_trait]
impl Projection for AccountsProjection {
    fn name(&self) -> &str {
        Self::NAME
    }

    async fn apply(
        &self,
        conn: &mut Conn<'_>,
        event: &RecordedEvent,
    ) -> Result<(), ProjectionError> {
        let category = event.stream.category();
        if category == mpc_events::stream::ACCOUNT {
            apply_account_event(conn, event).await
        } else if category == mpc_events::stream::SESSION {
            apply_session_event(conn, event).await
        } else {
            Ok(())
        }
    }

    async fn reset(&self, conn: &mut Conn<'_>) -> Result<(), ProjectionError> {
        sql("DELETE FROM account_recovery_sessions")
            .execute(conn)
            .await
            .map_err(ProjectionError::database(
                "emptying account_recovery_sessions",
            ))?;
        sql("DELETE FROM account_shares")
            .execute(conn)
            .await
            .map_err(ProjectionError::database("emptying account_shares"))?;
        sql("DELETE FROM accounts")
            .execute(conn)
            .await
            .map_err(ProjectionError::database("emptying accounts"))?;
        Ok(())
    }
}

async fn apply_account_event(
    conn: &mut Conn<'_>,
    event: &RecordedEvent,
) -> Result<(), ProjectionError> {
    let account_id: AccountId = entity_id(event, mpc_events::stream::ACCOUNT)?;
    let decoded = mpc_schemas::stored::account::decode_account(
        &event.event_type,
        event.schema_version,
        &event.payload,
    )
    .map_err(|source| decode_failed(event, source))?;
    let position = to_sql_int(event.position, "position")?;
    let context = format!("applying {} to account {account_id}", decoded.type_name());
    let at = decoded.at().as_millis();
    let account = account_id.to_string();
    let applying = Applying {
        event,
        account: &account,
        context: &context,
        at,
        position,
    };

    let update = match &decoded {
        AccountEvent::AccountOpened {
            account_id: opened,
            username,
            email,
            phone,
            parties,
            keygen_session,
            at: _,
        } => {
            if *opened != account_id {
                return Err(inconsistent(
                    event,
                    format!("AccountOpened names account {opened}"),
                ));
            }
            let opened = Opened {
                account: &account,
                username,
                email,
                phone: phone.as_ref(),
                parties,
                keygen_session: *keygen_session,
                at,
                position,
            };
            return match insert_opened(conn, &opened).await {
                Err(e)
                    if e.as_database_error()
                        .is_some_and(|db| db.is_unique_violation()) =>
                {
                    Err(inconsistent(
                        event,
                        "the account was already opened, or its username or email is another \
                         account's"
                            .to_owned(),
                    ))
                }
                other => other.map_err(ProjectionError::database(context)),
            };
        }
        AccountEvent::AccountKeygenRestarted { keygen_session, .. } => sql(
            "UPDATE accounts SET keygen_session_id = $1, key_status = $2, key_id = NULL, \
             public_key_hex = NULL, updated_at = $3, last_position = $4 WHERE account_id = $5",
        )
        .bind(keygen_session.to_string())
        .bind(KeyStatus::Pending.to_string()),
        AccountEvent::AccountSuspended { reason, .. } => {
            status_change(AccountStatus::Suspended, Some(reason))
        }
        AccountEvent::AccountLocked { reason, .. } => {
            status_change(AccountStatus::Locked, Some(reason))
        }
        AccountEvent::AccountRecoveryStarted { reason, .. } => {
            status_change(AccountStatus::Recovering, Some(reason))
        }
        AccountEvent::AccountReactivated { .. } => status_change(AccountStatus::Active, None),
        AccountEvent::RecoveryRequested {
            session_id, kind, ..
        } => {
            request_recovery(conn, &applying, *session_id, kind).await?;
            touch()
        }
        AccountEvent::RecoveryInProgress { session_id, .. } => {
            settle_recovery(
                conn,
                &applying,
                *session_id,
                RecoveryStatus::InProgress,
                None,
            )
            .await?;
            touch()
        }
        AccountEvent::RecoveryCompleted { session_id, .. } => {
            let new_device = settle_recovery(
                conn,
                &applying,
                *session_id,
                RecoveryStatus::Completed,
                None,
            )
            .await?;
            match new_device {
                Some(identity_hex) => {
                    replace_device_identity(conn, &applying, identity_hex).await?;
                    status_change(AccountStatus::Active, None)
                }
                None => touch(),
            }
        }
        AccountEvent::RecoveryFailed {
            session_id, reason, ..
        } => {
            settle_recovery(
                conn,
                &applying,
                *session_id,
                RecoveryStatus::Failed,
                Some(reason),
            )
            .await?;
            touch()
        }
        AccountEvent::AccountUsed { .. } => sql(
            "UPDATE accounts SET last_used_at = $1, updated_at = $2, last_position = $3 \
             WHERE account_id = $4",
        )
        .bind(at),
    };
    let updated = update
        .bind(at)
        .bind(position)
        .bind(account)
        .execute(conn)
        .await
        .map_err(ProjectionError::database(context))?;
    if updated == 0 {
        return Err(inconsistent(
            event,
            format!(
                "{} for an account that was never opened",
                decoded.type_name()
            ),
        ));
    }
    Ok(())
}

/// The update setting an account's status and reason; binds all but `updated_at`,
/// `last_position` and the account id.
fn status_change(status: AccountStatus, reason: Option<&String>) -> Sql {
    sql(
        "UPDATE accounts SET status = $1, status_reason = $2, updated_at = $3, \
         last_position = $4 WHERE account_id = $5",
    )
    .bind(status.to_string())
    .bind(reason.map(String::as_str))
}

/// The update recording only that an event changed the account; binds nothing (its
/// `updated_at`, `last_position` and account id are bound by the caller).
fn touch() -> Sql {
    sql("UPDATE accounts SET updated_at = $1, last_position = $2 WHERE account_id = $3")
}

/// The account event being applied, as its recovery-session writes need it.
struct Applying<'a> {
    event: &'a RecordedEvent,
    account: &'a str,
    /// What is being done, for database errors.
    context: &'a str,
    at: i64,
    position: i64,
}

/// Inserts the row of a requested recovery session; a session already recorded, or
/// an account never opened, is inconsistent.
async fn request_recovery(
    conn: &mut Conn<'_>,
    applying: &Applying<'_>,
    session_id: SessionId,
    kind: &RecoveryKind,
) -> Result<(), ProjectionError> {
    let new_device = match kind {
        RecoveryKind::DeviceLost { identity } => Some(hex::encode(identity.signing())),
        RecoveryKind::ShareRotation => None,
    };
    // Inserts nothing unless the account exists.
    let inserted = sql(
        "INSERT INTO account_recovery_sessions (session_id, account_id, kind, status,          new_device_identity_signing_hex, requested_at, updated_at, last_position)          SELECT $1, account_id, $2, $3, $4, $5, $6, $7 FROM accounts WHERE account_id = $8",
    )
    .bind(session_id.to_string())
    .bind(kind.name())
    .bind(RecoveryStatus::Requested.to_string())
    .bind(new_device)
    .bind(applying.at)
    .bind(applying.at)
    .bind(applying.position)
    .bind(applying.account)
    .execute(conn)
    .await
    .map_err(|e| {
        if e.as_database_error()
            .is_some_and(|db| db.is_unique_violation())
        {
            inconsistent(
                applying.event,
                format!("recovery session {session_id} was already requested"),
            )
        } else {
            ProjectionError::database(applying.context)(e)
        }
    })?;
    if inserted == 0 {
        return Err(inconsistent(
            applying.event,
            "RecoveryRequested for an account that was never opened".to_owned(),
        ));
    }
    Ok(())
}

/// Moves recovery session `session_id` of the account to `status` (recording
/// `failure`); a session the account never requested is inconsistent. Returns the
/// new device identity (signing key hex) when it is a `device_lost` recovery.
async fn settle_recovery(
    conn: &mut Conn<'_>,
    applying: &Applying<'_>,
    session_id: SessionId,
    status: RecoveryStatus,
    failure: Option<&String>,
) -> Result<Option<String>, ProjectionError> {
    let rows = sql(
        "UPDATE account_recovery_sessions SET status = $1, failure = $2, updated_at = $3,          last_position = $4 WHERE session_id = $5 AND account_id = $6          RETURNING new_device_identity_signing_hex",
    )
    .bind(status.to_string())
    .bind(failure.map(String::as_str))
    .bind(applying.at)
    .bind(applying.position)
    .bind(session_id.to_string())
    .bind(applying.account)
    .fetch_all(conn)
    .await
    .map_err(ProjectionError::database(applying.context))?;
    let row = rows.first().ok_or_else(|| {
        inconsistent(
            applying.event,
            format!("recovery session {session_id} was never requested for this account"),
        )
    })?;
    column_of(
        row,
        "account_recovery_sessions",
        "new_device_identity_signing_hex",
    )
}

/// Makes `identity_hex` the identity of the account's device share holder.
async fn replace_device_identity(
    conn: &mut Conn<'_>,
    applying: &Applying<'_>,
    identity_hex: String,
) -> Result<(), ProjectionError> {
    let updated = sql(
        "UPDATE account_shares SET identity_signing_hex = $1          WHERE account_id = $2 AND role = $3",
    )
    .bind(identity_hex)
    .bind(applying.account)
    .bind(ShareRole::Device.to_string())
    .execute(conn)
    .await
    .map_err(ProjectionError::database(applying.context))?;
    if updated == 0 {
        return Err(inconsistent(
            applying.event,
            "RecoveryCompleted for an account without a device share".to_owned(),
        ));
    }
    Ok(())
}

/// An `AccountOpened` event, as its rows are written.
struct Opened<'a> {
    account: &'a str,
    username: &'a Username,
    email: &'a Email,
    phone: Option<&'a Phone>,
    parties: &'a AccountParties,
    keygen_session: SessionId,
    at: i64,
    position: i64,
}

async fn insert_opened(conn: &mut Conn<'_>, opened: &Opened<'_>) -> Result<(), sqlx::Error> {
    sql(
        "INSERT INTO accounts (account_id, username, email, phone, status, keygen_session_id, \
         key_status, created_at, updated_at, last_position) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(opened.account)
    .bind(opened.username.as_str())
    .bind(opened.email.as_str())
    .bind(opened.phone.map(Phone::as_str))
    .bind(AccountStatus::Active.to_string())
    .bind(opened.keygen_session.to_string())
    .bind(KeyStatus::Pending.to_string())
    .bind(opened.at)
    .bind(opened.at)
    .bind(opened.position)
    .execute(conn)
    .await?;
    for role in ShareRole::ALL {
        let party = opened.parties.get(role);
        sql(
            "INSERT INTO account_shares (account_id, role, party_id, identity_signing_hex) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(opened.account)
        .bind(role.to_string())
        .bind(party.party_id.as_str())
        .bind(hex::encode(party.identity.signing()))
        .execute(conn)
        .await?;
    }
    Ok(())
}

/// Applies the end of a keygen session to the account whose current keygen session it
/// is; events of other sessions change nothing.
async fn apply_session_event(
    conn: &mut Conn<'_>,
    event: &RecordedEvent,
) -> Result<(), ProjectionError> {
    let (session_id, decoded) = decode_session_event(event)?;
    let position = to_sql_int(event.position, "position")?;
    let (key_status, public_key_hex) = match &decoded {
        SessionEvent::SessionCompleted {
            outcome: PartyOutcome::PublicKey(key),
            ..
        } => (KeyStatus::Ready, Some(hex::encode(key.as_bytes()))),
        SessionEvent::SessionFailed { .. } | SessionEvent::SessionExpired { .. } => {
            (KeyStatus::Failed, None)
        }
        // The rest of a session, and the end of a signing session, leave keys as they
        // are.
        _ => return Ok(()),
    };
    let key_id = public_key_hex
        .as_ref()
        .map(|_| KeyId::of_keygen(session_id).to_string());
    sql(
        "UPDATE accounts SET key_status = $1, key_id = $2, public_key_hex = $3, \
         updated_at = $4, last_position = $5 WHERE keygen_session_id = $6",
    )
    .bind(key_status.to_string())
    .bind(key_id)
    .bind(public_key_hex)
    .bind(decoded.at().as_millis())
    .bind(position)
    .bind(session_id.to_string())
    .execute(conn)
    .await
    .map_err(ProjectionError::database(format!(
        "applying the end of keygen session {session_id}"
    )))?;
    Ok(())
}

fn decode_account_row(row: &Row) -> Result<AccountRow, ProjectionError> {
    let text =
        |column: &str| -> Result<String, ProjectionError> { column_of(row, "accounts", column) };
    let invalid = |column: &str, value: &str| {
        ProjectionError::InvalidRow(format!("accounts.{column} = {value}"))
    };
    let account_id = text("account_id")?;
    let username = text("username")?;
    let email = text("email")?;
    let phone: Option<String> = column_of(row, "accounts", "phone")?;
    let status = text("status")?;
    let keygen_session_id = text("keygen_session_id")?;
    let key_status = text("key_status")?;
    let key_id: Option<String> = column_of(row, "accounts", "key_id")?;
    let last_used_at: Option<i64> = column_of(row, "accounts", "last_used_at")?;
    Ok(AccountRow {
        account_id: account_id
            .parse()
            .map_err(|_| invalid("account_id", &account_id))?,
        username: Username::parse(&username).map_err(|_| invalid("username", &username))?,
        email: Email::parse(&email).map_err(|_| invalid("email", &email))?,
        phone: phone
            .map(|p| Phone::parse(&p).map_err(|_| invalid("phone", &p)))
            .transpose()?,
        status: parse_account_status(&status).ok_or_else(|| invalid("status", &status))?,
        status_reason: column_of(row, "accounts", "status_reason")?,
        keygen_session_id: keygen_session_id
            .parse()
            .map_err(|_| invalid("keygen_session_id", &keygen_session_id))?,
        key_status: KeyStatus::ALL
            .into_iter()
            .find(|s| s.to_string() == key_status)
            .ok_or_else(|| invalid("key_status", &key_status))?,
        key_id: key_id
            .map(|k| k.parse().map_err(|_| invalid("key_id", &k)))
            .transpose()?,
        public_key_hex: column_of(row, "accounts", "public_key_hex")?,
        created_at: Timestamp::from_millis(column_of(row, "accounts", "created_at")?),
        updated_at: Timestamp::from_millis(column_of(row, "accounts", "updated_at")?),
        last_used_at: last_used_at.map(Timestamp::from_millis),
        last_position: from_sql_int(
            column_of(row, "accounts", "last_position")?,
            "last_position",
        )?,
    })
}

fn decode_share_row(row: &Row) -> Result<AccountShare, ProjectionError> {
    let text = |column: &str| -> Result<String, ProjectionError> {
        column_of(row, "account_shares", column)
    };
    let invalid = |column: &str, value: &str| {
        ProjectionError::InvalidRow(format!("account_shares.{column} = {value}"))
    };
    let account_id = text("account_id")?;
    let role = text("role")?;
    let party_id = text("party_id")?;
    Ok(AccountShare {
        account_id: account_id
            .parse()
            .map_err(|_| invalid("account_id", &account_id))?,
        role: ShareRole::ALL
            .into_iter()
            .find(|r| r.to_string() == role)
            .ok_or_else(|| invalid("role", &role))?,
        party_id: PartyId::parse(&party_id).map_err(|_| invalid("party_id", &party_id))?,
        identity_signing_hex: text("identity_signing_hex")?,
    })
}

fn decode_recovery_row(row: &Row) -> Result<RecoverySessionRow, ProjectionError> {
    const TABLE: &str = "account_recovery_sessions";
    let text = |column: &str| -> Result<String, ProjectionError> { column_of(row, TABLE, column) };
    let invalid = |column: &str, value: &str| {
        ProjectionError::InvalidRow(format!("{TABLE}.{column} = {value}"))
    };
    let session_id = text("session_id")?;
    let account_id = text("account_id")?;
    let status = text("status")?;
    Ok(RecoverySessionRow {
        session_id: session_id
            .parse()
            .map_err(|_| invalid("session_id", &session_id))?,
        account_id: account_id
            .parse()
            .map_err(|_| invalid("account_id", &account_id))?,
        kind: text("kind")?,
        status: parse_recovery_status(&status).ok_or_else(|| invalid("status", &status))?,
        new_device_identity_signing_hex: column_of(row, TABLE, "new_device_identity_signing_hex")?,
        failure: column_of(row, TABLE, "failure")?,
        requested_at: Timestamp::from_millis(column_of(row, TABLE, "requested_at")?),
        updated_at: Timestamp::from_millis(column_of(row, TABLE, "updated_at")?),
        last_position: from_sql_int(column_of(row, TABLE, "last_position")?, "last_position")?,
    })
}

fn column_of<T: Value>(row: &Row, table: &str, column: &str) -> Result<T, ProjectionError> {
    row.get(column).map_err(ProjectionError::database(format!(
        "decoding {table}.{column}"
    )))
}

/// The inverse of [`AccountStatus`]'s `Display`.
fn parse_account_status(text: &str) -> Option<AccountStatus> {
    [
        AccountStatus::Active,
        AccountStatus::Suspended,
        AccountStatus::Locked,
        AccountStatus::Recovering,
    ]
    .into_iter()
    .find(|status| status.to_string() == text)
}

/// The inverse of [`RecoveryStatus`]'s `Display`.
fn parse_recovery_status(text: &str) -> Option<RecoveryStatus> {
    [
        RecoveryStatus::Requested,
        RecoveryStatus::InProgress,
        RecoveryStatus::Completed,
        RecoveryStatus::Failed,
    ]
    .into_iter()
    .find(|status| status.to_string() == text)
}
