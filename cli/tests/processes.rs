//! The multi-process setup against real infrastructure: `mpc serve` and three
//! `mpc party run` processes, PostgreSQL (a fresh database per test) and the Kafka
//! broker (a fresh topic per test), driven over HTTP like an operator would.
//!
//! Needs `MPC_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432`) and
//! `MPC_TEST_KAFKA_BROKERS` (default `127.0.0.1:19092`); `scripts/test.sh` starts
//! both. Without them the tests fail, they never skip.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mpc_crypto::verify_signature;
use mpc_events::{MessageHash, PublicKey, Signature, stream};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::Connection;

const PASSPHRASE: &str = "integration-test passphrase";

fn postgres_base() -> String {
    std::env::var("MPC_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

fn kafka_brokers() -> String {
    std::env::var("MPC_TEST_KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:19092".into())
}

/// A database created for one test and dropped after it.
struct Database {
    name: String,
}

impl Database {
    async fn create() -> Self {
        let name = format!("mpc_it_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(&format!("{}/postgres", postgres_base()))
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "no PostgreSQL at {}: {e}; run `bash scripts/ensure-postgres.sh`",
                    postgres_base()
                )
            });
        // The name is ours (a uuid), not input.
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap();
        Self { name }
    }

    fn url(&self) -> String {
        format!("{}/{}", postgres_base(), self.name)
    }

    async fn drop_now(self) {
        if let Ok(mut conn) =
            sqlx::PgConnection::connect(&format!("{}/postgres", postgres_base())).await
        {
            let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            )))
            .execute(&mut conn)
            .await;
        }
    }
}

/// A running `mpc` process, killed (SIGKILL) when dropped.
struct Process {
    child: Child,
    url: String,
}

impl Process {
    /// Starts `mpc args…` and waits for its `listening on <url>` line. Its log
    /// (stderr) goes to `log`, appended, or to the test's stderr.
    fn start(args: &[&str], envs: &[(&str, &str)], log: Option<&Path>) -> Self {
        let stderr = match log {
            Some(path) => Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .unwrap(),
            ),
            None => Stdio::inherit(),
        };
        let mut child = Command::new(env!("CARGO_BIN_EXE_mpc"))
            .args(args)
            .env("MPC_LOG", "warn")
            .envs(envs.iter().copied())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        // From here on, dropping `process` (also by a panic) kills and reaps it.
        let mut process = Self {
            child,
            url: String::new(),
        };
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            // Keeps draining stdout so the child never blocks on a full pipe.
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = rx.recv_timeout(left) else {
                panic!("`mpc {}` did not start listening", args.join(" "));
            };
            if let Some(url) = line.strip_prefix("listening on ") {
                process.url = url.to_owned();
                return process;
            }
        }
    }

    /// SIGKILL: no shutdown code runs, as with a crashed process or host.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    reqwest::Client::new()
}

/// The credential that party `id`'s human decides with over its node's HTTP
/// decision routes.
fn approver_token(id: &str) -> String {
    format!("approver-credential-of-{id}")
}

/// `mpc party init` of party `id` in `dir`; its public identity.
fn init_party(id: &str, dir: &Path) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_mpc"))
        .args(["party", "init", "--id", id, "--data-dir"])
        .arg(dir)
        .env("MPC_VAULT_PASSPHRASE", PASSPHRASE)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

struct Cluster {
    dir: tempfile::TempDir,
    coordinator: Process,
    /// `mpc serve`'s arguments, to start it again on the same port and database.
    serve_args: Vec<String>,
    admin_token: String,
    parties: Vec<(String, Process)>,
    identities: Vec<Value>,
    topic: String,
    http: reqwest::Client,
}

