"""A stand-in for Azure Key Vault's secrets data plane and Microsoft Entra ID's token endpoint, for tests.

It exists because no third-party Key Vault emulator can be installed on this machine (see README.md). It follows
the wire facts of ../shared/research/protocols.md section 1 (paths, bodies, KeyVaultError codes, the 401
challenge, soft delete), and tests/python/azurekv proves with Microsoft's azure-keyvault-secrets and
azure-identity that those SDKs work against it.

One HTTPS listener serves:
  - the vault:       /secrets..., /deletedsecrets...   (bearer tokens from the endpoint below)
  - Entra ID:        /{tenant}/oauth2/v2.0/token, /{tenant}/v2.0/.well-known/openid-configuration
  - test controls:   /_standin/{stats,fault,token-ttl,revoke,reset}   (no auth; loopback only)

Logs one line per request: method, path, status. Never a body, a value or a token.
"""

import argparse
import base64
import hashlib
import json
import re
import secrets as rnd
import ssl
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization

API_VERSIONS = {"2016-10-01", "7.0", "7.1", "7.2", "7.3", "7.4", "7.5", "7.6", "2025-06-01", "2025-07-01", "2026-04-01"}
NAME = re.compile(r"^[0-9a-zA-Z-]{1,127}$")
MAX_VALUE = 25 * 1024
MAX_TAGS = 15
VAULT_SCOPE = "https://vault.azure.net/.default"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
READ_METHODS = {"GET"}


class State:
    def __init__(self, args, registry):
        self.lock = threading.RLock()
        self.base = f"https://127.0.0.1:{args.port}"
        self.tenant = registry["tenant"]
        self.clients = registry["clients"]
        self.delete_delay = args.delete_delay_ms / 1000.0
        self.purge_delay = args.purge_delay_ms / 1000.0
        self.token_ttl = 3600
        self.tokens = {}  # token -> (client_id, scope, expires_at)
        self.secrets = {}  # lower name -> record
        self.faults = []
        self.stats = {"tokens_issued": 0, "requests": {}}
        self.federated_subjects = {}  # client id -> the `sub` of every federated assertion presented to it
        self.certs = {}
        for cid, c in self.clients.items():
            if "certificate" in c:
                pem = open(c["certificate"], "rb").read()
                cert = x509.load_pem_x509_certificate(pem)
                der = cert.public_bytes(serialization.Encoding.DER)
                self.certs[cid] = (cert.public_key(), hashlib.sha1(der).digest(), hashlib.sha256(der).digest())
            if "federated" in c:
                c["federated"]["key"] = serialization.load_pem_public_key(
                    open(c["federated"]["public_key"], "rb").read()
                )


def now():
    return int(time.time())


def kv_error(status, code, message, inner=None):
    body = {"error": {"code": code, "message": message}}
    if inner:
        body["error"]["innererror"] = {"code": inner}
    return status, body


