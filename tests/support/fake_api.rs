//! A Kubernetes API server in the test process: objects in a map by their API path, answering what the
//! controller's reconcile asks of a real one (GET, LIST, create, merge patch, server-side apply of `status`,
//! DELETE with finalizers, TokenRequests and TokenReviews), and recording every request so that a test can say what the
//! controller wrote and what it never did.
//!
//! Generic rather than scripted: a test puts objects in and reads them back, and is not written against the
//! order of the controller's calls. What it approximates: a merge patch is RFC 7386 with the `resourceVersion`
//! precondition; a server-side apply replaces the fields it names (the controller applies the whole `status`
//! with one field manager, which is what that amounts to); no admission, no schema, no watch.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use kube::client::Body;
use serde_json::{Value, json};

/// One request as the server received it.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    /// The path without its query.
    pub path: String,
    pub query: String,
    pub content_type: String,
    /// The body as JSON (`Null` when empty or not JSON).
    pub body: Value,
    /// The HTTP status the server answered with.
    pub answered: u16,
}

impl Request {
    /// Whether this request changed something (any method but GET).
    pub fn writes(&self) -> bool {
        self.method != "GET"
    }
}

/// The next `times` requests of `method` whose path ends with `path_suffix` are answered with `code`.
struct Fault {
    method: String,
    path_suffix: String,
    code: u16,
    times: u32,
}

#[derive(Default)]
struct State {
    /// Objects by their path (`/api/v1/namespaces/a/secrets/s`).
    objects: BTreeMap<String, Value>,
    requests: Vec<Request>,
    faults: Vec<Fault>,
    resource_version: u64,
    uids: u64,
    /// ServiceAccounts (`namespace/name`) whose TokenRequests are refused (403).
    tokens_refused: Vec<String>,
    /// Whether TokenReviews find the tokens they are shown valid for this API server.
    tokens_accepted: bool,
}

/// The fake API server; clones share one state.
#[derive(Clone, Default)]
pub struct FakeApi {
    state: Arc<Mutex<State>>,
}

/// Where a request goes: the object's path, its collection, and a subresource.
struct Target {
    collection: String,
    name: Option<String>,
    subresource: Option<String>,
}

impl Target {
    fn parse(path: &str) -> Option<Target> {
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        let prefix_len = match parts.first() {
            Some(&"api") => 2,
            Some(&"apis") => 3,
            _ => return None,
        };
        let (prefix, rest) = parts.split_at(prefix_len.min(parts.len()));
        let mut collection = format!("/{}", prefix.join("/"));
        // `/api/v1/namespaces/x` is the Namespace itself; `/api/v1/namespaces/x/secrets` a namespaced collection.
        let rest = match rest {
            ["namespaces", ns, more @ ..] if !more.is_empty() => {
                collection.push_str(&format!("/namespaces/{ns}"));
                more
            }
            other => other,
        };
        let (resource, name, subresource) = match rest {
            [resource] => (resource, None, None),
            [resource, name] => (resource, Some(name), None),
            [resource, name, sub] => (resource, Some(name), Some(sub)),
            _ => return None,
        };
        collection.push_str(&format!("/{resource}"));
        Some(Target {
            collection,
            name: name.map(|n| (*n).to_owned()),
            subresource: subresource.map(|s| (*s).to_owned()),
        })
    }

    fn object(&self) -> Option<String> {
        self.name
            .as_ref()
            .map(|n| format!("{}/{n}", self.collection))
    }
}

impl FakeApi {
    pub fn new() -> FakeApi {
        FakeApi::default()
    }