impl Cluster {
    async fn start(db: &Database) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let topic = format!("mpc-it-{}", uuid::Uuid::new_v4().simple());
        let coord_dir = dir.path().join("coordinator");
        // A fixed port, so that a restarted coordinator is where the parties look.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let serve_args: Vec<String> = [
            "serve",
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
            coord_dir.to_str().unwrap(),
            "--store-url",
            &db.url(),
            "--kafka-brokers",
            &kafka_brokers(),
            "--kafka-topic",
            &topic,
        ]
        .map(str::to_owned)
        .to_vec();
        let coordinator = Self::start_coordinator(&serve_args);
        let admin_token = std::fs::read_to_string(coord_dir.join("admin.token"))
            .unwrap()
            .trim()
            .to_owned();
        let mut cluster = Self {
            dir,
            coordinator,
            serve_args,
            admin_token,
            parties: Vec::new(),
            identities: Vec::new(),
            topic,
            http: http_client(),
        };
        for id in ["device", "server", "recovery"] {
            cluster.identities.push(cluster.init_party(id));
        }
        for id in ["device", "server", "recovery"] {
            let process = cluster.start_party(id);
            cluster.parties.push((id.to_owned(), process));
        }
        cluster
    }

    fn start_coordinator(args: &[String]) -> Process {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Process::start(&args, &[], None)
    }

    /// SIGKILLs `mpc serve`, waits `down`, starts it again on the same port,
    /// database and data directory.
    async fn crash_coordinator(&mut self, down: Duration) {
        self.coordinator.kill();
        tokio::time::sleep(down).await;
        let args = self.serve_args.clone();
        self.coordinator = tokio::task::spawn_blocking(move || Self::start_coordinator(&args))
            .await
            .unwrap();
    }

    fn party_dir(&self, id: &str) -> PathBuf {
        self.dir.path().join(id)
    }

    fn party_log(&self, id: &str) -> PathBuf {
        self.dir.path().join(format!("{id}.log"))
    }

    /// Every party's log so far.
    fn party_logs(&self) -> String {
        ["device", "server", "recovery"]
            .iter()
            .map(|id| {
                let log = std::fs::read_to_string(self.party_log(id)).unwrap_or_default();
                format!("--- {id} ---\n{log}")
            })
            .collect()
    }

    fn init_party(&self, id: &str) -> Value {
        init_party(id, &self.party_dir(id))
    }

    /// `mpc party run` of `id`, given the other parties' identities as an app or
    /// operator would hand them over out of band (`--peers`).
    fn start_party(&self, id: &str) -> Process {
        let dir = self.party_dir(id);
        let brokers = kafka_brokers();
        let peers = self.dir.path().join(format!("{id}.peers.json"));
        let others: Vec<&Value> = self
            .identities
            .iter()
            .filter(|p| p["party_id"] != id)
            .collect();
        std::fs::write(&peers, serde_json::to_vec(&others).unwrap()).unwrap();
        let args = [
            "party",
            "run",
            "--peers",
            peers.to_str().unwrap(),
            "--id",
            id,
            "--data-dir",
            dir.to_str().unwrap(),
            "--coordinator",
            &self.coordinator.url,
            "--kafka-brokers",
            &brokers,
            "--kafka-topic",
            &self.topic,
            "--bind",
            "127.0.0.1:0",
        ];
        Process::start(
            &args,
            &[
                ("MPC_VAULT_PASSPHRASE", PASSPHRASE),
                ("MPC_PARTY_APPROVER_TOKEN", &approver_token(id)),
            ],
            Some(&self.party_log(id)),
        )
    }

    fn party(&mut self, id: &str) -> &mut Process {
        &mut self.parties.iter_mut().find(|(p, _)| p == id).unwrap().1
    }

    async fn create(&self, body: Value) -> Value {
        self.post("/v1/sessions", body, 201).await
    }

    async fn invite(&self, created: &Value, parties: &[&str]) {
        for id in parties {
            let url = &self.parties.iter().find(|(p, _)| p == id).unwrap().1.url;
            let response = self
                .http
                .post(format!("{url}/v1/invitations"))
                .json(&json!({
                    "session_id": created["session_id"],
                    "token": created["join_tokens"][id],
                }))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 202);
        }
    }

    async fn status(&self, session: &str) -> Value {
        self.get(&format!("/v1/sessions/{session}")).await
    }

    /// The gateway's JSON answer to `GET path` with the admin token.
    async fn get(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.coordinator.url))
            .bearer_auth(&self.admin_token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Polls until `done(status)` or a terminal status, within `limit`.
    async fn wait(&self, session: &str, limit: Duration, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let status = self.status(session).await;
            let terminal = ["completed", "failed", "expired"]
                .contains(&status["status"].as_str().unwrap_or_default());
            if done(&status) || terminal || Instant::now() > deadline {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn keygen(&self, ttl_seconds: u64) -> Value {
        self.create(json!({
            "kind": "keygen",
            "threshold": {"t": 2, "n": 3},
            "participants": self.identities,
            "ttl_seconds": ttl_seconds,
        }))
        .await
    }

    async fn sign(&self, key_id: &str, signers: &[&str], message: &[u8]) -> Value {
        let created = self
            .create(json!({
                "kind": "signing",
                "key_id": key_id,
                "signers": signers,
                "message_hex": hex::encode(message),
                "ttl_seconds": 60,
            }))
            .await;
        self.invite(&created, signers).await;
        let session = created["session_id"].as_str().unwrap();
        self.wait(session, Duration::from_secs(60), |_| false).await
    }

    /// Signs with `signers` and checks the signature against `public_key`.
    async fn signs(&self, key_id: &str, public_key: &PublicKey, signers: &[&str]) {
        let message = format!("pay 5 to {}", signers.join("+"));
        let status = self.sign(key_id, signers, message.as_bytes()).await;
        assert_eq!(status["status"], "completed", "{status}");
        let sig = &status["signature"];
        let signature = Signature::new(
            &hex::decode(sig["r_hex"].as_str().unwrap()).unwrap(),
            &hex::decode(sig["s_hex"].as_str().unwrap()).unwrap(),
            u8::try_from(sig["recovery_id"].as_u64().unwrap()).unwrap(),
        )
        .unwrap();
        let hash = MessageHash::from_bytes(Sha256::digest(message.as_bytes()).into());
        assert!(verify_signature(public_key, &hash, &signature));
    }

    /// `POST path` with the admin token; the JSON answer, which must be `expected`.
    async fn post(&self, path: &str, body: Value, expected: u16) -> Value {
        let response = self
            .http
            .post(format!("{}{path}", self.coordinator.url))
            .bearer_auth(&self.admin_token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        assert_eq!(status, expected, "POST {path}: {answer}");
        answer
    }

    /// `mpc args…` as a one-shot command with the operator's and the parties'
    /// environment; its output.
    fn mpc(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_mpc"))
            .args(args)
            .env("MPC_VAULT_PASSPHRASE", PASSPHRASE)
            .env("MPC_COORDINATOR_URL", &self.coordinator.url)
            .env("MPC_ADMIN_TOKEN", &self.admin_token)
            .env("MPC_LOG", "warn")
            .output()
            .unwrap()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("party logs:\n{}", self.party_logs());
        }
    }
}

fn public_key_of(status: &Value) -> PublicKey {
    PublicKey::from_slice(&hex::decode(status["public_key_hex"].as_str().unwrap()).unwrap())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn separate_processes_run_keygen_and_two_signings_over_postgres_and_kafka() {
    let db = Database::create().await;
    let cluster = Cluster::start(&db).await;

    let created = cluster.keygen(120).await;
    cluster
        .invite(&created, &["device", "server", "recovery"])
        .await;
    let session = created["session_id"].as_str().unwrap();
    let status = cluster
        .wait(session, Duration::from_secs(90), |_| false)
        .await;
    assert_eq!(status["status"], "completed", "{status}");
    let public_key = public_key_of(&status);

    for signers in [["device", "server"], ["server", "recovery"]] {
        cluster.signs(session, &public_key, &signers).await;
    }

    // The event log in PostgreSQL holds all three sessions.
    let mut conn = sqlx::PgConnection::connect(&db.url()).await.unwrap();
    let streams: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT stream) FROM events WHERE stream LIKE 'session-%'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(streams, 3);
    drop(conn);
    drop(cluster);
    db.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_party_ends_its_session_cleanly_and_a_new_session_succeeds() {
    let db = Database::create().await;
    let mut cluster = Cluster::start(&db).await;

    let created = cluster.keygen(8).await;
    cluster
        .invite(&created, &["device", "server", "recovery"])
        .await;
    let session = created["session_id"].as_str().unwrap().to_owned();
    // Kill the recovery party once it has joined, in the middle of keygen.
    let joined = cluster
        .wait(&session, Duration::from_secs(30), |s| {
            s["joined"]
                .as_array()
                .is_some_and(|j| j.iter().any(|p| p == "recovery"))
        })
        .await;
    assert!(
        joined["joined"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "recovery"),
        "{joined}"
    );
    cluster.party("recovery").kill();
    let ended = cluster
        .wait(&session, Duration::from_secs(60), |_| false)
        .await;
    let status = ended["status"].as_str().unwrap();
    assert!(
        status == "expired" || status == "failed",
        "session ended {status}: {ended}"
    );

    // The same party, restarted from its vault, completes a new session.
    let restarted = cluster.start_party("recovery");
    *cluster.party("recovery") = restarted;
    let created = cluster.keygen(120).await;
    cluster
        .invite(&created, &["device", "server", "recovery"])
        .await;
    let status = cluster
        .wait(
            created["session_id"].as_str().unwrap(),
            Duration::from_secs(90),
            |_| false,
        )
        .await;
    assert_eq!(status["status"], "completed", "{status}");
    drop(cluster);
    db.drop_now().await;
}

/// Issue 7, item 2, with a real process: `mpc serve` is SIGKILLed while a keygen is
/// running (every party joined, none reported) and stays down for longer than the
/// protocol takes, so every party finishes while no coordinator answers. Their
/// reports (and status long-polls) fail on a refused connection and are retried;
/// the restarted `mpc serve` (same port, database and data directory) resumes the
/// open session, takes the reports, and the keygen completes; the key then signs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkilled_coordinator_restarts_and_the_running_keygen_completes() {
    let db = Database::create().await;
    let mut cluster = Cluster::start(&db).await;

    let created = cluster.keygen(120).await;
    cluster
        .invite(&created, &["device", "server", "recovery"])
        .await;
    let session = created["session_id"].as_str().unwrap().to_owned();
    let started = cluster
        .wait(&session, Duration::from_secs(30), |s| {
            s["status"] == "in_progress"
        })
        .await;
    assert_eq!(started["status"], "in_progress", "{started}");
    assert_eq!(started["reported"], json!([]), "{started}");

    cluster.crash_coordinator(Duration::from_secs(8)).await;

    let ended = cluster
        .wait(&session, Duration::from_secs(90), |_| false)
        .await;
    assert_eq!(ended["status"], "completed", "{ended}");
    assert_eq!(
        ended["reported"].as_array().map(Vec::len),
        Some(3),
        "{ended}"
    );
    // The outage was seen: the parties retried the calls it cut.
    let logs = cluster.party_logs();
    assert!(
        logs.contains("coordinator unreachable; retrying"),
        "no party retried a call:\n{logs}"
    );

    let public_key = public_key_of(&ended);
    cluster
        .signs(&session, &public_key, &["device", "recovery"])
        .await;

    // Each party's report is in the log once, whatever the retries.
    let mut conn = sqlx::PgConnection::connect(&db.url()).await.unwrap();
    let reports: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE stream = $1 AND event_type = 'PartyCompleted'",
    )
    .bind(format!("{}-{session}", stream::SESSION))
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(reports, 3);
    drop(conn);
    drop(cluster);
    db.drop_now().await;
}

/// A party's invitation endpoint: with a credential configured, an invitation
/// without it, or with another, is refused before its body is read; without one,
/// `mpc party run` refuses to listen on a non-loopback address. The review and
/// recovery desks are behind the same credential.
#[tokio::test]
async fn invitations_need_the_party_credential_and_open_listeners_need_one() {
    const CREDENTIAL: &str = "a-long-random-invitation-credential";
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("server");
    init_party("server", &data_dir);
    let run = |bind: &'static str| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_mpc"));
        command.args(["party", "run", "--id", "server", "--data-dir"]);
        command.arg(&data_dir);
        command.args(["--coordinator", "http://127.0.0.1:9", "--bind", bind]);
        command.env("MPC_VAULT_PASSPHRASE", PASSPHRASE);
        command.env_remove("MPC_PARTY_INVITATION_TOKEN");
        command
    };

    let mut open = run("0.0.0.0:0").stderr(Stdio::piped()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = open.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = open.kill();
            panic!("`mpc party run --bind 0.0.0.0:0` without a credential kept running");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut open.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success());
    assert!(stderr.contains("without a credential"), "{stderr}");

    // The operator's invitation credential cannot double as the approver's.
    let shared = run("127.0.0.1:0")
        .env("MPC_PARTY_INVITATION_TOKEN", CREDENTIAL)
        .env("MPC_PARTY_APPROVER_TOKEN", CREDENTIAL)
        .output()
        .unwrap();
    assert!(!shared.status.success());
    let stderr = String::from_utf8_lossy(&shared.stderr);
    assert!(stderr.contains("must differ"), "{stderr}");

    let node = Process::start(
        &[
            "party",
            "run",
            "--id",
            "server",
            "--data-dir",
            data_dir.to_str().unwrap(),
            "--coordinator",
            "http://127.0.0.1:9",
            "--bind",
            "127.0.0.1:0",
        ],
        &[
            ("MPC_VAULT_PASSPHRASE", PASSPHRASE),
            ("MPC_PARTY_INVITATION_TOKEN", CREDENTIAL),
        ],
        None,
    );
    let http = http_client();
    // Its vault opens, but the coordinator (and the gateway as transport) is down.
    let response = http
        .get(format!("{}/ready", node.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["failing"],
        json!(["transport", "coordinator"]),
        "{body}"
    );
    let invitation = json!({"session_id": uuid::Uuid::now_v7().to_string(), "token": "t"});
    let post = |credential: Option<&str>, body: Vec<u8>| {
        let request = http
            .post(format!("{}/v1/invitations", node.url))
            .header("content-type", "application/json")
            .body(body);
        let request = match credential {
            Some(c) => request.bearer_auth(c),
            None => request,
        };
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            (status, body["code"].clone())
        }
    };
    let valid = serde_json::to_vec(&invitation).unwrap();
    assert_eq!(
        post(None, valid.clone()).await,
        (401, json!("unauthorized"))
    );
    assert_eq!(
        post(Some("another-credential-of-some-length"), b"{".to_vec()).await,
        (401, json!("unauthorized"))
    );
    assert_eq!(
        post(Some(CREDENTIAL), b"{".to_vec()).await,
        (400, json!("invalid_body"))
    );
    assert_eq!(post(Some(CREDENTIAL), valid).await, (202, Value::Null));

    // The review desk is behind the same credential, reads included.
    let review = json!({
        "workflow_id": uuid::Uuid::now_v7().to_string(),
        "key_id": uuid::Uuid::now_v7().to_string(),
        "payload_hex": hex::encode(b"pay 10"),
    });
    let reviews = format!("{}/v1/reviews", node.url);
    for request in [
        http.post(&reviews).json(&review),
        http.get(&reviews),
        http.get(format!(
            "{reviews}/{}",
            review["workflow_id"].as_str().unwrap()
        )),
    ] {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401);
    }
    // Deciding over HTTP needs an approver credential this node was not given: the
    // invitation credential, which the operator holds, decides nothing.
    for credential in [None, Some(CREDENTIAL)] {
        let request = http
            .post(format!(
                "{reviews}/{}/decision",
                review["workflow_id"].as_str().unwrap()
            ))
            .json(&json!({"decision": "approve", "payload_sha256": "00"}));
        let request = match credential {
            Some(c) => request.bearer_auth(c),
            None => request,
        };
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 403);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], "decisions_disabled");
    }
    // What a desk lists, read with the credential.
    let listed = |url: String| {
        let request = http.get(url).bearer_auth(CREDENTIAL);
        async move {
            let listed: Value = request.send().await.unwrap().json().await.unwrap();
            listed
        }
    };
    assert_eq!(
        listed(reviews.clone()).await,
        json!([]),
        "nothing was stored without the credential"
    );

    // So is the recovery desk.
    let identity = init_party("device", &dir.path().join("device"))["identity"].clone();
    let recovery = json!({
        "key_id": uuid::Uuid::now_v7().to_string(), "target": "device",
        "device_identity": identity,
    });
    let recoveries = format!("{}/v1/recoveries", node.url);
    let some_id = "ab".repeat(32);
    for request in [
        http.post(&recoveries).json(&recovery),
        http.get(&recoveries),
        http.get(format!("{recoveries}/{some_id}")),
    ] {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401);
    }
    let response = http
        .post(format!("{recoveries}/{some_id}/decision"))
        .bearer_auth(CREDENTIAL)
        .json(&json!({"decision": "approve"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        403,
        "the operator's credential decides nothing"
    );
    assert_eq!(
        listed(recoveries.clone()).await,
        json!([]),
        "no recovery request was stored without the credential"
    );
    let kept: Value = http
        .post(&recoveries)
        .bearer_auth(CREDENTIAL)
        .json(&recovery)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(kept["device_identity"], recovery["device_identity"]);
    assert_eq!(kept["decision"], Value::Null);
}

/// The lost-phone flow as its people run it, each with their own command: the
/// operator sets the account recovering; the user initializes a new phone; the
/// operator pushes the recovery request to the server's and the recovery key's nodes
/// (`mpc recovery request`); each holder's human approves it on its own node (the
/// server with `mpc party recoveries approve`, the recovery key through its node's
/// HTTP decision route), which signs the authorization checked against the roster its
/// vault pinned; the operator starts the recovery with the authorizations collected
/// from the nodes. Undecided, or with one authorization of two, the admin token alone
/// gets a refusal and nothing is recorded. The rebuilt phone then signs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_phone_is_rebuilt_only_with_the_holders_authorizations() {
    let db = Database::create().await;
    let mut cluster = Cluster::start(&db).await;
    let holder = |i: usize| cluster.identities[i].clone();
    let opened = cluster
        .post(
            "/v1/accounts",
            json!({
                "username": "alice", "email": "alice@example.com", "phone": "+15551234567",
                "device": holder(0), "server": holder(1), "recovery": holder(2),
                "ttl_seconds": 120,
            }),
            201,
        )
        .await;
    let keygen = &opened["keygen"];
    cluster
        .invite(keygen, &["device", "server", "recovery"])
        .await;
    let key = keygen["session_id"].as_str().unwrap().to_owned();
    let status = cluster.wait(&key, Duration::from_secs(90), |_| false).await;
    assert_eq!(status["status"], "completed", "{status}");
    let public_key = public_key_of(&status);
    let account = opened["account_id"].as_str().unwrap().to_owned();
    cluster
        .post(
            &format!("/v1/accounts/{account}/status"),
            json!({"action": "start_recovery", "reason": "lost phone"}),
            200,
        )
        .await;

    // The phone and its vault are gone; a new phone is set up in its place.
    cluster.party("device").kill();
    std::fs::remove_dir_all(cluster.party_dir("device")).unwrap();
    let new_phone = cluster.init_party("device");
    let phone_file = cluster.dir.path().join("new-phone.json");
    std::fs::write(&phone_file, new_phone.to_string()).unwrap();
    let phone_process = cluster.start_party("device");
    *cluster.party("device") = phone_process;

    let url_of = |id: &str| {
        cluster
            .parties
            .iter()
            .find(|(p, _)| p == id)
            .unwrap()
            .1
            .url
            .clone()
    };
    let phone = phone_file.to_str().unwrap();
    let requested = cluster.mpc(&[
        "recovery",
        "request",
        "--account",
        &account,
        "--device-identity-json",
        phone,
        "--reason",
        "lost phone, ticket 4711",
        "--review",
        &format!("server={}", url_of("server")),
        "--review",
        &format!("recovery={}", url_of("recovery")),
    ]);
    assert!(
        requested.status.success(),
        "{}",
        String::from_utf8_lossy(&requested.stderr)
    );
    let requested: Value = serde_json::from_slice(&requested.stdout).unwrap();
    let request_id = requested["request_id"].as_str().unwrap().to_owned();
    assert_eq!(requested["target"], "device");
    assert_eq!(requested["device_identity"], new_phone["identity"]);
    assert_eq!(requested["requests_sent"], json!(["server", "recovery"]));

    // Each holder's human sees the request on its own node, pending.
    let server_dir = cluster.party_dir("server");
    let listed = cluster.mpc(&[
        "party",
        "recoveries",
        "list",
        "--data-dir",
        server_dir.to_str().unwrap(),
    ]);
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed["request_id"], request_id.as_str());
    assert_eq!(listed["reason"], "lost phone, ticket 4711");
    assert_eq!(listed["decision"], Value::Null);

    let invites: Vec<String> = cluster
        .parties
        .iter()
        .map(|(id, process)| format!("{id}={}", process.url))
        .collect();
    let start = |from: &[&str]| {
        let mut args = vec![
            "recovery".to_owned(),
            "start".to_owned(),
            "--account".to_owned(),
            account.clone(),
            "--type".to_owned(),
            "device_lost".to_owned(),
            "--device-identity-json".to_owned(),
            phone.to_owned(),
        ];
        for id in from {
            args.extend([
                "--authorizations-from".to_owned(),
                format!("{id}={}", url_of(id)),
            ]);
        }
        for invite in &invites {
            args.extend(["--invite".to_owned(), invite.clone()]);
        }
        cluster.mpc(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let head = |db: &Database| {
        let url = db.url();
        async move {
            let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
            let n: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
                .fetch_one(&mut conn)
                .await
                .unwrap();
            n
        }
    };
    let before = head(&db).await;
    let undecided = start(&["server", "recovery"]);
    assert!(!undecided.status.success());
    let stderr = String::from_utf8_lossy(&undecided.stderr);
    assert!(stderr.contains("has not decided"), "{stderr}");

    // The server's human approves on its node with the CLI.
    let approved = cluster.mpc(&[
        "party",
        "recoveries",
        "approve",
        "--id",
        "server",
        "--data-dir",
        server_dir.to_str().unwrap(),
        "--request",
        &request_id,
    ]);
    assert!(
        approved.status.success(),
        "{}",
        String::from_utf8_lossy(&approved.stderr)
    );
    let approved: Value = serde_json::from_slice(&approved.stdout).unwrap();
    assert_eq!(approved["decision"], "approve");
    assert_eq!(approved["authorization"]["approver"], "server");

    // A holder does not authorize its own repair, offline or on its desk.
    let own = cluster.mpc(&[
        "party",
        "authorize-recovery",
        "--id",
        "server",
        "--data-dir",
        server_dir.to_str().unwrap(),
        "--key",
        &key,
        "--target",
        "server",
        "--device-identity-json",
        phone,
    ]);
    assert!(!own.status.success());
    let recovery_url = url_of("recovery");
    let own: Value = cluster
        .http
        .post(format!("{recovery_url}/v1/recoveries"))
        .json(&json!({
            "key_id": key, "target": "recovery", "device_identity": new_phone["identity"],
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let decide = |id: &str| {
        let url = format!("{recovery_url}/v1/recoveries/{id}/decision");
        let http = cluster.http.clone();
        async move {
            let response = http
                .post(url)
                .bearer_auth(approver_token("recovery"))
                .json(&json!({"decision": "approve"}))
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let (status, refused) = decide(own["request_id"].as_str().unwrap()).await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (422, Some("cannot_sign"))
    );

    // One authorization of the two needed: the admin token alone gets a refusal.
    let partial = start(&["server"]);
    assert!(!partial.status.success());
    let stderr = String::from_utf8_lossy(&partial.stderr);
    assert!(stderr.contains("recovery_not_authorized"), "{stderr}");
    assert_eq!(
        head(&db).await,
        before,
        "a refused recovery recorded events"
    );

    // The recovery key's human approves through its node's HTTP decision route,
    // with the node's approver credential (without it: 401, nothing signed).
    let unauthenticated = cluster
        .http
        .post(format!(
            "{recovery_url}/v1/recoveries/{request_id}/decision"
        ))
        .json(&json!({"decision": "approve"}))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);
    let (status, approved) = decide(&request_id).await;
    assert_eq!(status, 200, "{approved}");
    assert_eq!(approved["authorization"]["approver"], "recovery");
    let (status, again) = decide(&request_id).await;
    assert_eq!(
        (status, again["code"].as_str()),
        (409, Some("already_decided"))
    );

    let started = start(&["server", "recovery"]);
    assert!(
        started.status.success(),
        "{}",
        String::from_utf8_lossy(&started.stderr)
    );
    let started: Value = serde_json::from_slice(&started.stdout).unwrap();
    let session = started["session_id"].as_str().unwrap();
    let ended = cluster
        .wait(session, Duration::from_secs(90), |_| false)
        .await;
    assert_eq!(ended["status"], "completed", "{ended}");
    cluster
        .signs(&key, &public_key, &["device", "server"])
        .await;

    // What happened is on the coordinator's and the server node's /metrics.
    let scrape = |url: String| {
        let http = cluster.http.clone();
        async move {
            let response = http.get(format!("{url}/metrics")).send().await.unwrap();
            assert_eq!(response.status(), 200);
            response.text().await.unwrap()
        }
    };
    let coordinator = scrape(cluster.coordinator.url.clone()).await;
    for (kind, outcome, count) in [
        ("keygen", "completed", 1),
        ("refresh", "completed", 1),
        ("signing", "completed", 1),
        ("signing", "created", 1),
    ] {
        let line = format!("mpc_sessions_total{{kind=\"{kind}\",outcome=\"{outcome}\"}} {count}");
        assert!(
            coordinator.lines().any(|l| l == line),
            "no `{line}` in:\n{coordinator}"
        );
    }
    let ready = cluster
        .http
        .get(format!("{}/ready", url_of("server")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        ready.status(),
        200,
        "vault, Kafka and the coordinator answer"
    );
    let server = scrape(url_of("server")).await;
    let line = "mpc_party_sessions_total{outcome=\"completed\"} 3";
    assert!(
        server.lines().any(|l| l == line),
        "keygen, recovery and signing: no `{line}` in:\n{server}"
    );
    drop(cluster);
    db.drop_now().await;
}

/// The multi-person review as separate processes: the key is created
/// `approved-only`, so the approver nodes, run with the default policy, pinned
/// that gate with their shares, and a plain signing session of the payload is
/// refused (by the gateway at once; by every holder, whatever a coordinator says,
/// in `party/tests/malicious_coordinator`).
/// The operator opens the workflow with `mpc workflow open`, which sends the review
/// request to an approver's node (`POST /v1/reviews`; the forged and swapped
/// requests are posted straight to the nodes); each
/// approver reads it from its own node (`mpc party approvals list|show`) and decides
/// there, naming the SHA-256 of the payload it was shown: a payload swapped after it
/// was shown is refused by the node, a decision over another payload than the
/// workflow's by the gateway. One approver decides through the node's HTTP route,
/// one with `mpc party decide` over the file it reviewed. The workflow's one signing
/// session (`mpc workflow sign`, inviting the signers' nodes) then signs, and a
/// second is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approvers_decide_from_their_own_nodes_and_only_approved_payloads_are_signed() {
    let db = Database::create().await;
    let cluster = Cluster::start(&db).await;
    let created = cluster
        .create(json!({
            "kind": "keygen", "threshold": {"t": 2, "n": 3},
            "participants": cluster.identities, "ttl_seconds": 120,
            "policy": "approved-only",
        }))
        .await;
    cluster
        .invite(&created, &["device", "server", "recovery"])
        .await;
    let key = created["session_id"].as_str().unwrap().to_owned();
    let status = cluster.wait(&key, Duration::from_secs(90), |_| false).await;
    assert_eq!(status["status"], "completed", "{status}");
    let public_key = public_key_of(&status);
    let state = cluster.get(&format!("/v1/keys/{key}")).await;
    assert_eq!(state["policy"], "approved-only", "{state}");

    let payload = b"wire 250,000 EUR to ACME GmbH".as_slice();
    let forged = b"wire 250,000 EUR to Mallory".as_slice();
    let unapproved = cluster
        .post(
            "/v1/sessions",
            json!({
                "kind": "signing", "key_id": key, "signers": ["device", "server"],
                "message_hex": hex::encode(payload), "ttl_seconds": 8,
            }),
            409,
        )
        .await;
    assert_eq!(unapproved["code"], "approval_required", "{unapproved}");

    let url_of = |id: &str| {
        let process = &cluster.parties.iter().find(|(p, _)| p == id).unwrap().1;
        process.url.clone()
    };
    // The operator opens the workflow and its command pushes the review request to
    // the server's node; a review for a party that does not hold the key is refused
    // before anything is created.
    let payload_file = cluster.dir.path().join("payment.bin");
    std::fs::write(&payload_file, payload).unwrap();
    let open = |review: String| {
        cluster.mpc(&[
            "workflow",
            "open",
            "--key",
            &key,
            "--title",
            "Q4 payment",
            "--payload-file",
            payload_file.to_str().unwrap(),
            "--review",
            &review,
        ])
    };
    let stranger = open(format!("stranger={}", url_of("server")));
    assert!(!stranger.status.success());
    let stderr = String::from_utf8_lossy(&stranger.stderr);
    assert!(stderr.contains("stranger does not hold key"), "{stderr}");
    let opened = open(format!("server={}", url_of("server")));
    assert!(
        opened.status.success(),
        "{}",
        String::from_utf8_lossy(&opened.stderr)
    );
    let opened: Value = serde_json::from_slice(&opened.stdout).unwrap();
    assert_eq!(opened["reviews_sent"], json!(["server"]), "{opened}");
    let workflow = opened["workflow_id"].as_str().unwrap().to_owned();
    let request_review = |id: &str, shown: &[u8]| {
        let url = url_of(id);
        let body = json!({
            "workflow_id": workflow, "key_id": key, "title": "Q4 payment",
            "payload_hex": hex::encode(shown),
        });
        let http = cluster.http.clone();
        async move {
            let response = http.post(format!("{url}/v1/reviews")).json(&body).send();
            assert_eq!(response.await.unwrap().status(), 201);
        }
    };
    let approvals = |id: &str, verb: &str, extra: &[&str]| {
        let dir = cluster.party_dir(id);
        let mut args = vec![
            "party",
            "approvals",
            verb,
            "--data-dir",
            dir.to_str().unwrap(),
        ];
        if matches!(verb, "approve" | "reject") {
            args.extend(["--id", id]);
        }
        args.extend_from_slice(extra);
        cluster.mpc(&args)
    };
    let sha = |bytes: &[u8]| hex::encode(Sha256::digest(bytes));
    // `approvals <verb>` of `id` answering JSON.
    let answer = |id: &str, verb: &str, extra: &[&str]| -> Value {
        serde_json::from_slice(&approvals(id, verb, extra).stdout).unwrap()
    };
    // `id` approves `workflow` naming the payload digest `shown`; the command must
    // fail. Its stderr.
    let approve_refused = |id: &str, shown: &str| -> String {
        let out = approvals(
            id,
            "approve",
            &["--workflow", &workflow, "--payload-sha256", shown],
        );
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };

    // The device is shown the forged payload, which is then swapped for the real one.
    request_review("device", forged).await;
    let listed = answer("device", "list", &[]);
    assert_eq!(listed["workflow_id"], workflow.as_str());
    assert_eq!(listed["payload_sha256"], sha(forged));
    assert!(listed["decision"].is_null());
    request_review("device", payload).await;
    let stderr = approve_refused("device", &sha(forged));
    assert!(stderr.contains("changed since it was shown"), "{stderr}");
    let shown = answer("device", "show", &["--workflow", &workflow]);
    assert_eq!(shown["payload_text"], "wire 250,000 EUR to ACME GmbH");
    assert_eq!(shown["payload_sha256"], sha(payload));

    // The recovery key's holder approves the forged payload it was shown: the
    // gateway refuses, and its node records nothing.
    request_review("recovery", forged).await;
    let stderr = approve_refused("recovery", &sha(forged));
    assert!(stderr.contains("invalid_approval_signature"), "{stderr}");
    let listed = answer("recovery", "list", &[]);
    assert!(listed["decision"].is_null(), "{listed}");

    // Offline over a file (`mpc party decide`), the same forged payload is refused.
    let other = cluster.dir.path().join("other.bin");
    std::fs::write(&other, forged).unwrap();
    let dir = cluster.party_dir("device");
    let offline = cluster.mpc(&[
        "party",
        "decide",
        "--id",
        "device",
        "--data-dir",
        dir.to_str().unwrap(),
        "--workflow",
        &workflow,
        "--key",
        &key,
        "--payload-file",
        other.to_str().unwrap(),
        "--decision",
        "approve",
    ]);
    let stderr = String::from_utf8_lossy(&offline.stderr);
    assert!(!offline.status.success());
    assert!(stderr.contains("invalid_approval_signature"), "{stderr}");

    let mut last = Value::Null;
    request_review("recovery", payload).await;
    for (id, verb) in [("recovery", "reject"), ("device", "approve")] {
        let out = approvals(
            id,
            verb,
            &["--workflow", &workflow, "--payload-sha256", &sha(payload)],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        last = serde_json::from_slice(&out.stdout).unwrap();
    }
    assert_eq!(last["status"], "pending", "{last}");

    // The server's approver decides through its node's HTTP route, on the review
    // `mpc workflow open` sent it.
    let pending = answer("server", "list", &[]);
    assert_eq!(pending["workflow_id"], workflow.as_str(), "{pending}");
    assert_eq!(pending["payload_sha256"], sha(payload), "{pending}");
    let route = format!("{}/v1/reviews/{workflow}/decision", url_of("server"));
    let decide = |sha256: String| {
        cluster
            .http
            .post(&route)
            .bearer_auth(approver_token("server"))
            .json(&json!({"decision": "approve", "payload_sha256": sha256}))
            .send()
    };
    let unauthenticated = cluster
        .http
        .post(&route)
        .json(&json!({"decision": "approve", "payload_sha256": sha(payload)}))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);
    let stale = decide(sha(forged)).await.unwrap();
    assert_eq!(stale.status(), 409);
    let answer = decide(sha(payload)).await.unwrap();
    assert_eq!(answer.status(), 200);
    let last: Value = answer.json().await.unwrap();
    assert_eq!(last["status"], "approved", "{last}");
    let twice = decide(sha(payload)).await.unwrap();
    assert_eq!(twice.status(), 409);

    let shown = cluster.mpc(&["workflow", "show", "--workflow", &workflow]);
    let shown: Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(shown["status"], "approved", "{shown}");
    let sign = cluster.mpc(&[
        "workflow",
        "sign",
        "--workflow",
        &workflow,
        "--invite",
        &format!("device={}", url_of("device")),
        "--invite",
        &format!("server={}", url_of("server")),
    ]);
    assert!(
        sign.status.success(),
        "{}",
        String::from_utf8_lossy(&sign.stderr)
    );
    let signing: Value = serde_json::from_slice(&sign.stdout).unwrap();
    assert_eq!(signing["invited"], json!(["device", "server"]), "{signing}");
    let session = signing["session_id"].as_str().unwrap();
    let signed = cluster
        .wait(session, Duration::from_secs(60), |_| false)
        .await;
    assert_eq!(signed["status"], "completed", "{signed}");
    let sig = &signed["signature"];
    let signature = Signature::new(
        &hex::decode(sig["r_hex"].as_str().unwrap()).unwrap(),
        &hex::decode(sig["s_hex"].as_str().unwrap()).unwrap(),
        u8::try_from(sig["recovery_id"].as_u64().unwrap()).unwrap(),
    )
    .unwrap();
    let hash = MessageHash::from_bytes(Sha256::digest(payload).into());
    assert!(verify_signature(&public_key, &hash, &signature));
    let signing_path = format!("/v1/workflows/{workflow}/signing");
    let again = cluster.post(&signing_path, json!({}), 409).await;
    assert_eq!(again["code"], "approvals_used", "{again}");
    drop(cluster);
    db.drop_now().await;
}

/// `mpc serve --log-format json` writes only JSON lines; each HTTP request is one
/// `answered` event inside the span named by its `X-Request-Id`, which also names
/// the caller's credential and role. At debug level, with the admin token used, the
/// token appears in no line.
#[tokio::test]
async fn json_logs_carry_the_request_id_and_no_token() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("coordinator");
    let log = dir.path().join("serve.log");
    let serve = Process::start(
        &[
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--data-dir",
            data_dir.to_str().unwrap(),
            "--log-format",
            "json",
        ],
        &[("MPC_LOG", "debug")],
        Some(&log),
    );
    let token = std::fs::read_to_string(data_dir.join("admin.token")).unwrap();
    let token = token.trim();
    let http = http_client();
    let response = http
        .get(format!("{}/health", serve.url))
        .header("x-request-id", "json-log-test-7")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "json-log-test-7");
    let response = http
        .get(format!(
            "{}/v1/sessions/{}",
            serve.url,
            uuid::Uuid::now_v7()
        ))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    drop(serve);

    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    let answered = lines
        .iter()
        .find(|l| l["span"]["request_id"] == "json-log-test-7")
        .unwrap_or_else(|| panic!("no line in the request's span:\n{text}"));
    assert_eq!(answered["fields"]["message"], "answered");
    assert_eq!(answered["fields"]["status"], 200);
    assert_eq!(answered["span"]["route"], "/health");
    let read = lines
        .iter()
        .find(|l| l["span"]["route"] == "/v1/sessions/{id}" && l["fields"]["status"] == 404)
        .unwrap_or_else(|| panic!("no answered line for the session read:\n{text}"));
    // The span names who called: the bootstrap credential and its role.
    assert_eq!(read["span"]["credential"], "bootstrap-admin", "{read}");
    assert_eq!(read["span"]["role"], "admin", "{read}");
    assert!(!text.contains(token), "the admin token is in the log");
}

/// `mpc operator add|list|revoke` against a real `mpc serve` on PostgreSQL: each
/// key carries its role (a key-manager key creates a keygen, a requester key may
/// not, nor list keys), the registry survives a SIGKILL of the coordinator, a
/// revoked key is refused at once, and the store holds each key's SHA-256 digest,
/// never the key.
#[tokio::test]
async fn operator_api_keys_carry_their_roles_across_a_restart() {
    let db = Database::create().await;
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let coord_dir = dir.path().join("coordinator");
    let serve_args = [
        "serve",
        "--bind",
        &format!("127.0.0.1:{port}"),
        "--data-dir",
        coord_dir.to_str().unwrap(),
        "--store-url",
        &db.url(),
    ]
    .map(str::to_owned);
    let serve = || {
        let args: Vec<&str> = serve_args.iter().map(String::as_str).collect();
        Process::start(&args, &[], None)
    };
    let mut coordinator = serve();
    let url = coordinator.url.clone();
    let admin = std::fs::read_to_string(coord_dir.join("admin.token"))
        .unwrap()
        .trim()
        .to_owned();
    let mpc = |bearer: &str, args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_mpc"))
            .args(args)
            .env("MPC_COORDINATOR_URL", &url)
            .env("MPC_ADMIN_TOKEN", bearer)
            .env("MPC_LOG", "warn")
            .output()
            .unwrap()
    };
    let add = |name: &str, role: &str| {
        let out = mpc(&admin, &["operator", "add", "--name", name, "--role", role]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let officer = add("custody officer", "key-manager");
    let ci = add("payments ci", "requester");

    let identities: Vec<Value> = ["device", "server", "recovery"]
        .iter()
        .map(|id| init_party(id, &dir.path().join(id)))
        .collect();
    let keygen = json!({
        "kind": "keygen",
        "threshold": {"t": 2, "n": 3},
        "participants": identities,
        "ttl_seconds": 60,
    });
    // No pooled connections: the coordinator is killed and restarted below.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let create = async |bearer: &str| {
        let resp = http
            .post(format!("{url}/v1/sessions"))
            .bearer_auth(bearer)
            .json(&keygen)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json::<Value>().await.unwrap())
    };
    let (status, answer) = create(&ci).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (403, Some("role_forbidden")),
        "{answer}"
    );
    let (status, answer) = create(&officer).await;
    assert_eq!(status, 201, "{answer}");

    let out = mpc(&ci, &["operator", "list"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("role_forbidden"));
    let out = mpc(&admin, &["operator", "list"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed = String::from_utf8(out.stdout).unwrap();
    assert!(
        listed.contains("custody officer") && listed.contains("payments ci"),
        "{listed}"
    );
    assert!(
        !listed.contains(&officer) && !listed.contains(&ci),
        "a key was listed"
    );

    // The registry is in the log: a restarted coordinator knows the keys.
    coordinator.kill();
    coordinator = serve();
    let (status, answer) = create(&officer).await;
    assert_eq!(status, 201, "{answer}");

    let ci_id = listed
        .lines()
        .find(|l| l.contains("payments ci"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_owned();
    let out = mpc(&admin, &["operator", "revoke", &ci_id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let resp = http
        .get(format!("{url}/v1/keys/{}", uuid::Uuid::now_v7()))
        .bearer_auth(&ci)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);

    // Digests only: each key's SHA-256 is stored, the key (nor its secret half) never.
    let mut conn = sqlx::PgConnection::connect(&db.url()).await.unwrap();
    let payloads: Vec<Vec<u8>> = sqlx::query_scalar("SELECT payload FROM events")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    let all = payloads.concat();
    let text = String::from_utf8_lossy(&all);
    for key in [&officer, &ci] {
        assert!(
            !text.contains(&key[37..]),
            "a key's secret is in the event log"
        );
        assert!(text.contains(&hex::encode(Sha256::digest(key.as_bytes()))));
    }
    drop(conn);
    drop(coordinator);
    db.drop_now().await;
}