def oauth_error(status, error, description):
    return status, {
        "error": error,
        "error_description": f"{description}\r\nTrace ID: {uuid.uuid4()}\r\nCorrelation ID: {uuid.uuid4()}",
        "error_codes": [int(re.match(r"AADSTS(\d+)", description).group(1))],
    }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kv-standin"

    def log_message(self, fmt, *args):
        pass

    # ---- plumbing -------------------------------------------------------------------------------------------

    def send_json(self, status, body, headers=None):
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if body is not None:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)
        path = urlsplit(self.path).path
        print(f"{self.command} {path} {status}", flush=True)
        st = self.server.state
        with st.lock:
            key = f"{self.command} {status}"
            st.stats["requests"][key] = st.stats["requests"].get(key, 0) + 1

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def handle_any(self):
        st = self.server.state
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        raw = self.read_body()
        path = url.path
        if path.startswith("/_standin/"):
            return self.send_json(*self.control(path[len("/_standin/"):], raw))
        m = re.match(r"^/([^/]+)/oauth2/v2\.0/token$", path)
        if m and self.command == "POST":
            return self.send_json(*self.token(m.group(1), raw))
        m = re.match(r"^/([^/]+)/v2\.0/\.well-known/openid-configuration$", path)
        if m and self.command == "GET":
            return self.send_json(*self.openid(m.group(1)))
        if path == "/common/discovery/instance":
            return self.send_json(200, {"tenant_discovery_endpoint": f"{st.base}/{st.tenant}/v2.0/.well-known/openid-configuration", "metadata": []})
        fault = self.take_fault(path)
        if fault:
            headers = {"Retry-After": str(fault["retry_after"])} if fault.get("retry_after") is not None else {}
            return self.send_json(fault["status"], fault.get("body"), headers)
        # The vault: a challenge before anything else, as Key Vault does (SDKs send a body-less first request).
        client = self.authorized()
        if client is None:
            challenge = f'Bearer authorization="{st.base}/{st.tenant}", resource="https://vault.azure.net"'
            return self.send_json(
                *kv_error(401, "Unauthorized", "AKV10000: Request is missing a Bearer or PoP token."),
                headers={"WWW-Authenticate": challenge},
            )
        if query.get("api-version") not in API_VERSIONS:
            return self.send_json(*kv_error(400, "BadParameter", f"The specified version ({query.get('api-version')}) is not recognized. Consider using the latest supported version."))
        if self.command not in READ_METHODS and st.clients[client].get("role") != "officer":
            return self.send_json(*kv_error(403, "Forbidden", "Caller is not authorized to perform action on resource.", "ForbiddenByRbac"))
        with st.lock:
            self.settle()
            status, body = self.vault(path, query, raw)
        return self.send_json(status, body)

    do_GET = do_PUT = do_POST = do_PATCH = do_DELETE = handle_any

    def take_fault(self, path):
        st = self.server.state
        with st.lock:
            for f in st.faults:
                if f["count"] > 0 and path.startswith(f["path_prefix"]) and f.get("method", self.command) == self.command:
                    f["count"] -= 1
                    return f
        return None

    def authorized(self):
        st = self.server.state
        auth = self.headers.get("Authorization") or ""
        if not auth.startswith("Bearer "):
            return None
        with st.lock:
            entry = st.tokens.get(auth[len("Bearer "):].strip())
        if not entry:
            return None
        client, scope, expires = entry
        if scope != VAULT_SCOPE or time.time() >= expires:
            return None
        return client

    # ---- test controls ---------------------------------------------------------------------------------------

    def control(self, what, raw):
        st = self.server.state
        body = json.loads(raw) if raw else {}
        with st.lock:
            if what == "stats":
                return 200, {"tokens_issued": st.stats["tokens_issued"], "requests": st.stats["requests"]}
            if what == "fault":
                st.faults.append(body)
                return 200, {"ok": True}
            if what == "token-ttl":
                st.token_ttl = int(body["seconds"])
                return 200, {"ok": True}
            if what == "revoke":
                st.tokens.clear()
                return 200, {"ok": True}
            if what == "versions":
                rec = st.secrets.get(body["name"].lower())
                return 200, {"versions": [] if rec is None else [v["version"] for v in rec["versions"]], "state": None if rec is None else rec["state"]}
            if what == "federate":
                # An app registration with one federated identity credential (issuer, exact subject, the issuer's
                # public key in PEM), as an admin adds one in Entra ID for a Kubernetes ServiceAccount.
                cid = str(uuid.uuid4())
                st.clients[cid] = {"role": "officer", "federated": {
                    "issuer": body["issuer"], "subject": body["subject"],
                    "key": serialization.load_pem_public_key(body["public_key"].encode())}}
                return 200, {"client_id": cid}
            if what == "subjects":
                return 200, {"subjects": {cid: list(subs) for cid, subs in st.federated_subjects.items()}}
            if what == "reset":
                st.faults.clear()
                st.token_ttl = 3600
                return 200, {"ok": True}
        return 404, {"error": "unknown control"}

    # ---- Entra ID ---------------------------------------------------------------------------------------------

    def openid(self, tenant):
        st = self.server.state
        base = f"{st.base}/{tenant}"
        return 200, {
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "issuer": f"{base}/v2.0",
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "response_types_supported": ["code", "id_token", "token"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        }

    def token(self, tenant, raw):
        st = self.server.state
        form = {k: v[-1] for k, v in parse_qs(raw.decode(errors="replace")).items()}
        if tenant != st.tenant:
            return oauth_error(400, "invalid_request", f"AADSTS90002: Tenant '{tenant}' not found.")
        if form.get("grant_type") != "client_credentials":
            return oauth_error(400, "unsupported_grant_type", "AADSTS70003: The app requested an unsupported grant type.")
        cid = form.get("client_id", "")
        client = st.clients.get(cid)
        if client is None:
            return oauth_error(400, "unauthorized_client", f"AADSTS700016: Application with identifier '{cid}' was not found in the directory.")
        token_url = f"{st.base}/{tenant}/oauth2/v2.0/token"
        if "secret" in client:
            if not rnd.compare_digest(form.get("client_secret", ""), client["secret"]):
                return oauth_error(401, "invalid_client", "AADSTS7000215: Invalid client secret provided.")
        elif "certificate" in client or "federated" in client:
            if form.get("client_assertion_type") != ASSERTION_TYPE or not form.get("client_assertion"):
                return oauth_error(401, "invalid_client", "AADSTS7000216: 'client_assertion', 'client_secret' or 'request' is required.")
            problem = self.check_assertion(cid, client, form["client_assertion"], token_url)
            if problem:
                return oauth_error(401, "invalid_client", problem)
        scope = form.get("scope", "")
        with st.lock:
            token = "standin-" + rnd.token_hex(24)
            st.tokens[token] = (cid, scope, time.time() + st.token_ttl)
            st.stats["tokens_issued"] += 1
            ttl = st.token_ttl
        return 200, {"token_type": "Bearer", "expires_in": ttl, "ext_expires_in": ttl, "access_token": token}

    def check_assertion(self, cid, client, assertion, token_url):
        st = self.server.state
        try:
            header = jwt.get_unverified_header(assertion)
            if "certificate" in client:
                key, sha1, sha256 = st.certs[cid]
                b64 = lambda d: base64.urlsafe_b64encode(d).rstrip(b"=").decode()
                # Thumbprints are base64url, with or without padding (MSAL keeps it).
                if (header.get("x5t") or "").rstrip("=") != b64(sha1) and (header.get("x5t#S256") or "").rstrip("=") != b64(sha256):
                    return "AADSTS700027: The certificate with identifier used to sign the client assertion is not registered on application."
                claims = jwt.decode(assertion, key, algorithms=["RS256", "PS256"], audience=token_url, options={"require": ["exp", "iss", "sub", "aud"]})
                if claims["iss"] != cid or claims["sub"] != cid:
                    return "AADSTS700023: Client assertion audience claim does not match Realm issuer."
            else:
                fed = client["federated"]
                # Kubernetes signs ServiceAccount tokens with RS256 or ES256, depending on its key.
                claims = jwt.decode(assertion, fed["key"], algorithms=["RS256", "ES256"], audience="api://AzureADTokenExchange", issuer=fed["issuer"], options={"require": ["exp", "iss", "sub", "aud"]})
                with st.lock:
                    st.federated_subjects.setdefault(cid, []).append(claims["sub"])
                if claims["sub"] != fed["subject"]:
                    return "AADSTS700213: No matching federated identity record found for presented assertion subject."
        except jwt.ExpiredSignatureError:
            return "AADSTS700024: Client assertion is not within its valid time range."
        except jwt.InvalidTokenError as e:
            return f"AADSTS700027: Client assertion failed signature validation. ({type(e).__name__})"
        return None

    # ---- the vault --------------------------------------------------------------------------------------------

    def settle(self):
        """Moves secrets through the asynchronous delete and purge states."""
        st = self.server.state
        t = time.time()
        for key in list(st.secrets):
            rec = st.secrets[key]
            if rec["state"] == "deleting" and t >= rec["until"]:
                rec["state"] = "deleted"
            elif rec["state"] == "purging" and t >= rec["until"]:
                del st.secrets[key]

    def bundle(self, rec, v, with_value=True):
        st = self.server.state
        out = {
            "id": f"{st.base}/secrets/{rec['name']}/{v['version']}",
            "attributes": dict(v["attributes"], recoveryLevel="Recoverable+Purgeable", recoverableDays=90),
            "tags": dict(v["tags"]),
        }
        if with_value:
            out["value"] = v["value"]
        if v.get("contentType") is not None:
            out["contentType"] = v["contentType"]
        return out

    def deleted_bundle(self, rec):
        st = self.server.state
        out = self.bundle(rec, rec["versions"][-1], with_value=False)
        out.update(
            recoveryId=f"{st.base}/deletedsecrets/{rec['name']}",
            deletedDate=rec["deleted_at"],
            scheduledPurgeDate=rec["deleted_at"] + 90 * 86400,
        )
        return out

    def not_found(self, name):
        return kv_error(404, "SecretNotFound", f"A secret with (name/id) {name} was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182")

    def page(self, items, query, path):
        st = self.server.state
        size = max(1, min(25, int(query.get("maxresults") or 25)))
        start = int(query.get("$skiptoken") or 0)
        body = {"value": items[start:start + size], "nextLink": None}
        if start + size < len(items):
            q = urlencode({"api-version": query["api-version"], "maxresults": size, "$skiptoken": start + size})
            body["nextLink"] = f"{st.base}{path}?{q}"
        return 200, body

    def vault(self, path, query, raw):
        st = self.server.state
        parts = [p for p in path.split("/")]
        # parts: ['', 'secrets', name, version?] with a possible trailing ''.
        if parts[1:2] == ["secrets"]:
            if len(parts) == 2 or (len(parts) == 3 and parts[2] == ""):
                if self.command != "GET":
                    return kv_error(405, "BadParameter", "Method not allowed")
                items = []
                for rec in sorted(st.secrets.values(), key=lambda r: r["name"]):
                    if rec["state"] == "active":
                        b = self.bundle(rec, rec["versions"][-1], with_value=False)
                        b["id"] = f"{st.base}/secrets/{rec['name']}"
                        items.append(b)
                return self.page(items, query, path)
            name = parts[2]
            rest = parts[3:]
            version = rest[0] if rest else ""
            if not NAME.match(name):
                return kv_error(400, "BadParameter", "The request URI contains an invalid name: " + name[:64])
            rec = st.secrets.get(name.lower())
            if self.command == "PUT" and not rest:
                return self.set_secret(name, rec, raw)
            if rec is not None and rec["state"] in ("deleted", "deleting", "purging") and self.command != "GET":
                if rec["state"] == "deleted":
                    return kv_error(409, "Conflict", f"Secret {name} is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the secret can only be recovered or purged.", "ObjectIsDeletedButRecoverable")
                return kv_error(409, "Conflict", f"Secret {name} is currently being deleted.", "ObjectIsBeingDeleted")
            if rec is None or rec["state"] != "active":
                return self.not_found(name)
            if version == "versions" and self.command == "GET":
                items = []
                for v in rec["versions"]:
                    b = self.bundle(rec, v, with_value=False)
                    items.append(b)
                return self.page(items, query, path)
            if self.command == "DELETE" and not rest:
                rec["state"] = "deleting"
                rec["until"] = time.time() + st.delete_delay
                rec["deleted_at"] = now()
                return 200, self.deleted_bundle(rec)
            target = rec["versions"][-1] if version == "" else next((v for v in rec["versions"] if v["version"] == version), None)
            if target is None:
                return self.not_found(name)
            if self.command == "GET":
                if not target["attributes"].get("enabled", True):
                    return kv_error(403, "Forbidden", "Operation get is not allowed on a disabled secret.", "SecretDisabled")
                return 200, self.bundle(rec, target)
            if self.command == "PATCH":
                body = json.loads(raw or b"{}")
                if "contentType" in body:
                    target["contentType"] = body["contentType"]
                if "tags" in body:
                    if len(body["tags"] or {}) > MAX_TAGS:
                        return kv_error(400, "BadParameter", "Too many tags")
                    target["tags"] = dict(body["tags"] or {})
                for k, v in (body.get("attributes") or {}).items():
                    if k in ("enabled", "nbf", "exp"):
                        target["attributes"][k] = v
                target["attributes"]["updated"] = now()
                return 200, self.bundle(rec, target, with_value=False)
            return kv_error(405, "BadParameter", "Method not allowed")
        if parts[1:2] == ["deletedsecrets"]:
            if len(parts) == 2 or (len(parts) == 3 and parts[2] == ""):
                items = [self.deleted_bundle(r) for r in sorted(st.secrets.values(), key=lambda r: r["name"]) if r["state"] == "deleted"]
                return self.page(items, query, path)
            name = parts[2]
            rec = st.secrets.get(name.lower())
            if rec is None or rec["state"] != "deleted":
                return kv_error(404, "SecretNotFound", f"Deleted Secret not found: {name}")
            if len(parts) == 3 and self.command == "GET":
                return 200, self.deleted_bundle(rec)
            if len(parts) == 3 and self.command == "DELETE":
                rec["state"] = "purging"
                rec["until"] = time.time() + st.purge_delay
                return 204, None
            if parts[3:] == ["recover"] and self.command == "POST":
                rec["state"] = "active"
                return 200, self.bundle(rec, rec["versions"][-1], with_value=False)
        return kv_error(404, "NotFound", "The requested resource was not found.")

    def set_secret(self, name, rec, raw):
        st = self.server.state
        try:
            body = json.loads(raw)
        except ValueError:
            return kv_error(400, "BadParameter", "The request body is not valid JSON.")
        value = body.get("value")
        if not isinstance(value, str):
            return kv_error(400, "BadParameter", "Property value is required.")
        if len(value.encode()) > MAX_VALUE:
            return kv_error(400, "BadParameter", "Secret value is too long. The maximum allowed size is 25600 bytes.")
        tags = body.get("tags") or {}
        if len(tags) > MAX_TAGS:
            return kv_error(400, "BadParameter", "Too many tags: a secret has at most 15.")
        if rec is not None and rec["state"] == "deleted":
            return kv_error(409, "Conflict", f"Secret {name} is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the secret can only be recovered or purged.", "ObjectIsDeletedButRecoverable")
        if rec is not None and rec["state"] in ("deleting", "purging"):
            return kv_error(409, "Conflict", f"Secret {name} is currently being deleted.", "ObjectIsBeingDeleted")
        if rec is None:
            rec = {"name": name, "versions": [], "state": "active"}
            st.secrets[name.lower()] = rec
        attrs = {"enabled": True, "created": now(), "updated": now()}
        for k, v in (body.get("attributes") or {}).items():
            if k in ("enabled", "nbf", "exp"):
                attrs[k] = v
        version = {"version": uuid.uuid4().hex, "value": value, "contentType": body.get("contentType"), "tags": dict(tags), "attributes": attrs}
        rec["versions"].append(version)
        return 200, self.bundle(rec, version)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--registry", required=True, help="JSON: tenant and app registrations")
    p.add_argument("--delete-delay-ms", type=int, default=300)
    p.add_argument("--purge-delay-ms", type=int, default=300)
    args = p.parse_args()
    registry = json.load(open(args.registry))
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.state = State(args, registry)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    print(f"kv-standin on https://127.0.0.1:{args.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
