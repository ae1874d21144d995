//! A development-only emulator of the Service Fabric secret resource API (`/Resources/Secrets`, api-version
//! `6.4-preview`), for tests on a machine where no Service Fabric cluster can run. Its fidelity is checked by
//! driving it with the official Python SDK (`tests/python/servicefabric/`).
//!
//! What it models:
//! - secret resources (`kind`, `contentType`, `description`, read-only `status` and `statusDetails`); `kind` and
//!   `contentType` cannot change once created (400 `FABRIC_E_SECRET_TYPE_CANNOT_BE_CHANGED`);
//! - immutable value versions: re-adding a version with the same value answers 200, with another value 409
//!   `FABRIC_E_SECRET_VERSION_ALREADY_EXISTS`; reads return `"value": null`; plaintext only through
//!   `POST .../values/{version}/list_value`;
//! - errors as FabricError `{"Error":{"Code","Message"}}`;
//! - the asynchronous life of a resource, chosen by a prefix of its name:
//!   - no prefix: 201 with `status: Creating`, `Ready` after `--creating-delay-ms`;
//!   - `accepted-`: 202 with an empty body, `Creating`, then `Ready` after the delay;
//!   - `instant-`: 200 with `status: Ready` at once;
//!   - `failing-`: 201 `Creating`, then `Failed` with a `statusDetails` after the delay.
//!
//! Listeners: `--port` serves plain HTTP without authentication (an unsecured development cluster);
//! `--token-port` serves HTTPS and requires `Authorization: Bearer <token>` (an Entra-secured cluster);
//! `--mtls-port` serves HTTPS and requires a client certificate issued by `--client-ca` (a certificate-secured
//! cluster). All listeners share one store.
//!
//! Test controls (every listener, no authentication):
//! - `POST /_emulator/faults` `{"secret": name, "method": "PUT"?, "status": 503, "code": "..."?, "retryAfter": 1?,
//!   "times": 2}` makes the next `times` matching requests on that secret answer with that status (a FabricError
//!   body, and `Retry-After` when given). Scoping faults to one secret keeps parallel tests apart.
//! - `POST /_emulator/central-secret-service` `{"removing": true}` puts the Central Secret Service in its
//!   `Removing` state, where every secret call answers 401; `{"removing": false}` restores it. It affects every
//!   secret, so only sequential tests may use it.
//! - `GET /_emulator/stats/{name}` answers `{"writes": n, "reads": n}`: requests that reached the store for
//!   that secret (PUT/DELETE/POST count as writes, except `list_value`, which is a read).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use clap::Parser;
use secretsync_emulators::tls;
use serde::Deserialize;
use serde_json::{Value, json};

const API_VERSION: &str = "6.4-preview";

#[derive(Parser, Debug)]
#[command(about = "Emulator of the Service Fabric secret resource API, for tests")]
struct Args {
    /// Plain-HTTP port without authentication.
    #[arg(long)]
    port: u16,
    /// HTTPS port requiring a bearer token.
    #[arg(long)]
    token_port: Option<u16>,
    /// HTTPS port requiring a client certificate.
    #[arg(long)]
    mtls_port: Option<u16>,
    /// Server certificate chain (PEM) for the HTTPS listeners.
    #[arg(long)]
    tls_cert: Option<PathBuf>,
    /// Server private key (PEM) for the HTTPS listeners.
    #[arg(long)]
    tls_key: Option<PathBuf>,
    /// CA certificate (PEM) that client certificates must chain to.
    #[arg(long)]
    client_ca: Option<PathBuf>,
    /// File holding the bearer token the token listener accepts.
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// How long a new resource stays `Creating`.
    #[arg(long, default_value_t = 300)]
    creating_delay_ms: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Life {
    Ready,
    Creating,
    Failing,
}

struct Resource {
    kind: String,
    content_type: Option<String>,
    description: Option<String>,
    life: Life,
    created: Instant,
    /// Version name -> (insertion order, value).
    values: BTreeMap<String, (u64, String)>,
}

impl Resource {
    fn status(&self, delay: Duration) -> (&'static str, Option<String>) {
        let settled = self.created.elapsed() >= delay;
        match (self.life, settled) {
            (Life::Ready, _) | (Life::Creating, true) => ("Ready", None),
            (Life::Creating, false) | (Life::Failing, false) => ("Creating", None),
            (Life::Failing, true) => (
                "Failed",
                Some("emulated failure: the secret resource could not be provisioned".to_owned()),
            ),
        }
    }

