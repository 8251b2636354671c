//! Stream categories: every stored stream is named `<category>-<id>`, and these are
//! the categories. Build and match stream names with these constants, never with
//! literals.

/// `session-<session id>`: a keygen, signing or refresh session.
pub const SESSION: &str = "session";
/// `account-<account id>`: a user's account and its recoveries.
pub const ACCOUNT: &str = "account";
/// `key-<keygen session id>`: the order of a key's refreshes.
pub const KEY: &str = "key";
/// `approval-<workflow id>`: an approval workflow.
pub const APPROVAL: &str = "approval";
/// `username-<name>`: the claim on a username.
pub const USERNAME: &str = "username";
/// `email-<hex SHA-256 of the lowercase address>`: the claim on an email address.
pub const EMAIL: &str = "email";
/// `party-<party id>`: a party's own log.
pub const PARTY: &str = "party";
/// `operators-registry`: the operators' credentials (digests, names, roles).
pub const OPERATORS: &str = "operators";
