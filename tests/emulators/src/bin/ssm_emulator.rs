//! A development-only emulator of Tencent Cloud Secrets Manager (SSM), API 3.0, version `2019-09-23`, for tests on
//! a machine where no Tencent server can run. Its fidelity is checked by driving it with the official Python SDK
//! (`tests/python/tencent/`). Its signature check is written apart from the dialect's signing code, from the
//! published algorithm, so one shared mistake cannot pass unnoticed.
//!
//! What it models:
//! - `POST /` with `X-TC-Action`, `X-TC-Version: 2019-09-23` and a JSON body; every answer is HTTP 200 with
//!   `{"Response": {..., "RequestId"}}` or `{"Response": {"Error": {"Code", "Message"}, "RequestId"}}`;
//! - TC3-HMAC-SHA256 signatures over the headers named in `SignedHeaders` (which must include `content-type`
//!   and `host`): `AuthFailure.SignatureFailure` (missing, malformed or wrong), `AuthFailure.SignatureExpire`
//!   (timestamp more than `--max-skew-secs` away), `AuthFailure.InvalidSecretId` (not an `AKID…` id),
//!   `AuthFailure.SecretIdNotFound`, `AuthFailure.TokenFailure` (temporary credentials without their token, or
//!   a token with permanent ones), `UnauthorizedOperation` (a read-only key pair calling a writing action);
//! - the actions `CreateSecret`, `UpdateSecret`, `PutSecretValue`, `GetSecretValue`, `DescribeSecret`,
//!   `ListSecrets`, `ListSecretVersionIds`, `UpdateDescription`, `EnableSecret`, `DisableSecret`,
//!   `DeleteSecret` (only when Disabled; `RecoveryWindowInDays` 1-30 schedules it), `RestoreSecret` and
//!   `DeleteSecretVersion`, with the documented parameter names (others: `UnknownParameter`), name and version
//!   rules (`InvalidParameterValue`), value size (`--max-value-bytes`), the 10-version cap (`LimitExceeded`),
//!   `ResourceInUse.SecretExists`, `ResourceInUse.VersionIdExists`, `ResourceNotFound` and the
//!   `ResourceUnavailable.*` states;
//! - `UnsupportedRegion` for an `X-TC-Region` outside a list of real SSM regions;
//! - a limit of `--rate-limit` requests per second for each action and key pair (`RequestLimitExceeded`), each
//!   key pair standing for one account; every request is counted per calendar second so tests can check the
//!   most any second saw.
//!
//! Test controls (no signature, under `/_emulator/`):
//! - `POST /_emulator/faults` `{"secretName", "code", "message"?, "times", "httpStatus"?, "retryAfter"?}`: the
//!   next `times` requests naming that secret answer with that error code after authentication (scoped to a
//!   secret so parallel tests stay apart), or with a bare HTTP status and `Retry-After`, as a gateway might;
//! - `GET /_emulator/stats?secretId=…`: per action `{"total", "limited", "maxPerSecond", "maxInAnySecond"}` for
//!   that key pair: the most requests in one calendar second (what the limit counts) and in any sliding
//!   one-second window (a stricter view of how evenly a client paces itself);
//! - `GET /_emulator/health`.
//!
//! Listeners: `--port` serves plain HTTP; `--tls-port` (with `--tls-cert` and `--tls-key`) serves the same API
//! and controls over HTTPS, as Tencent does, for clients that refuse plain HTTP off loopback (the controller's
//! pods on the test bed's node). Both share one store.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use clap::Parser;
use hmac::{Hmac, Mac};
use secretsync_emulators::tls;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

const VERSION: &str = "2019-09-23";
const SERVICE: &str = "ssm";
const MAX_VERSIONS: usize = 10;
const MAX_DESCRIPTION: usize = 2048;
const DEFAULT_VERSION: &str = "SSM_Current";