    fn describe(&self, name: &str, delay: Duration) -> Value {
        let (status, details) = self.status(delay);
        let mut properties = serde_json::Map::new();
        properties.insert("kind".into(), json!(self.kind));
        if let Some(ct) = &self.content_type {
            properties.insert("contentType".into(), json!(ct));
        }
        if let Some(d) = &self.description {
            properties.insert("description".into(), json!(d));
        }
        properties.insert("status".into(), json!(status));
        if let Some(d) = details {
            properties.insert("statusDetails".into(), json!(d));
        }
        json!({"name": name, "properties": properties})
    }
}

#[derive(Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
struct Fault {
    secret: String,
    #[serde(default)]
    method: Option<String>,
    status: u16,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    retry_after: Option<u64>,
    #[serde(default = "one")]
    times: u32,
}

fn one() -> u32 {
    1
}

#[derive(Default)]
struct Counters {
    writes: u64,
    reads: u64,
}

#[derive(Default)]
struct Store {
    resources: HashMap<String, Resource>,
    faults: Vec<Fault>,
    counters: HashMap<String, Counters>,
    seq: u64,
    /// The Central Secret Service is being removed: every secret call is refused.
    removing: bool,
}

#[derive(Clone)]
struct AppState {
    store: Arc<Mutex<Store>>,
    delay: Duration,
}

impl AppState {
    fn lock(&self) -> std::sync::MutexGuard<'_, Store> {
        // A panic in one handler must not take the whole emulator down with a poisoned lock.
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn fabric_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"Error": {"Code": code, "Message": message}})),
    )
        .into_response()
}

fn not_found(what: &str) -> Response {
    fabric_error(
        StatusCode::NOT_FOUND,
        "FABRIC_E_SECRET_NOT_FOUND",
        &format!("{what} does not exist"),
    )
}

fn invalid(message: &str) -> Response {
    fabric_error(StatusCode::BAD_REQUEST, "E_INVALIDARG", message)
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && name.len() <= 255
}

#[derive(Deserialize)]
struct ApiVersion {
    #[serde(rename = "api-version")]
    api_version: Option<String>,
}

/// The secret name a request under `/Resources/Secrets/{name}` is about.
fn secret_of(path: &str) -> Option<&str> {
    path.strip_prefix("/Resources/Secrets/")
        .map(|rest| rest.split('/').next().unwrap_or(rest))
        .filter(|n| !n.is_empty())
}

/// Checks api-version, applies injected faults and counts requests, before any handler runs.
/// Logs one line per request (method, path, status; never a body, so never a value) to the test-bed log.
async fn log_line(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let response = next.run(req).await;
    eprintln!("{method} {path} {}", response.status().as_u16());
    response
}

async fn gate(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    if path.starts_with("/Resources/Secrets") {
        let version = Query::<ApiVersion>::try_from_uri(req.uri())
            .ok()
            .and_then(|q| q.0.api_version);
        if version.as_deref() != Some(API_VERSION) {
            return invalid("api-version must be '6.4-preview' for secret resources");
        }
    }
    if path.starts_with("/Resources/Secrets") && app.lock().removing {
        return fabric_error(
            StatusCode::UNAUTHORIZED,
            "E_ACCESSDENIED",
            "the Central Secret Service is being removed",
        );
    }
    if let Some(name) = secret_of(&path) {
        let method = req.method().clone();
        let is_read = method == Method::GET || path.ends_with("/list_value");
        let fault = {
            let mut store = app.lock();
            let c = store.counters.entry(name.to_owned()).or_default();
            if is_read {
                c.reads += 1;
            } else {
                c.writes += 1;
            }
            let hit = store.faults.iter().position(|f| {
                f.secret == name
                    && f.method
                        .as_deref()
                        .is_none_or(|m| m.eq_ignore_ascii_case(method.as_str()))
            });
            hit.map(|i| {
                let f = store.faults[i].clone();
                store.faults[i].times -= 1;
                if store.faults[i].times == 0 {
                    store.faults.remove(i);
                }
                f
            })
        };
        if let Some(f) = fault {
            let status =
                StatusCode::from_u16(f.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let code = f
                .code
                .unwrap_or_else(|| "FABRIC_E_CENTRAL_SECRET_SERVICE_GENERIC".to_owned());
            let mut resp = fabric_error(status, &code, "injected fault");
            if let Some(s) = f.retry_after {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(s));
            }
            return resp;
        }
    }
    next.run(req).await
}