    /// A kube client whose every request this server answers.
    pub fn client(&self) -> kube::Client {
        kube::Client::new(self.clone(), "default")
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    // ---- objects ----

    /// Puts `object` at `path` as it is, with a fresh resourceVersion (and a uid and creation time when it has
    /// none), and returns it as stored.
    pub fn put(&self, path: &str, mut object: Value) -> Value {
        let mut state = self.lock();
        stamp(&mut state, &mut object);
        state.objects.insert(path.to_owned(), object.clone());
        object
    }

    pub fn get(&self, path: &str) -> Option<Value> {
        self.lock().objects.get(path).cloned()
    }

    /// Removes the object at `path` behind the controller's back.
    pub fn remove(&self, path: &str) {
        self.lock().objects.remove(path);
    }

    /// Every object of the collection at `path` (`/apis/events.k8s.io/v1/namespaces/a/events`).
    pub fn list(&self, collection: &str) -> Vec<Value> {
        let prefix = format!("{collection}/");
        self.lock()
            .objects
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix) && !k[prefix.len()..].contains('/'))
            .map(|(_, v)| v.clone())
            .collect()
    }

    // ---- scripting ----

    /// The next `times` requests of `method` to a path ending with `path_suffix` are answered with `code`.
    pub fn fail_next(&self, method: &str, path_suffix: &str, code: u16, times: u32) {
        self.lock().faults.push(Fault {
            method: method.to_owned(),
            path_suffix: path_suffix.to_owned(),
            code,
            times,
        });
    }

    /// TokenRequests for the ServiceAccount `namespace/name` are refused (403), as without a Role granting them.
    pub fn refuse_tokens(&self, namespace: &str, name: &str) {
        self.lock()
            .tokens_refused
            .push(format!("{namespace}/{name}"));
    }

    /// TokenReviews answer that this API server accepts the tokens it issues (their audience is its own).
    pub fn accept_own_tokens(&self) {
        self.lock().tokens_accepted = true;
    }

    // ---- inspection ----

    pub fn requests(&self) -> Vec<Request> {
        self.lock().requests.clone()
    }

    /// Forgets the requests recorded so far (to look at one reconcile's alone).
    pub fn clear_requests(&self) {
        self.lock().requests.clear();
    }

    // ---- the server ----

    fn answer(
        &self,
        method: &str,
        path: &str,
        query: &str,
        content_type: &str,
        body: Value,
    ) -> (u16, Value) {
        let mut state = self.lock();
        if let Some(fault) = state
            .faults
            .iter_mut()
            .find(|f| f.method == method && path.ends_with(&f.path_suffix) && f.times > 0)
        {
            fault.times -= 1;
            let code = fault.code;
            state.faults.retain(|f| f.times > 0);
            return failure(code, "scripted by the test");
        }
        let Some(target) = Target::parse(path) else {
            return failure(404, "no such path");
        };
        match (method, &target.name, target.subresource.as_deref()) {
            ("GET", None, _) => list_of(&state, &target.collection, query),
            ("GET", Some(_), sub) => {
                let key = target.object().unwrap_or_default();
                match (state.objects.get(&key), sub) {
                    (Some(obj), None | Some("status")) => (200, obj.clone()),
                    _ => failure(404, "not found"),
                }
            }
            ("POST", None, _) if target.collection.ends_with("/tokenreviews") => {
                let mut review = body;
                review["status"] = json!({"authenticated": state.tokens_accepted});
                (201, review)
            }
            ("POST", None, _) => create(&mut state, &target.collection, body),
            ("POST", Some(name), Some("token")) => token(&state, &target.collection, name, body),
            ("PATCH", Some(_), sub) => {
                let key = target.object().unwrap_or_default();
                patch(&mut state, &key, sub, content_type, body)
            }
            ("DELETE", Some(_), None) => {
                let key = target.object().unwrap_or_default();
                delete(&mut state, &key)
            }
            _ => failure(405, "not served by the fake API server"),
        }
    }

    fn record(&self, request: Request) {
        self.lock().requests.push(request);
    }
}

fn stamp(state: &mut State, object: &mut Value) {
    state.resource_version += 1;
    let version = state.resource_version.to_string();
    if !object["metadata"].is_object() {
        object["metadata"] = json!({});
    }
    let meta = &mut object["metadata"];
    meta["resourceVersion"] = json!(version);
    if meta["uid"].is_null() {
        state.uids += 1;
        meta["uid"] = json!(format!("00000000-0000-4000-8000-{:012x}", state.uids));
    }
    if meta["creationTimestamp"].is_null() {
        meta["creationTimestamp"] = json!("2026-01-01T00:00:00Z");
    }
}

fn failure(code: u16, message: &str) -> (u16, Value) {
    let reason = match code {
        404 => "NotFound",
        409 => "Conflict",
        403 => "Forbidden",
        405 => "MethodNotAllowed",
        _ => "InternalError",
    };
    (
        code,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": message, "reason": reason, "code": code}),
    )
}

fn list_of(state: &State, collection: &str, query: &str) -> (u16, Value) {
    let prefix = format!("{collection}/");
    let selector = query
        .split('&')
        .find_map(|p| p.strip_prefix("labelSelector="))
        .map(decode)
        .unwrap_or_default();
    let items: Vec<Value> = state
        .objects
        .iter()
        .filter(|(k, _)| k.starts_with(&prefix) && !k[prefix.len()..].contains('/'))
        .filter(|(_, v)| selected(&selector, &v["metadata"]["labels"]))
        .map(|(_, v)| v.clone())
        .collect();
    // Pages as the API server gives them: `limit` items, and a `continue` token while more are left (here, the
    // offset of the next page).
    let param = |name: &str| {
        query
            .split('&')
            .find_map(|p| p.strip_prefix(name))
            .and_then(|v| v.parse::<usize>().ok())
    };
    let from = param("continue=").unwrap_or(0).min(items.len());
    let to = param("limit=").map_or(items.len(), |n| (from + n).min(items.len()));
    let next = (to < items.len()).then(|| to.to_string());
    let items = items[from..to].to_vec();
    (
        200,
        json!({"kind": "List", "apiVersion": "v1",
               "metadata": {"resourceVersion": state.resource_version.to_string(), "continue": next},
               "items": items}),
    )
}

