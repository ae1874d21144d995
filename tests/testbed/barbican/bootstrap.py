"""Brings the test bed's Keystone to the state the Barbican tests expect. Idempotent; run by up.sh on every start.

Usage: bootstrap.py STATE_DIR KEYSTONE_URL BARBICAN_URL

- projects `service` and `secretsync`;
- user `barbican` (admin in `service`): Barbican's keystonemiddleware validates tokens with it;
- user `secretsync` (member in `secretsync`): what SecretSync authenticates as, with password or with an
  application credential (kept in STATE_DIR/appcred.json, made once);
- user `secretsync-reader` (reader in `secretsync`): may read secrets but not create them (the 403 case);
- the `key-manager` service with a public endpoint in RegionOne at BARBICAN_URL, and Keystone's own public
  endpoint at KEYSTONE_URL/v3 (both moved there on every start, since ports are chosen afresh).

Passwords are read from STATE_DIR/<user>.password. Prints a JSON object with the IDs the tests need.
"""

import json
import os
import sys
import time

import requests

state, keystone, barbican = sys.argv[1], sys.argv[2].rstrip("/"), sys.argv[3].rstrip("/")
V3 = keystone + "/v3"
# Generous: the test bed often starts while CI compiles, and a Keystone write waits for the disk.
TIMEOUT = 120


def password(user):
    with open(os.path.join(state, user + ".password")) as f:
        return f.read().strip()


def token(body):
    r = requests.post(V3 + "/auth/tokens", json={"auth": body}, timeout=TIMEOUT)
    r.raise_for_status()
    return r.headers["X-Subject-Token"], r.json()["token"]


def password_auth(user, project):
    return {
        "identity": {
            "methods": ["password"],
            "password": {"user": {"name": user, "domain": {"id": "default"}, "password": password(user)}},
        },
        "scope": {"project": {"name": project, "domain": {"id": "default"}}},
    }


ADMIN, _ = token(password_auth("admin", "admin"))
H = {"X-Auth-Token": ADMIN}


def get(path, **params):
    r = requests.get(V3 + path, headers=H, params=params, timeout=TIMEOUT)
    r.raise_for_status()
    return r.json()


def ensure(collection, key, name, body):
    found = get("/" + collection, name=name)[collection]
    if found:
        return found[0]
    r = requests.post(V3 + "/" + collection, headers=H, json={key: dict(body, name=name)}, timeout=TIMEOUT)
    r.raise_for_status()
    return r.json()[key]


def authenticates(user):
    """Whether Keystone accepts the user's password file (an unscoped token: no role needed yet)."""
    body = {"identity": {"methods": ["password"], "password": {"user": {"name": user, "domain": {"id": "default"}, "password": password(user)}}}}
    r = requests.post(V3 + "/auth/tokens", json={"auth": body}, timeout=TIMEOUT)
    if r.status_code == 401:
        return False
    r.raise_for_status()
    return True


def role_id(name):
    return ensure("roles", "role", name, {})["id"]


def ensure_user(name, project, role):
    user = ensure("users", "user", name, {"domain_id": "default", "password": password(name), "enabled": True})
    # The password file may be new (a fresh state dir next to an old database): make Keystone agree with it, but
    # only then. A password change revokes every token of the user issued up to its second (Keystone's revocation
    # events and fernet tokens both count whole seconds), so a token made in the same second, as the one for the
    # application credential below once was, is refused with 401: wait into the next second after changing it.
    if not authenticates(name):
        r = requests.patch(V3 + "/users/" + user["id"], headers=H, json={"user": {"password": password(name)}}, timeout=TIMEOUT)
        r.raise_for_status()
        time.sleep(1.1)
    grant = f"{V3}/projects/{project['id']}/users/{user['id']}/roles/{role_id(role)}"
    # Granted already on every start but the first: ask before granting, since a repeated grant is a failed INSERT
    # that Keystone ignores but PostgreSQL logs as an error.
    r = requests.head(grant, headers=H, timeout=TIMEOUT)
    if r.status_code == 404:
        r = requests.put(grant, headers=H, timeout=TIMEOUT)
    r.raise_for_status()
    return user


service_project = ensure("projects", "project", "service", {"domain_id": "default"})
project = ensure("projects", "project", "secretsync", {"domain_id": "default"})
ensure_user("barbican", service_project, "admin")
user = ensure_user("secretsync", project, "member")
ensure_user("secretsync-reader", project, "reader")

def ensure_endpoint(kind, name, url):
    """The service's one public endpoint in RegionOne, at `url`."""
    service = next((s for s in get("/services")["services"] if s["type"] == kind), None)
    if service is None:
        r = requests.post(V3 + "/services", headers=H, json={"service": {"type": kind, "name": name}}, timeout=TIMEOUT)
        r.raise_for_status()
        service = r.json()["service"]
    endpoints = get("/endpoints", service_id=service["id"], interface="public")["endpoints"]
    if endpoints:
        for e in endpoints:
            if e["url"] != url:
                r = requests.patch(V3 + "/endpoints/" + e["id"], headers=H, json={"endpoint": {"url": url}}, timeout=TIMEOUT)
                r.raise_for_status()
    else:
        r = requests.post(
            V3 + "/endpoints",
            headers=H,
            json={"endpoint": {"service_id": service["id"], "interface": "public", "region_id": "RegionOne", "url": url}},
            timeout=TIMEOUT,
        )
        r.raise_for_status()


# keystonemiddleware in Barbican finds Keystone through the catalog: keep both entries on this start's ports.
ensure_endpoint("identity", "keystone", V3)
ensure_endpoint("key-manager", "barbican", barbican)

appcred_file = os.path.join(state, "appcred.json")
appcred = None
if os.path.exists(appcred_file):
    with open(appcred_file) as f:
        appcred = json.load(f)
    try:
        token({"identity": {"methods": ["application_credential"], "application_credential": appcred}})
    except requests.HTTPError:
        appcred = None
if appcred is None:
    user_token, _ = token(password_auth("secretsync", "secretsync"))
    r = requests.post(
        f"{V3}/users/{user['id']}/application_credentials",
        headers={"X-Auth-Token": user_token},
        json={"application_credential": {"name": "secretsync-testbed-" + os.urandom(4).hex(), "roles": [{"name": "member"}]}},
        timeout=TIMEOUT,
    )
    r.raise_for_status()
    made = r.json()["application_credential"]
    appcred = {"id": made["id"], "secret": made["secret"]}
    fd = os.open(appcred_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(appcred, f)

print(json.dumps({"project_id": project["id"], "user_id": user["id"], "appcred_id": appcred["id"]}))