#[derive(Deserialize)]
struct SecretBody {
    name: Option<String>,
    properties: Option<SecretProps>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SecretProps {
    kind: Option<String>,
    content_type: Option<String>,
    description: Option<String>,
}

async fn put_secret(
    State(app): State<AppState>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    if !valid_name(&name) {
        return invalid("secret resource names are letters, digits, '.', '_' and '-'");
    }
    let Ok(body) = serde_json::from_slice::<SecretBody>(&body) else {
        return invalid("the body is not a SecretResourceDescription");
    };
    if body.name.as_deref().is_some_and(|n| n != name) {
        return invalid("the name in the body differs from the name in the path");
    }
    let Some(props) = body.properties else {
        return invalid("properties are required");
    };
    let kind = match props.kind.as_deref() {
        Some(k @ ("inlinedValue" | "keyVaultVersionedReference")) => k.to_owned(),
        _ => return invalid("properties.kind must be inlinedValue or keyVaultVersionedReference"),
    };
    let mut store = app.lock();
    if let Some(existing) = store.resources.get_mut(&name) {
        if existing.kind != kind || existing.content_type != props.content_type {
            return fabric_error(
                StatusCode::BAD_REQUEST,
                "FABRIC_E_SECRET_TYPE_CANNOT_BE_CHANGED",
                "the kind and contentType of a secret resource cannot be changed",
            );
        }
        existing.description = props.description;
        return (
            StatusCode::OK,
            axum::Json(existing.describe(&name, app.delay)),
        )
            .into_response();
    }
    let (life, reply) = if name.starts_with("instant-") {
        (Life::Ready, StatusCode::OK)
    } else if name.starts_with("accepted-") {
        (Life::Creating, StatusCode::ACCEPTED)
    } else if name.starts_with("failing-") {
        (Life::Failing, StatusCode::CREATED)
    } else {
        (Life::Creating, StatusCode::CREATED)
    };
    let resource = Resource {
        kind,
        content_type: props.content_type,
        description: props.description,
        life,
        created: Instant::now(),
        values: BTreeMap::new(),
    };
    // The reply is built before the clock can move on: a fresh resource is reported as it was created.
    let mut described = resource.describe(&name, app.delay);
    if life != Life::Ready {
        described["properties"]["status"] = json!("Creating");
        if let Some(p) = described["properties"].as_object_mut() {
            p.remove("statusDetails");
        }
    }
    store.resources.insert(name, resource);
    if reply == StatusCode::ACCEPTED {
        return StatusCode::ACCEPTED.into_response();
    }
    (reply, axum::Json(described)).into_response()
}

async fn get_secret(State(app): State<AppState>, Path(name): Path<String>) -> Response {
    let store = app.lock();
    match store.resources.get(&name) {
        Some(r) => axum::Json(r.describe(&name, app.delay)).into_response(),
        None => not_found("the secret resource"),
    }
}

async fn delete_secret(State(app): State<AppState>, Path(name): Path<String>) -> Response {
    let mut store = app.lock();
    match store.resources.remove(&name) {
        Some(_) => StatusCode::OK.into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    }
}

async fn list_secrets(State(app): State<AppState>) -> Response {
    let store = app.lock();
    let mut names: Vec<&String> = store.resources.keys().collect();
    names.sort();
    let items: Vec<Value> = names
        .into_iter()
        .map(|n| store.resources[n].describe(n, app.delay))
        .collect();
    axum::Json(json!({"ContinuationToken": "", "Items": items})).into_response()
}

#[derive(Deserialize)]
struct ValueBody {
    name: Option<String>,
    properties: Option<ValueProps>,
}

#[derive(Deserialize)]
struct ValueProps {
    value: Option<String>,
}

fn value_description(version: &str) -> Value {
    json!({"name": version, "properties": {"value": null}})
}

async fn put_value(
    State(app): State<AppState>,
    Path((name, version)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    if !valid_name(&version) {
        return invalid("secret value names are letters, digits, '.', '_' and '-'");
    }
    let Ok(body) = serde_json::from_slice::<ValueBody>(&body) else {
        return invalid("the body is not a SecretValueResourceDescription");
    };
    if body.name.as_deref().is_some_and(|n| n != version) {
        return invalid("the name in the body differs from the name in the path");
    }
    let Some(value) = body.properties.and_then(|p| p.value) else {
        return fabric_error(
            StatusCode::BAD_REQUEST,
            "FABRIC_E_SECRET_INVALID",
            "properties.value is required for an inlined secret value",
        );
    };
    let mut store = app.lock();
    store.seq += 1;
    let seq = store.seq;
    let Some(resource) = store.resources.get_mut(&name) else {
        return not_found("the secret resource");
    };
    match resource.values.get(&version) {
        Some((_, existing)) if *existing == value => {
            (StatusCode::OK, axum::Json(value_description(&version))).into_response()
        }
        Some(_) => fabric_error(
            StatusCode::CONFLICT,
            "FABRIC_E_SECRET_VERSION_ALREADY_EXISTS",
            "a secret value version cannot be changed once created",
        ),
        None => {
            resource.values.insert(version.clone(), (seq, value));
            (StatusCode::CREATED, axum::Json(value_description(&version))).into_response()
        }
    }
}

async fn get_value(
    State(app): State<AppState>,
    Path((name, version)): Path<(String, String)>,
) -> Response {
    let store = app.lock();
    match store.resources.get(&name) {
        None => not_found("the secret resource"),
        Some(r) if r.values.contains_key(&version) => {
            axum::Json(value_description(&version)).into_response()
        }
        Some(_) => not_found("the secret value"),
    }
}

async fn delete_value(
    State(app): State<AppState>,
    Path((name, version)): Path<(String, String)>,
) -> Response {
    let mut store = app.lock();
    match store.resources.get_mut(&name) {
        None => not_found("the secret resource"),
        Some(r) => match r.values.remove(&version) {
            Some(_) => StatusCode::OK.into_response(),
            None => StatusCode::NO_CONTENT.into_response(),
        },
    }
}

async fn list_values(State(app): State<AppState>, Path(name): Path<String>) -> Response {
    let store = app.lock();
    let Some(r) = store.resources.get(&name) else {
        return not_found("the secret resource");
    };
    let mut versions: Vec<(&u64, &String)> = r.values.iter().map(|(v, (s, _))| (s, v)).collect();
    versions.sort();
    let items: Vec<Value> = versions
        .into_iter()
        .map(|(_, v)| value_description(v))
        .collect();
    axum::Json(json!({"ContinuationToken": "", "Items": items})).into_response()
}

async fn show_value(
    State(app): State<AppState>,
    Path((name, version)): Path<(String, String)>,
) -> Response {
    let store = app.lock();
    match store.resources.get(&name) {
        None => not_found("the secret resource"),
        Some(r) => match r.values.get(&version) {
            Some((_, v)) => axum::Json(json!({"value": v})).into_response(),
            None => not_found("the secret value"),
        },
    }
}

async fn add_fault(State(app): State<AppState>, axum::Json(fault): axum::Json<Fault>) -> Response {
    if fault.times == 0 {
        return invalid("times must be at least 1");
    }
    app.lock().faults.push(fault);
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
struct CssState {
    removing: bool,
}

async fn set_css(State(app): State<AppState>, axum::Json(state): axum::Json<CssState>) -> Response {
    app.lock().removing = state.removing;
    StatusCode::NO_CONTENT.into_response()
}

async fn stats(State(app): State<AppState>, Path(name): Path<String>) -> Response {
    let store = app.lock();
    let (writes, reads) = store
        .counters
        .get(&name)
        .map_or((0, 0), |c| (c.writes, c.reads));
    axum::Json(json!({"writes": writes, "reads": reads})).into_response()
}

fn router(app: AppState) -> Router {
    Router::new()
        .route("/Resources/Secrets", get(list_secrets))
        .route(
            "/Resources/Secrets/{name}",
            put(put_secret).get(get_secret).delete(delete_secret),
        )
        .route("/Resources/Secrets/{name}/values", get(list_values))
        .route(
            "/Resources/Secrets/{name}/values/{version}",
            put(put_value).get(get_value).delete(delete_value),
        )
        .route(
            "/Resources/Secrets/{name}/values/{version}/list_value",
            post(show_value),
        )
        .route("/_emulator/faults", post(add_fault))
        .route("/_emulator/stats/{name}", get(stats))
        .route("/_emulator/central-secret-service", post(set_css))
        .layer(middleware::from_fn_with_state(app.clone(), gate))
        .layer(middleware::from_fn(log_line))
        .with_state(app)
}

/// Requires `Authorization: Bearer <token>` on the store API (not on the test controls).
async fn require_token(
    State(token): State<Arc<String>>,
    headers: HeaderMap,
    req: Request,
    next: Next,
) -> Response {
    if req.uri().path().starts_with("/_emulator/") {
        return next.run(req).await;
    }
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "));
    if presented != Some(token.as_str()) {
        return fabric_error(
            StatusCode::UNAUTHORIZED,
            "E_ACCESSDENIED",
            "a valid bearer token is required",
        );
    }
    next.run(req).await
}

fn tls_config(
    args: &Args,
    client_auth: bool,
) -> Result<Arc<rustls::ServerConfig>, Box<dyn std::error::Error>> {
    let cert = args.tls_cert.as_ref().ok_or("--tls-cert is required")?;
    let key = args.tls_key.as_ref().ok_or("--tls-key is required")?;
    let client_ca = if client_auth {
        Some(args.client_ca.as_ref().ok_or("--client-ca is required")?)
    } else {
        None
    };
    tls::server_config(cert, key, client_ca.map(PathBuf::as_path))
}

async fn bind(port: u16) -> tokio::net::TcpListener {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("sf-emulator: cannot listen on {addr}: {e}");
            std::process::exit(1)
        }
    }
}

fn fail(what: &str, e: impl std::fmt::Display) -> ! {
    eprintln!("sf-emulator: {what}: {e}");
    std::process::exit(1)
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let app = AppState {
        store: Arc::new(Mutex::new(Store::default())),
        delay: Duration::from_millis(args.creating_delay_ms),
    };
    let plain = router(app.clone());

    if let Some(port) = args.token_port {
        let path = args
            .token_file
            .as_ref()
            .unwrap_or_else(|| fail("--token-port", "needs --token-file"));
        let token = std::fs::read_to_string(path).unwrap_or_else(|e| fail("reading the token", e));
        let token = Arc::new(token.trim().to_owned());
        let config = tls_config(&args, false).unwrap_or_else(|e| fail("TLS setup", e));
        let routes =
            router(app.clone()).layer(middleware::from_fn_with_state(token, require_token));
        let listener = bind(port).await;
        tokio::spawn(tls::serve(listener, config, routes));
        eprintln!("sf-emulator: bearer-token HTTPS on 127.0.0.1:{port}");
    }
    if let Some(port) = args.mtls_port {
        let config = tls_config(&args, true).unwrap_or_else(|e| fail("TLS setup", e));
        let listener = bind(port).await;
        tokio::spawn(tls::serve(listener, config, router(app.clone())));
        eprintln!("sf-emulator: mutual-TLS HTTPS on 127.0.0.1:{port}");
    }

    let listener = bind(args.port).await;
    eprintln!("sf-emulator: plain HTTP on 127.0.0.1:{}", args.port);
    if let Err(e) = axum::serve(listener, plain).await {
        fail("serving", e)
    }
}