#[derive(Parser, Debug)]
#[command(about = "Emulator of Tencent Cloud SSM (API 3.0, 2019-09-23), for tests")]
struct Args {
    /// Plain-HTTP port.
    #[arg(long)]
    port: u16,
    /// HTTPS port, serving the same store (needs --tls-cert and --tls-key).
    #[arg(long, requires_all = ["tls_cert", "tls_key"])]
    tls_port: Option<u16>,
    /// Server certificate chain (PEM) for the HTTPS listener.
    #[arg(long)]
    tls_cert: Option<PathBuf>,
    /// Server private key (PEM) for the HTTPS listener.
    #[arg(long)]
    tls_key: Option<PathBuf>,
    /// A key pair with full access, `SECRETID:SECRETKEY` (repeatable).
    #[arg(long = "account")]
    accounts: Vec<String>,
    /// Temporary credentials, `SECRETID:SECRETKEY:TOKEN` (repeatable).
    #[arg(long = "temp-account")]
    temp_accounts: Vec<String>,
    /// A key pair that may only read, `SECRETID:SECRETKEY` (repeatable).
    #[arg(long = "readonly-account")]
    readonly_accounts: Vec<String>,
    /// Requests a second per action and key pair.
    #[arg(long, default_value_t = 50)]
    rate_limit: u32,
    #[arg(long, default_value_t = 300)]
    max_skew_secs: i64,
    /// 32 KiB in current documentation (4096 in the original API).
    #[arg(long, default_value_t = 32 * 1024)]
    max_value_bytes: usize,
}

#[derive(Clone)]
struct Account {
    key: String,
    token: Option<String>,
    read_only: bool,
}

#[derive(Clone)]
struct Version {
    id: String,
    string: Option<String>,
    binary: Option<String>,
    created: i64,
}

struct Secret {
    description: String,
    status: &'static str,
    created: i64,
    delete_time: i64,
    versions: Vec<Version>,
}

#[derive(Default)]
struct Counter {
    recent: VecDeque<std::time::Instant>,
    max_in_any_second: u32,
    total: u64,
    limited: u64,
    second: i64,
    in_second: u32,
    max_per_second: u32,
}

struct Fault {
    code: String,
    message: String,
    times: u32,
    /// Answer with this HTTP status instead of an API error, as a gateway in front of the service might.
    http_status: Option<u16>,
    retry_after: Option<u64>,
}

#[derive(Default)]
struct Store {
    secrets: BTreeMap<String, Secret>,
    counters: HashMap<(String, String), Counter>,
    faults: HashMap<String, VecDeque<Fault>>,
}

struct App {
    accounts: HashMap<String, Account>,
    rate_limit: u32,
    max_skew: i64,
    max_value: usize,
    store: Mutex<Store>,
}

type Shared = Arc<App>;

/// An API error: code and message, answered with HTTP 200 like the real service.
struct ApiError(String, String, Option<(u16, Option<u64>)>);

fn err(code: &str, message: impl Into<String>) -> ApiError {
    ApiError(code.to_owned(), message.into(), None)
}