/// A label selector's equality (`k=v`, `k!=v`) and existence (`k`, `!k`) terms, as the API server reads them.
fn selected(selector: &str, labels: &Value) -> bool {
    selector.split(',').filter(|t| !t.is_empty()).all(|term| {
        if let Some((k, v)) = term.split_once("!=") {
            labels[k].as_str() != Some(v)
        } else if let Some((k, v)) = term.split_once('=') {
            labels[k.trim_end_matches('=')].as_str() == Some(v)
        } else if let Some(k) = term.strip_prefix('!') {
            labels[k].is_null()
        } else {
            !labels[term].is_null()
        }
    })
}

/// `%XX` and `+` of a query parameter.
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn create(state: &mut State, collection: &str, mut body: Value) -> (u16, Value) {
    let name = match body["metadata"]["name"].as_str() {
        Some(name) => name.to_owned(),
        None => match body["metadata"]["generateName"].as_str() {
            Some(prefix) => format!("{prefix}{:05x}", state.uids + 1),
            None => return failure(422, "metadata.name is required"),
        },
    };
    let key = format!("{collection}/{name}");
    if state.objects.contains_key(&key) {
        return failure(409, "already exists");
    }
    body["metadata"]["name"] = json!(name);
    stamp(state, &mut body);
    state.objects.insert(key, body.clone());
    (201, body)
}

fn token(state: &State, collection: &str, name: &str, mut body: Value) -> (u16, Value) {
    let namespace = collection.split('/').nth_back(1).unwrap_or_default();
    if state
        .tokens_refused
        .iter()
        .any(|r| *r == format!("{namespace}/{name}"))
    {
        return failure(403, "cannot create resource serviceaccounts/token");
    }
    body["status"] = json!({
        "token": format!("token-for-{namespace}-{name}"),
        "expirationTimestamp": "2099-01-01T00:00:00Z",
    });
    (201, body)
}

fn patch(
    state: &mut State,
    key: &str,
    subresource: Option<&str>,
    content_type: &str,
    body: Value,
) -> (u16, Value) {
    let apply = content_type.starts_with("application/apply-patch");
    let Some(mut object) = state.objects.get(key).cloned() else {
        return failure(404, "not found");
    };
    let wanted = body["metadata"]["resourceVersion"].as_str();
    if wanted.is_some() && wanted != object["metadata"]["resourceVersion"].as_str() {
        return failure(409, "the object has been modified");
    }
    match (subresource, apply) {
        // The controller applies its whole status as one field manager: what it leaves out it no longer owns.
        (Some("status"), true) => object["status"] = body["status"].clone(),
        (Some("status"), false) => merge(&mut object["status"], &body["status"]),
        (None, true) => merge(&mut object, &body),
        (None, false) => {
            let mut body = body;
            if let Some(meta) = body["metadata"].as_object_mut() {
                meta.remove("resourceVersion");
            }
            merge(&mut object, &body)
        }
        _ => return failure(404, "no such subresource"),
    }
    stamp(state, &mut object);
    let finalized = object["metadata"]["deletionTimestamp"].is_string()
        && object["metadata"]["finalizers"]
            .as_array()
            .is_none_or(Vec::is_empty);
    if finalized {
        state.objects.remove(key);
    } else {
        state.objects.insert(key.to_owned(), object.clone());
    }
    (200, object)
}

fn delete(state: &mut State, key: &str) -> (u16, Value) {
    let Some(mut object) = state.objects.get(key).cloned() else {
        return failure(404, "not found");
    };
    let held = object["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|f| !f.is_empty());
    if held {
        if object["metadata"]["deletionTimestamp"].is_null() {
            object["metadata"]["deletionTimestamp"] = json!(now());
            stamp(state, &mut object);
            state.objects.insert(key.to_owned(), object.clone());
        }
    } else {
        state.objects.remove(key);
    }
    (200, object)
}

/// RFC 7386: `null` removes, objects merge, anything else replaces.
pub fn merge(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(fields) => {
            if !target.is_object() {
                *target = json!({});
            }
            if let Value::Object(target) = target {
                for (k, v) in fields {
                    if v.is_null() {
                        target.remove(k);
                    } else {
                        merge(target.entry(k.clone()).or_insert(Value::Null), v);
                    }
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// The current time as the API server writes timestamps.
pub fn now() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .round(k8s_openapi::jiff::Unit::Second)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

impl tower_service::Service<http::Request<Body>> for FakeApi {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let api = self.clone();
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let bytes = body.collect_bytes().await.unwrap_or_default();
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let method = parts.method.as_str().to_owned();
            let path = parts.uri.path().to_owned();
            let query = parts.uri.query().unwrap_or_default().to_owned();
            let content_type = parts
                .headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let (code, answer) = api.answer(&method, &path, &query, &content_type, body.clone());
            api.record(Request {
                method,
                path,
                query,
                content_type,
                body,
                answered: code,
            });
            let response = http::Response::builder()
                .status(code)
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(Body::from(answer.to_string().into_bytes()));
            // A builder given a valid status and header cannot fail; answer 500 rather than panic if it did.
            Ok(response.unwrap_or_else(|_| {
                let mut fallback = http::Response::new(Body::from(Vec::new()));
                *fallback.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
                fallback
            }))
        })
    }
}