fn request_id() -> String {
    let b: [u8; 16] = rand::random();
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn answer(result: Result<Map<String, Value>, (String, String)>) -> Response {
    let mut body = match result {
        Ok(map) => map,
        Err((code, message)) => {
            let mut m = Map::new();
            m.insert("Error".into(), json!({"Code": code, "Message": message}));
            m
        }
    };
    body.insert("RequestId".into(), json!(request_id()));
    axum::Json(json!({ "Response": body })).into_response()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let args = Args::parse();
    let mut accounts = HashMap::new();
    let split = |s: &str, n: usize| -> Vec<String> {
        let parts: Vec<String> = s.splitn(n, ':').map(str::to_owned).collect();
        if parts.len() != n {
            eprintln!("ssm-emulator: bad credential spec (want {n} ':'-separated parts)");
            std::process::exit(2);
        }
        parts
    };
    for a in &args.accounts {
        let p = split(a, 2);
        accounts.insert(
            p[0].clone(),
            Account {
                key: p[1].clone(),
                token: None,
                read_only: false,
            },
        );
    }
    for a in &args.temp_accounts {
        let p = split(a, 3);
        accounts.insert(
            p[0].clone(),
            Account {
                key: p[1].clone(),
                token: Some(p[2].clone()),
                read_only: false,
            },
        );
    }
    for a in &args.readonly_accounts {
        let p = split(a, 2);
        accounts.insert(
            p[0].clone(),
            Account {
                key: p[1].clone(),
                token: None,
                read_only: true,
            },
        );
    }
    let app = Arc::new(App {
        accounts,
        rate_limit: args.rate_limit.max(1),
        max_skew: args.max_skew_secs,
        max_value: args.max_value_bytes,
        store: Mutex::new(Store::default()),
    });
    let router = Router::new()
        .route("/", post(api))
        .route("/_emulator/faults", post(add_fault))
        .route("/_emulator/stats", get(stats))
        .route("/_emulator/health", get(|| async { "ok" }))
        .with_state(app);
    if let (Some(port), Some(cert), Some(key)) = (args.tls_port, &args.tls_cert, &args.tls_key) {
        let config = tls::server_config(cert, key, None).unwrap_or_else(|e| {
            eprintln!("ssm-emulator: TLS setup: {e}");
            std::process::exit(1);
        });
        let (addr, listener) = bind(port).await;
        tracing::info!(%addr, "ssm-emulator listening (HTTPS)");
        tokio::spawn(tls::serve(listener, config, router.clone()));
    }
    let (addr, listener) = bind(args.port).await;
    tracing::info!(%addr, "ssm-emulator listening");
    if let Err(e) = axum::serve(listener, router).await {
        eprintln!("ssm-emulator: {e}");
        std::process::exit(1);
    }
}

async fn bind(port: u16) -> (SocketAddr, tokio::net::TcpListener) {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => (addr, l),
        Err(e) => {
            eprintln!("ssm-emulator: cannot listen on {addr}: {e}");
            std::process::exit(1);
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FaultSpec {
    secret_name: String,
    code: String,
    #[serde(default)]
    message: Option<String>,
    times: u32,
    #[serde(default)]
    http_status: Option<u16>,
    #[serde(default)]
    retry_after: Option<u64>,
}

async fn add_fault(State(app): State<Shared>, axum::Json(spec): axum::Json<FaultSpec>) -> Response {
    let mut store = app.store.lock().expect("store lock");
    store
        .faults
        .entry(spec.secret_name)
        .or_default()
        .push_back(Fault {
            message: spec
                .message
                .unwrap_or_else(|| format!("injected {}", spec.code)),
            code: spec.code,
            times: spec.times,
            http_status: spec.http_status,
            retry_after: spec.retry_after,
        });
    axum::Json(json!({"ok": true})).into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StatsQuery {
    secret_id: String,
}

async fn stats(State(app): State<Shared>, Query(q): Query<StatsQuery>) -> Response {
    let store = app.store.lock().expect("store lock");
    let mut actions = Map::new();
    for ((id, action), c) in &store.counters {
        if *id == q.secret_id {
            actions.insert(
                action.clone(),
                json!({
                    "total": c.total,
                    "limited": c.limited,
                    "maxPerSecond": c.max_per_second,
                    "maxInAnySecond": c.max_in_any_second,
                }),
            );
        }
    }
    axum::Json(json!({"rateLimit": app.rate_limit, "actions": actions})).into_response()
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn hmac_sha256(key: &[u8], data: &str) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    m.update(data.as_bytes());
    m.finalize().into_bytes().to_vec()
}

/// Checks the TC3 signature and answers the key pair's id and account.
fn authenticate(
    app: &App,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(String, Account), ApiError> {
    let auth = header(headers, "authorization").ok_or_else(|| {
        err(
            "AuthFailure.SignatureFailure",
            "The request has no Authorization header.",
        )
    })?;
    let rest = auth.strip_prefix("TC3-HMAC-SHA256 ").ok_or_else(|| {
        err(
            "AuthFailure.SignatureFailure",
            "Unsupported signature algorithm.",
        )
    })?;
    let mut credential = None;
    let mut signed = None;
    let mut signature = None;
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = Some(v);
        }
    }
    let malformed = || {
        err(
            "AuthFailure.SignatureFailure",
            "The Authorization header is malformed.",
        )
    };
    let (credential, signed, signature) = match (credential, signed, signature) {
        (Some(c), Some(s), Some(g)) => (c, s, g),
        _ => return Err(malformed()),
    };
    let scope: Vec<&str> = credential.split('/').collect();
    let [secret_id, date, service, terminator] = scope[..] else {
        return Err(malformed());
    };
    if terminator != "tc3_request" {
        return Err(malformed());
    }
    if !secret_id.starts_with("AKID") {
        return Err(err(
            "AuthFailure.InvalidSecretId",
            "The SecretId is not a valid key id.",
        ));
    }
    let account = app.accounts.get(secret_id).ok_or_else(|| {
        err(
            "AuthFailure.SecretIdNotFound",
            "The SecretId does not exist or is disabled.",
        )
    })?;
    let timestamp: i64 = header(headers, "x-tc-timestamp")
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| {
            err(
                "AuthFailure.SignatureFailure",
                "X-TC-Timestamp is missing or not a number.",
            )
        })?;
    if (now() - timestamp).abs() > app.max_skew {
        return Err(err(
            "AuthFailure.SignatureExpire",
            "The request timestamp is more than 5 minutes away from server time.",
        ));
    }
    let expected_date = chrono::DateTime::from_timestamp(timestamp, 0)
        .map(|d| d.date_naive().to_string())
        .unwrap_or_default();
    if date != expected_date || service != SERVICE {
        return Err(err(
            "AuthFailure.SignatureFailure",
            "The credential scope does not match the timestamp's date or the service.",
        ));
    }
    let names: Vec<&str> = signed.split(';').collect();
    if !names.contains(&"content-type") || !names.contains(&"host") {
        return Err(err(
            "AuthFailure.SignatureFailure",
            "SignedHeaders must include content-type and host.",
        ));
    }
    let mut canonical_headers = String::new();
    for name in &names {
        let value = header(headers, name).unwrap_or("").trim().to_lowercase();
        canonical_headers.push_str(&format!("{name}:{value}\n"));
    }
    let payload_hash = if header(headers, "x-tc-content-sha256") == Some("UNSIGNED-PAYLOAD") {
        hex::encode(Sha256::digest(b"UNSIGNED-PAYLOAD"))
    } else {
        hex::encode(Sha256::digest(body))
    };
    let canonical = ["POST", "/", "", &canonical_headers, signed, &payload_hash].join("\n");
    let to_sign = format!(
        "TC3-HMAC-SHA256\n{timestamp}\n{date}/{service}/tc3_request\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let k_date = hmac_sha256(format!("TC3{}", account.key).as_bytes(), date);
    let k_service = hmac_sha256(&k_date, service);
    let k_signing = hmac_sha256(&k_service, "tc3_request");
    let mut mac = Hmac::<Sha256>::new_from_slice(&k_signing).expect("any key length");
    mac.update(to_sign.as_bytes());
    let given = hex::decode(signature).map_err(|_| malformed())?;
    mac.verify_slice(&given).map_err(|_| {
        err(
            "AuthFailure.SignatureFailure",
            "The request signature does not match.",
        )
    })?;
    let token = header(headers, "x-tc-token");
    match (&account.token, token) {
        (Some(want), Some(got)) if want == got => {}
        (None, None) => {}
        _ => {
            return Err(err(
                "AuthFailure.TokenFailure",
                "The token is missing, invalid or does not belong to these credentials.",
            ));
        }
    }
    Ok((secret_id.to_owned(), account.clone()))
}

/// Regions SSM is offered in (a public subset; `X-TC-Region` is optional, but when sent it must be one).
const REGIONS: &[&str] = &[
    "ap-guangzhou",
    "ap-shanghai",
    "ap-nanjing",
    "ap-beijing",
    "ap-chengdu",
    "ap-chongqing",
    "ap-hongkong",
    "ap-singapore",
    "ap-bangkok",
    "ap-jakarta",
    "ap-seoul",
    "ap-tokyo",
    "ap-mumbai",
    "na-siliconvalley",
    "na-ashburn",
    "na-toronto",
    "eu-frankfurt",
    "sa-saopaulo",
];

const WRITES: &[&str] = &[
    "CreateSecret",
    "UpdateSecret",
    "PutSecretValue",
    "UpdateDescription",
    "EnableSecret",
    "DisableSecret",
    "DeleteSecret",
    "RestoreSecret",
    "DeleteSecretVersion",
];

async fn api(State(app): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let result = handle(&app, &headers, &body);
    // Action and outcome only: bodies carry secret values.
    tracing::info!(
        action = header(&headers, "x-tc-action").unwrap_or("-"),
        outcome = match &result {
            Ok(_) => "ok",
            Err(ApiError(code, _, _)) => code.as_str(),
        },
    );
    match result {
        Err(ApiError(_, message, Some((status, retry_after)))) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            let mut response = (status, message).into_response();
            if let Some(after) = retry_after {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(after));
            }
            response
        }
        result => answer(result.map_err(|ApiError(code, message, _)| (code, message))),
    }
}

fn handle(app: &App, headers: &HeaderMap, body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    let action = header(headers, "x-tc-action")
        .ok_or_else(|| err("MissingParameter", "The X-TC-Action header is missing."))?
        .to_owned();
    let content_type = header(headers, "content-type").unwrap_or("");
    if !content_type
        .to_ascii_lowercase()
        .starts_with("application/json")
    {
        return Err(err(
            "InvalidParameter",
            "Content-Type must be application/json.",
        ));
    }
    let (secret_id, account) = authenticate(app, headers, body)?;
    if header(headers, "x-tc-version") != Some(VERSION) {
        return Err(err("NoSuchVersion", "The API version does not exist."));
    }
    if let Some(region) = header(headers, "x-tc-region")
        && !REGIONS.contains(&region)
    {
        return Err(err(
            "UnsupportedRegion",
            format!("SSM is not offered in region {region}."),
        ));
    }
    let params: Map<String, Value> = serde_json::from_slice(body)
        .map_err(|_| err("InvalidParameter", "The request body is not a JSON object."))?;

    let mut store = app.store.lock().expect("store lock");
    let second = now();
    let counter = store
        .counters
        .entry((secret_id, action.clone()))
        .or_default();
    if counter.second != second {
        counter.second = second;
        counter.in_second = 0;
    }
    counter.in_second += 1;
    counter.total += 1;
    counter.max_per_second = counter.max_per_second.max(counter.in_second);
    let arrived = std::time::Instant::now();
    while counter
        .recent
        .front()
        .is_some_and(|t| arrived.duration_since(*t) >= std::time::Duration::from_secs(1))
    {
        counter.recent.pop_front();
    }
    counter.recent.push_back(arrived);
    counter.max_in_any_second = counter.max_in_any_second.max(counter.recent.len() as u32);
    if counter.in_second > app.rate_limit {
        counter.limited += 1;
        return Err(err(
            "RequestLimitExceeded",
            format!(
                "More than {} {action} requests in one second.",
                app.rate_limit
            ),
        ));
    }
    if account.read_only && WRITES.contains(&action.as_str()) {
        return Err(err(
            "UnauthorizedOperation",
            format!("These credentials may not call {action}."),
        ));
    }
    if let Some(name) = params.get("SecretName").and_then(Value::as_str)
        && let Some(queue) = store.faults.get_mut(name)
        && let Some(fault) = queue.front_mut()
    {
        fault.times = fault.times.saturating_sub(1);
        let code = fault.code.clone();
        let message = fault.message.clone();
        let http = fault.http_status.map(|s| (s, fault.retry_after));
        if fault.times == 0 {
            queue.pop_front();
        }
        return Err(ApiError(code, message, http));
    }
    let allowed: &[&str] = match action.as_str() {
        "CreateSecret" => &[
            "SecretName",
            "VersionId",
            "Description",
            "KmsKeyId",
            "SecretType",
            "SecretBinary",
            "SecretString",
            "AdditionalConfig",
            "Tags",
            "KmsHsmClusterId",
        ],
        "UpdateSecret" | "PutSecretValue" => {
            &["SecretName", "VersionId", "SecretBinary", "SecretString"]
        }
        "GetSecretValue" | "DeleteSecretVersion" => &["SecretName", "VersionId"],
        "DescribeSecret"
        | "ListSecretVersionIds"
        | "EnableSecret"
        | "DisableSecret"
        | "RestoreSecret" => &["SecretName"],
        "UpdateDescription" => &["SecretName", "Description"],
        "DeleteSecret" => &["SecretName", "RecoveryWindowInDays", "CleanSSHKey"],
        "ListSecrets" => &[
            "Offset",
            "Limit",
            "OrderType",
            "State",
            "SearchSecretName",
            "TagFilters",
            "SecretType",
            "ProductName",
        ],
        _ => {
            return Err(err(
                "InvalidAction",
                format!("The action {action} does not exist."),
            ));
        }
    };
    if let Some(unknown) = params.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(err(
            "UnknownParameter",
            format!("The parameter {unknown} is not recognized."),
        ));
    }
    let p = Params(&params);
    match action.as_str() {
        "CreateSecret" => create(app, &mut store, &p),
        "UpdateSecret" => update(app, &mut store, &p),
        "PutSecretValue" => put_value(app, &mut store, &p),
        "GetSecretValue" => get_value(&store, &p),
        "DescribeSecret" => describe(&store, &p),
        "ListSecrets" => list(&store, &p),
        "ListSecretVersionIds" => list_versions(&store, &p),
        "UpdateDescription" => update_description(&mut store, &p),
        "EnableSecret" => set_enabled(&mut store, &p, true),
        "DisableSecret" => set_enabled(&mut store, &p, false),
        "DeleteSecret" => delete(&mut store, &p),
        "RestoreSecret" => restore(&mut store, &p),
        "DeleteSecretVersion" => delete_version(&mut store, &p),
        _ => Err(err(
            "InvalidAction",
            format!("The action {action} does not exist."),
        )),
    }
}

struct Params<'a>(&'a Map<String, Value>);

impl Params<'_> {
    fn opt_str(&self, name: &str) -> Result<Option<&str>, ApiError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(err("InvalidParameter", format!("{name} must be a string."))),
        }
    }

    fn str(&self, name: &str) -> Result<&str, ApiError> {
        self.opt_str(name)?.ok_or_else(|| {
            err(
                "MissingParameter",
                format!("The parameter {name} is missing."),
            )
        })
    }

    fn opt_int(&self, name: &str) -> Result<Option<i64>, ApiError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .map(Some)
                .ok_or_else(|| err("InvalidParameter", format!("{name} must be an integer."))),
            Some(_) => Err(err(
                "InvalidParameter",
                format!("{name} must be an integer."),
            )),
        }
    }

    fn name(&self) -> Result<&str, ApiError> {
        let name = self.str("SecretName")?;
        let mut chars = name.chars();
        let ok = name.len() <= 128
            && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !ok {
            return Err(err(
                "InvalidParameterValue",
                "SecretName must be at most 128 letters, digits, '-' or '_', starting with a letter or digit.",
            ));
        }
        Ok(name)
    }

    fn version(&self, required: bool) -> Result<Option<&str>, ApiError> {
        let Some(id) = (if required {
            Some(self.str("VersionId")?)
        } else {
            self.opt_str("VersionId")?
        }) else {
            return Ok(None);
        };
        let mut chars = id.chars();
        let ok = id.len() <= 64
            && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
            && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !ok {
            return Err(err(
                "InvalidParameterValue",
                "VersionId must be at most 64 letters, digits, '-', '_' or '.', starting with a letter or digit.",
            ));
        }
        Ok(Some(id))
    }

    /// Exactly one of SecretString and SecretBinary, within the size limit.
    fn content(&self, app: &App) -> Result<(Option<String>, Option<String>), ApiError> {
        let string = self.opt_str("SecretString")?;
        let binary = self.opt_str("SecretBinary")?;
        let (size, result) = match (string, binary) {
            (Some(s), None) => (s.len(), (Some(s.to_owned()), None)),
            (None, Some(b)) => {
                if base64::engine::general_purpose::STANDARD.decode(b).is_err() {
                    return Err(err(
                        "InvalidParameterValue",
                        "SecretBinary is not valid base64.",
                    ));
                }
                (b.len(), (None, Some(b.to_owned())))
            }
            _ => {
                return Err(err(
                    "InvalidParameter",
                    "Exactly one of SecretString and SecretBinary must be set.",
                ));
            }
        };
        if size > app.max_value {
            return Err(err(
                "InvalidParameterValue",
                format!("The secret content is longer than {} bytes.", app.max_value),
            ));
        }
        Ok(result)
    }
}

fn found<'a>(store: &'a Store, name: &str) -> Result<&'a Secret, ApiError> {
    store.secrets.get(name).ok_or_else(|| {
        err(
            "ResourceNotFound",
            format!("The secret {name} does not exist."),
        )
    })
}

fn found_mut<'a>(store: &'a mut Store, name: &str) -> Result<&'a mut Secret, ApiError> {
    store.secrets.get_mut(name).ok_or_else(|| {
        err(
            "ResourceNotFound",
            format!("The secret {name} does not exist."),
        )
    })
}

/// Writes are allowed in Enabled and Disabled only.
fn writable(secret: &Secret) -> Result<(), ApiError> {
    match secret.status {
        "Enabled" | "Disabled" => Ok(()),
        _ => Err(err(
            "ResourceUnavailable.ResourcePendingDeleted",
            "The secret is scheduled for deletion.",
        )),
    }
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn create(app: &App, store: &mut Store, p: &Params) -> Result<Map<String, Value>, ApiError> {
    let name = p.name()?;
    let version = p.version(false)?.unwrap_or(DEFAULT_VERSION).to_owned();
    let description = p.opt_str("Description")?.unwrap_or("").to_owned();
    if description.len() > MAX_DESCRIPTION {
        return Err(err(
            "InvalidParameterValue",
            "Description is longer than 2048 bytes.",
        ));
    }
    let (string, binary) = p.content(app)?;
    if store.secrets.contains_key(name) {
        return Err(err(
            "ResourceInUse.SecretExists",
            format!("The secret {name} already exists."),
        ));
    }
    let t = now();
    store.secrets.insert(
        name.to_owned(),
        Secret {
            description,
            status: "Enabled",
            created: t,
            delete_time: 0,
            versions: vec![Version {
                id: version.clone(),
                string,
                binary,
                created: t,
            }],
        },
    );
    Ok(obj(json!({"SecretName": name, "VersionId": version})))
}

fn update(app: &App, store: &mut Store, p: &Params) -> Result<Map<String, Value>, ApiError> {
    let name = p.name()?;
    let version = p.version(true)?.unwrap_or_default().to_owned();
    let (string, binary) = p.content(app)?;
    let secret = found_mut(store, name)?;
    writable(secret)?;
    let v = secret
        .versions
        .iter_mut()
        .find(|v| v.id == version)
        .ok_or_else(|| {
            err(
                "ResourceNotFound",
                format!("The version {version} does not exist."),
            )
        })?;
    v.string = string;
    v.binary = binary;
    Ok(obj(json!({"SecretName": name, "VersionId": version})))
}

fn put_value(app: &App, store: &mut Store, p: &Params) -> Result<Map<String, Value>, ApiError> {
    let name = p.name()?;
    let version = p.version(true)?.unwrap_or_default().to_owned();
    let (string, binary) = p.content(app)?;
    let secret = found_mut(store, name)?;
    writable(secret)?;
    if secret.versions.iter().any(|v| v.id == version) {
        return Err(err(
            "ResourceInUse.VersionIdExists",
            format!("The version {version} already exists."),
        ));
    }
    if secret.versions.len() >= MAX_VERSIONS {
        return Err(err(
            "LimitExceeded",
            format!("A secret holds at most {MAX_VERSIONS} versions."),
        ));
    }
    secret.versions.push(Version {
        id: version.clone(),
        string,
        binary,
        created: now(),
    });
    Ok(obj(json!({"SecretName": name, "VersionId": version})))
}

fn get_value(store: &Store, p: &Params) -> Result<Map<String, Value>, ApiError> {
    let name = p.name()?;
    let version = p.version(true)?.unwrap_or_default();
    let secret = found(store, name)?;
    match secret.status {
        "Enabled" => {}
        "Disabled" => {
            return Err(err(
                "ResourceUnavailable.ResourceDisabled",
                "The secret is disabled.",
            ));
        }
        _ => {
            return Err(err(
                "ResourceUnavailable.ResourcePendingDeleted",
                "The secret is scheduled for deletion.",
            ));
        }
    }
    let v = secret
        .versions
        .iter()
        .find(|v| v.id == version)
        .ok_or_else(|| {
            err(
                "ResourceNotFound",
                format!("The version {version} does not exist."),
            )
        })?;
    Ok(obj(json!({
        "SecretName": name,
        "VersionId": v.id,
        "SecretBinary": v.binary.clone().unwrap_or_default(),
        "SecretString": v.string.clone().unwrap_or_default(),
    })))
}

fn metadata(name: &str, s: &Secret) -> Value {
    json!({
        "SecretName": name,
        "Description": s.description,
        "KmsKeyId": "",
        "CreateUin": 100000000001u64,
        "Status": s.status,
        "DeleteTime": s.delete_time,
        "CreateTime": s.created,
        "KmsKeyType": "DEFAULT",
        "RotationStatus": 0,
        "NextRotationTime": 0,
        "SecretType": 0,
        "ProductName": "",
    })
}

fn describe(store: &Store, p: &Params) -> Result<Map<String, Value>, ApiError> {
    let name = p.name()?;
    let s = found(store, name)?;
    Ok(obj(json!({
        "SecretName": name,
        "Description": s.description,
        "KmsKeyId": "",
        "CreateUin": 100000000001u64,
        "Status": s.status,
        "DeleteTime": s.delete_time,
        "CreateTime": s.created,
        "SecretType": 0,
        "ProductName": "",
        "ResourceID": "",
        "RotationStatus": false,
        "RotationFrequency": 0,
        "ResourceName": "",
        "ProjectID": 0,
        "AssociatedInstanceIDs": [],
        "TargetUin": 0,
    })))
}

fn list(store: &Store, p: &Params) -> Result<Map<String, Value>, ApiError> {
    let offset = p.opt_int("Offset")?.unwrap_or(0).max(0) as usize;
    let limit = match p.opt_int("Limit")?.unwrap_or(0) {
        0 => 20,
        n if n < 0 => return Err(err("InvalidParameterValue", "Limit must not be negative.")),
        n => n as usize,
    };
    let state = p.opt_int("State")?.unwrap_or(0);
    let search = p.opt_str("SearchSecretName")?.unwrap_or("");
    let mut matching: Vec<(&String, &Secret)> = store
        .secrets
        .iter()
        .filter(|(name, s)| {
            let state_ok = match state {
                1 => s.status == "Enabled",
                2 => s.status == "Disabled",
                3 => s.status == "PendingDelete",
                _ => true,
            };
            state_ok && name.contains(search)
        })
        .collect();
    // OrderType 0 (default): newest first; 1: oldest first.
    matching.sort_by_key(|(name, s)| (s.created, (*name).clone()));
    if p.opt_int("OrderType")?.unwrap_or(0) == 0 {
        matching.reverse();
    }
    let total = matching.len();
    let page: Vec<Value> = matching
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(|(name, s)| metadata(name, s))
        .collect();
    Ok(obj(json!({"TotalCount": total, "SecretMetadatas": page})))
}

fn list_versions(store: &Store, p: &Params) -> Result<Map<String, Value>, ApiError> {
    let name = p.name()?;
    let s = found(store, name)?;
    let versions: Vec<Value> = s
        .versions
        .iter()
        .map(|v| json!({"VersionId": v.id, "CreateTime": v.created}))
        .collect();
    Ok(obj(json!({"SecretName": name, "Versions": versions})))
}

fn update_description(store: &mut Store, p: &Params) -> Result<Map<String, Value>, ApiError> {
    let name = p.name()?;
    let description = p.str("Description")?;
    if description.len() > MAX_DESCRIPTION {
        return Err(err(
            "InvalidParameterValue",
            "Description is longer than 2048 bytes.",
        ));
    }
    let s = found_mut(store, name)?;
    writable(s)?;
    s.description = description.to_owned();
    Ok(obj(json!({"SecretName": name})))
}

fn set_enabled(
    store: &mut Store,
    p: &Params,
    enabled: bool,
) -> Result<Map<String, Value>, ApiError> {
    let name = p.name()?;
    let s = found_mut(store, name)?;
    writable(s)?;
    s.status = if enabled { "Enabled" } else { "Disabled" };
    Ok(Map::new())
}

fn delete(store: &mut Store, p: &Params) -> Result<Map<String, Value>, ApiError> {
    let name = p.name()?;
    let window = p.opt_int("RecoveryWindowInDays")?.unwrap_or(0);
    if !(0..=30).contains(&window) {
        return Err(err(
            "InvalidParameterValue",
            "RecoveryWindowInDays must be between 0 and 30.",
        ));
    }
    let s = found_mut(store, name)?;
    if s.status != "Disabled" {
        return Err(err(
            "OperationDenied",
            "A secret must be disabled before it is deleted.",
        ));
    }
    let delete_time = if window == 0 {
        store.secrets.remove(name);
        now()
    } else {
        let t = now() + window * 86_400;
        s.status = "PendingDelete";
        s.delete_time = t;
        t
    };
    Ok(obj(json!({"SecretName": name, "DeleteTime": delete_time})))
}

fn restore(store: &mut Store, p: &Params) -> Result<Map<String, Value>, ApiError> {
    let name = p.name()?;
    let s = found_mut(store, name)?;
    if s.status != "PendingDelete" {
        return Err(err(
            "OperationDenied",
            "Only a secret scheduled for deletion can be restored.",
        ));
    }
    s.status = "Disabled";
    s.delete_time = 0;
    Ok(obj(json!({"SecretName": name})))
}

fn delete_version(store: &mut Store, p: &Params) -> Result<Map<String, Value>, ApiError> {
    let name = p.name()?;
    let version = p.version(true)?.unwrap_or_default().to_owned();
    let s = found_mut(store, name)?;
    writable(s)?;
    let before = s.versions.len();
    s.versions.retain(|v| v.id != version);
    if s.versions.len() == before {
        return Err(err(
            "ResourceNotFound",
            format!("The version {version} does not exist."),
        ));
    }
    Ok(obj(json!({"SecretName": name, "VersionId": version})))
}
