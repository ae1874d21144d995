#!/usr/bin/env python3
"""`make bench`: speed, cost and memory of the SecretSync controller with N SecretSyncs on the local test bed.

Run through bench/run.sh (which brings the test bed up, builds the release binary and gives the controller its own
ServiceAccount so that the API server's audit log attributes its requests). Phases, in order (--phases picks some):

  first    N source Secrets exist; N SecretSyncs are server-side applied (the apply timed on its own); time until
           every one is Ready, seen through a watch.
  rest     two refresh intervals with nothing changing: store requests per object per refresh (reads / writes, from
           /metrics), Kubernetes API requests (audit log), RSS and CPU.
  latency  individually timed source changes, one at a time while idle: patch -> status showing the new digest
           (watch), patch -> the store's write (Service Fabric emulator's request log, read as it grows), and the
           controller's own secretsync_push_latency_seconds histogram.
  burst    every source Secret changed at once: time until the last status (watch) and the last store write.
  restart  the controller is restarted: store requests per second over two refresh intervals (a series).

--keys K (KEYS): each source Secret has K keys and each SecretSync pushes them all through spec.data (one regex
entry, property {key}) as the K properties of one remote JSON secret; a change patches one key. K=1 (the default) is
the single-key SecretSync of the earlier runs.

Writes bench/results/<timestamp>-<dialect>-<N>[x<K>].json and prints a table. Cleans up its namespace and controller
process on any exit.
"""

import argparse
import base64
import bisect
import concurrent.futures as cf
import datetime
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kube import Kube, LogTail, Watch  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SA_USER = "system:serviceaccount:secretsync-system:secretsync"
GROUP = "/apis/secretsync.io/v1alpha1"
DIALECTS = ["ServiceFabricMesh", "AzureKeyVault", "Barbican", "TencentSSM", "DockerSwarm", "AWSSecretsManager", "Vault"]
# Store operations (the `operation` label of secretsync_backend_requests_total) that only read.
MIN_FREE = float(os.environ.get("BENCH_MIN_FREE_GIB", "3")) * 2**30
READ_OPS = re.compile(r"^(get|list|describe|inspect|read|head)|^(Describe|Get|List)", re.I)
AUTH_OPS = re.compile(r"token|auth", re.I)


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def b64(s):
    return base64.b64encode(s.encode()).decode()


def pct(values, p):
    if not values:
        return None
    v = sorted(values)
    k = (len(v) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def dist(values, scale=1000.0, digits=1):
    """p50/p90/p99/max (and count) of a list of seconds, in milliseconds."""
    if not values:
        return {"count": 0}
    r = lambda x: round(x * scale, digits)  # noqa: E731
    return {"count": len(values), "p50": r(pct(values, 50)), "p90": r(pct(values, 90)), "p99": r(pct(values, 99)),
            "max": r(max(values)), "mean": r(statistics.fmean(values))}


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


# ---------------------------------------------------------------------------------------------------------------
# Dialects: the store (and its credentials) on the test bed, and the remote name of SecretSync i.

def store_for(dialect, ns, rate, burst):
    env = os.environ
    creds = None
    limit = {"requestsPerSecond": rate, "burst": burst}
    if dialect == "ServiceFabricMesh":
        spec = {"dialect": dialect, "endpoint": env["SF_ENDPOINT"]}
    elif dialect == "AzureKeyVault":
        creds = {"tenantId": env["AZUREKV_TENANT_ID"], "clientId": env["AZUREKV_CLIENT_ID"],
                 "clientSecret": env["AZUREKV_CLIENT_SECRET"]}
        spec = {"dialect": dialect, "endpoint": env["AZUREKV_ENDPOINT"], "credentialsRef": {"name": "bench-creds"},
                "azureKeyVault": {"authorityHost": env["AZUREKV_AUTHORITY"]}}
    elif dialect == "Barbican":
        creds = {"authUrl": env["KEYSTONE_AUTH_URL"], "username": env["KEYSTONE_USERNAME"],
                 "password": env["KEYSTONE_PASSWORD"], "userDomainName": "Default",
                 "projectName": env["KEYSTONE_PROJECT"], "projectDomainName": "Default"}
        spec = {"dialect": dialect, "credentialsRef": {"name": "bench-creds"}}
    elif dialect == "TencentSSM":
        creds = {"secretId": env["SSM_SECRET_ID"], "secretKey": env["SSM_SECRET_KEY"]}
        spec = {"dialect": dialect, "endpoint": env["SSM_ENDPOINT"], "credentialsRef": {"name": "bench-creds"},
                "tencentSSM": {"region": env["SSM_REGION"]}}
        # The emulator allows SSM_RATE_LIMIT requests a second per action and key pair.
        cap = int(env.get("SSM_RATE_LIMIT", "50"))
        limit = {"requestsPerSecond": min(rate, cap), "burst": min(burst, cap)}
    elif dialect == "DockerSwarm":
        spec = {"dialect": dialect, "endpoint": "unix://" + env["DOCKER_SWARM_SOCKET"]}
    elif dialect == "AWSSecretsManager":
        creds = {"accessKeyId": env["AWSSM_ACCESS_KEY_ID"], "secretAccessKey": env["AWSSM_SECRET_ACCESS_KEY"]}
        spec = {"dialect": dialect, "endpoint": env["AWSSM_ENDPOINT"], "credentialsRef": {"name": "bench-creds"},
                "awsSecretsManager": {"region": env["AWSSM_REGION"]}}
    elif dialect == "Vault":
        creds = {"token": env["VAULT_POLICY_TOKEN"]}
        spec = {"dialect": dialect, "endpoint": env["VAULT_ENDPOINT"], "credentialsRef": {"name": "bench-creds"}}
    else:
        raise SystemExit(f"unknown dialect {dialect}; one of {DIALECTS}")
    spec["rateLimit"] = limit
    data = None
    if creds is not None:
        data = {k: b64(v) for k, v in creds.items()}
        if dialect == "AzureKeyVault":
            data["ca.crt"] = env["AZUREKV_CA_B64"]
        if dialect == "AWSSecretsManager":
            data["ca.crt"] = env["AWSSM_CA_B64"]
        if dialect == "Vault":
            data["ca.crt"] = env["VAULT_CA_B64"]
    return spec, data


def remote_name(dialect, ns, i):
    # The Service Fabric emulator makes `instant-` resources Ready at once (no Creating phase).
    return f"instant-{ns}-{i}" if dialect == "ServiceFabricMesh" else f"{ns}-{i}"


# ---------------------------------------------------------------------------------------------------------------
# Observations.

class SyncState:
    """What the watch on the namespace's SecretSyncs saw, per object: phase, digest, and when they changed."""

    def __init__(self):
        self.cv = threading.Condition()
        self.objs = {}  # name -> dict(phase, digest, version, t_added, t_ready, t_digest)
        self.events = 0

    def on_event(self, t, typ, obj):
        name = obj["metadata"]["name"]
        st = obj.get("status") or {}
        with self.cv:
            self.events += 1
            if typ == "DELETED":
                self.objs.pop(name, None)
                return
            o = self.objs.get(name)
            if o is None:
                o = self.objs[name] = {"phase": None, "digest": None, "version": None, "t_added": t,
                                       "t_ready": None, "t_digest": None}
            phase, digest = st.get("phase"), st.get("syncedDigest")
            if digest != o["digest"]:
                o["t_digest"] = t
            if phase == "Ready" and o["phase"] != "Ready":
                o["t_ready"] = t
            o["phase"], o["digest"] = phase, digest
            o["version"] = (st.get("remote") or {}).get("version")

    def wait(self, pred, timeout, poll=0.5):
        """Checks pred every `poll` seconds (event times come from the watch, not from this loop)."""
        end = time.time() + timeout
        while True:
            with self.cv:
                if pred(self.objs):
                    return True
            left = end - time.time()
            if left <= 0:
                return False
            time.sleep(min(left, poll))

    def get(self, name):
        with self.cv:
            o = self.objs.get(name)
            return dict(o) if o else None

    def snapshot(self):
        with self.cv:
            return {k: dict(v) for k, v in self.objs.items()}


class StoreLog:
    """The Service Fabric emulator's request log (`METHOD PATH STATUS`), timestamped as it is read."""

    LINE = re.compile(r"^(GET|PUT|POST|DELETE|PATCH) /Resources/Secrets(?:/([^/ ]+))?(\S*) (\d+)$")

    def __init__(self, path):
        self.lock = threading.Lock()
        self.value_writes = {}  # secret -> [t, ...] of PUT .../values/<version>
        self.times = []  # (t, is_write) of every secret request
        self.per_secret = {}  # secret -> [(t, is_write)]
        self.tail = LogTail(path, self.on_line)
        self.tail.start()

    def on_line(self, t, line):
        m = self.LINE.match(line.strip())
        if not m:
            return
        method, secret, rest = m.group(1), m.group(2), m.group(3)
        write = method in ("PUT", "DELETE") or (method == "POST" and not rest.endswith("list_value"))
        with self.lock:
            self.times.append((t, write))
            if secret:
                self.per_secret.setdefault(secret, []).append((t, write))
            if method == "PUT" and secret and rest.startswith("/values/"):
                self.value_writes.setdefault(secret, []).append(t)

    def first_write_after(self, secret, t0):
        with self.lock:
            ts = self.value_writes.get(secret, [])
            i = bisect.bisect_left(ts, t0)
            return ts[i] if i < len(ts) else None

    def about(self, secret, t0, t1):
        """(reads, writes) about one secret within [t0, t1)."""
        with self.lock:
            ts = self.per_secret.get(secret, [])
            hits = [w for t, w in ts if t0 <= t < t1]
        return len(hits) - sum(hits), sum(hits)

    def requests_between(self, t0, t1):
        with self.lock:
            return [(t, w) for t, w in self.times if t0 <= t < t1]

    def stop(self):
        self.tail.stop()


def token_id(kubeconfig):
    """The `jti` of the bearer token in the controller's kubeconfig (run.sh writes it from TokenRequest): the audit
    log's credential-id, which tells this controller's requests from those of other processes of the same
    ServiceAccount (the shared test bed's integration tests run controllers that watch every namespace)."""
    try:
        with open(kubeconfig) as f:
            m = re.search(r'token: "([^"]+)"', f.read())
        payload = m.group(1).split(".")[1]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["jti"]
    except (OSError, AttributeError, IndexError, ValueError, KeyError):
        return None


class Audit:
    """The API server's audit log (Metadata level, the controller's ServiceAccount only), read incrementally. With
    `jti`, only this controller's token counts; requests of other tokens in `ns` are kept apart (`foreign`)."""

    def __init__(self, path, jti=None, ns=None):
        self.path = path
        self.offset = os.path.getsize(path) if os.path.exists(path) else 0
        self.inode = os.stat(path).st_ino if os.path.exists(path) else None
        self.records = []  # (t, verb, resource, subresource, namespace, name)
        self.jti, self.ns = jti, ns
        self.foreign = []  # (t, verb, resource, subresource, name): another controller touching this namespace

    def rotated(self):
        """The file the API server renamed the log we were reading to (`audit-<time>.log`, --audit-log-maxsize)."""
        d = os.path.dirname(self.path)
        for name in os.listdir(d):
            full = os.path.join(d, name)
            if name.startswith("audit-") and name.endswith(".log") and os.stat(full).st_ino == self.inode:
                return full
        return None

    def poll(self):
        if not os.path.exists(self.path):
            return
        data = b""
        inode = os.stat(self.path).st_ino
        if self.inode is not None and inode != self.inode:
            # Rotated: the rest of the old file first (its records would be lost otherwise), then the new one.
            old = self.rotated()
            if old:
                with open(old, "rb") as f:
                    f.seek(self.offset)
                    data = f.read()
                data = data[: data.rfind(b"\n") + 1]
            self.inode, self.offset = inode, 0
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            new = f.read()
        end = new.rfind(b"\n") + 1
        self.offset += end
        if self.inode is None:
            self.inode = inode
        data += new[:end]
        for line in data.splitlines():
            try:
                e = json.loads(line)
            except ValueError:
                continue
            if e.get("stage") != "ResponseComplete" or e.get("user", {}).get("username") != SA_USER:
                continue
            ts = e.get("requestReceivedTimestamp", "")
            try:
                t = datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
                    tzinfo=datetime.timezone.utc).timestamp()
            except ValueError:
                continue
            ref = e.get("objectRef", {})
            cred = (e["user"].get("extra") or {}).get("authentication.kubernetes.io/credential-id", [""])[0]
            if self.jti and cred != f"JTI={self.jti}":
                if ref.get("namespace") == self.ns:
                    self.foreign.append((t, e.get("verb"), ref.get("resource"), ref.get("subresource"),
                                         ref.get("name")))
                continue
            self.records.append((t, e.get("verb"), ref.get("resource", e.get("requestURI", "?")),
                                 ref.get("subresource"), ref.get("namespace"), ref.get("name")))

    def about(self, spans):
        """Requests naming each changed object (its Secret, its SecretSync) within that change's own span:
        spans = [(name, t0, t1)]. Returns counts by verb/resource, summed over the spans."""
        time.sleep(1.0)
        self.poll()
        by_name = {}
        for rec in self.records:
            by_name.setdefault(rec[5], []).append(rec)
        by = {}
        for name, t0, t1 in spans:
            for t, verb, res, sub, ns, _ in by_name.get(name, []):
                if t0 <= t < t1 and res in ("secrets", "secretsyncs"):
                    key = f"{verb} {res}{'/' + sub if sub else ''}"
                    by[key] = by.get(key, 0) + 1
        return by

    def summary(self, t0, t1, per):
        """API requests of the controller received in [t0, t1), by kind, and divided by `per`."""
        time.sleep(1.0)  # the audit backend writes in batches
        self.poll()
        by = {}
        reads = writes = status = watches = 0
        for t, verb, res, sub, ns, name in self.records:
            if not (t0 <= t < t1):
                continue
            key = f"{verb} {res}{'/' + sub if sub else ''}"
            if res == "secrets" and name == "bench-creds":
                key += " (the store's credentials)"
            by[key] = by.get(key, 0) + 1
            if verb == "watch":
                watches += 1
            elif verb in ("get", "list"):
                reads += 1
            elif sub == "status":
                status += 1
            else:
                writes += 1
        d = lambda x: round(x / per, 3) if per else None  # noqa: E731
        foreign = sum(1 for rec in self.foreign if t0 <= rec[0] < t1)
        return {"total": sum(by.values()), "foreign_requests_in_namespace": foreign,
                "reads": reads, "writes_other_than_status": writes,
                "status_writes": status, "watch_requests": watches, "per_unit": {
                    "reads": d(reads), "status_writes": d(status), "other_writes": d(writes),
                    "all_but_watches": d(reads + status + writes)},
                "by_verb_resource": dict(sorted(by.items()))}


class Proc(threading.Thread):
    """Samples a process's RSS and CPU time twice a second."""

    def __init__(self):
        super().__init__(daemon=True)
        self.pid = None
        self.samples = []  # (t, rss_kib, cpu_s)
        self.lock = threading.Lock()
        self.hz = os.sysconf("SC_CLK_TCK")
        self.stopped = threading.Event()

    def read(self):
        pid = self.pid
        if pid is None:
            return None
        try:
            with open(f"/proc/{pid}/status") as f:
                rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            cpu = (int(fields[11]) + int(fields[12])) / self.hz
        except (OSError, StopIteration, IndexError, ValueError):
            return None
        return (time.time(), rss, cpu)

    def run(self):
        while not self.stopped.is_set():
            # The API server's etcd and audit log, the store's and the controller's logs all grow with N: stop
            # (and clean up) before the disk fills, which would break everything else on the machine.
            if shutil.disk_usage(ROOT).free < MIN_FREE:
                log(f"less than {MIN_FREE / 2**30:.1f} GiB free on the disk: stopping (BENCH_MIN_FREE_GIB)")
                self.stopped.set()
                os.kill(os.getpid(), signal.SIGTERM)
                return
            s = self.read()
            if s:
                with self.lock:
                    self.samples.append(s)
            time.sleep(0.5)

    def now(self):
        s = self.read()
        if s:
            with self.lock:
                self.samples.append(s)
        return s

    def window(self, t0, t1):
        with self.lock:
            w = [s for s in self.samples if t0 <= s[0] <= t1]
        if len(w) < 2:
            return {}
        cpu = w[-1][2] - w[0][2]
        return {"rss_max_mib": round(max(s[1] for s in w) / 1024, 1), "rss_end_mib": round(w[-1][1] / 1024, 1),
                "cpu_s": round(cpu, 2), "cpu_pct": round(100 * cpu / max(w[-1][0] - w[0][0], 1e-9), 1)}


def scrape(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^([a-zA-Z_:][\w:]*)(\{(.*)\})? (\S+)", line)
        if not m:
            continue
        labels = tuple(sorted(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or "")))
        out[(m.group(1), labels)] = float(m.group(4))
    return out


def diff(a, b):
    return {k: v - a.get(k, 0.0) for k, v in b.items() if v - a.get(k, 0.0) != 0}


def store_requests(d):
    """From a /metrics difference: store requests by operation/outcome, and reads, writes, auth."""
    ops, reads, writes, auth = {}, 0, 0, 0
    for (name, labels), v in d.items():
        if name != "secretsync_backend_requests_total":
            continue
        lab = dict(labels)
        op = lab.get("operation", "?")
        ops[f"{op}/{lab.get('outcome', '?')}"] = int(v)
        if AUTH_OPS.search(op):
            auth += v
        elif READ_OPS.search(op):
            reads += v
        else:
            writes += v
    return {"reads": int(reads), "writes": int(writes), "auth": int(auth), "by_operation": dict(sorted(ops.items()))}


def total(d, metric):
    return sum(v for (name, _), v in d.items() if name == metric)


def histogram_quantiles(d, metric):
    """Quantile estimates (upper bound of the bucket holding the quantile) from a histogram difference."""
    buckets = {}
    for (name, labels), v in d.items():
        if name == metric + "_bucket":
            le = dict(labels)["le"]
            buckets[float("inf") if le == "+Inf" else float(le)] = buckets.get(
                float("inf") if le == "+Inf" else float(le), 0) + v
    if not buckets or max(buckets.values()) == 0:
        return {"count": 0}
    les = sorted(buckets)
    n = buckets[les[-1]]
    out = {"count": int(n), "buckets": {("+Inf" if le == float("inf") else str(le)): int(buckets[le]) for le in les}}
    for q in (50, 90, 99):
        le = next(le for le in les if buckets[le] >= n * q / 100)
        out[f"p{q}_le_ms"] = None if le == float("inf") else round(le * 1000, 1)
    out["mean_ms"] = round(1000 * total(d, metric + "_sum") / n, 2)
    return out


# ---------------------------------------------------------------------------------------------------------------

class Bench:
    def __init__(self, args):
        self.a = args
        self.kube = Kube(os.environ["KUBECONFIG"])
        self.ns = f"bench-{int(time.time())}"
        self.names = [f"s{i}" for i in range(1, args.n + 1)]
        self.proc = None
        self.port = None
        self.sampler = Proc()
        self.sampler.start()
        self.state = SyncState()
        self.watch = None
        self.storelog = None
        self.jti = token_id(args.controller_kubeconfig)
        self.audit = Audit(os.environ["TESTBED_AUDIT_LOG"], self.jti, self.ns)
        self.ctl_log = None
        self.result = {"config": {}, "phases": {}}
        self.restarts = 0
        self.binary = os.environ.get("BENCH_BINARY") or os.path.join(ROOT, "target/release/secretsync")
        self.pidfile = os.path.join(os.environ.get("TB", os.path.join(ROOT, ".testbed")), "pids",
                                    "bench-controller.pid")

    # -- the controller -----------------------------------------------------------------------------------------
    def start_controller(self):
        self.port = free_port()
        self.health_port = free_port()
        logs = os.path.join(os.environ.get("TB", os.path.join(ROOT, ".testbed")), "logs")
        path = os.path.join(logs, f"{self.ns}-controller-{self.restarts}.log")
        self.ctl_log = path
        cmd = [self.binary, "run", "--kubeconfig", self.a.controller_kubeconfig,
               "--namespace", self.ns, "--leader-election=false", "--metrics-addr", f"127.0.0.1:{self.port}",
               # Plain /metrics: a token review per scrape would show in the API requests the bench counts.
               "--metrics-insecure", "--health-addr", f"127.0.0.1:{self.health_port}",
               "--backend-rate", str(self.a.rate), "--backend-burst", str(self.a.burst),
               "--concurrency", str(self.a.concurrency), "--log-format", "json"]
        env = dict(os.environ)
        if os.environ.get("HEAP_PROFILE") == "1":
            # Written when the controller is told to stop, before it lets go of anything (src/heap_profile.rs).
            env["SECRETSYNC_HEAP_PROFILE"] = os.path.join(logs, f"{self.ns}-heap-{self.restarts}.json")
            self.result.setdefault("heap_profiles", []).append(env["SECRETSYNC_HEAP_PROFILE"])
        with open(path, "wb") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True, env=env)
        self.sampler.pid = self.proc.pid
        # Recorded like a test-bed process: if this harness is killed outright, `make testbed-down` stops it.
        with open(self.pidfile, "w") as f:
            f.write(f"{self.proc.pid}\n")
        t0 = time.time()
        while time.time() - t0 < 60:
            if self.proc.poll() is not None:
                raise RuntimeError(f"controller exited with {self.proc.returncode}; see {path}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}/readyz", timeout=2):
                    return time.time() - t0
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("controller not ready within 60 s")

    def stop_controller(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.sampler.pid = None
        try:
            os.unlink(self.pidfile)
        except OSError:
            pass

    def metrics(self):
        return scrape(self.port)

    # -- objects ------------------------------------------------------------------------------------------------
    def parallel(self, fn, items, workers):
        with cf.ThreadPoolExecutor(workers) as ex:
            for _ in ex.map(fn, items):
                pass

    def secret_path(self, name):
        return f"/api/v1/namespaces/{self.ns}/secrets/{name}"

    def key_names(self):
        # KEYS=1 keeps the single-key manifests of the earlier runs (key `k`), so their figures stay comparable.
        return ["k"] if self.a.keys == 1 else [f"k{j}" for j in range(1, self.a.keys + 1)]

    def apply_secret(self, name, value):
        self.kube.apply(self.secret_path(name), {"apiVersion": "v1", "kind": "Secret",
                                                 "metadata": {"name": name, "namespace": self.ns},
                                                 "data": {k: b64(self.value_of(value, k)) for k in self.key_names()}})

    def change_secret(self, name, value, j=0):
        """Changes ONE key of the source Secret (the j-th, modulo KEYS): the others keep their values."""
        keys = self.key_names()
        key = keys[j % len(keys)]
        self.kube.merge_patch(self.secret_path(name), {"data": {key: b64(self.value_of(value, key))}})

    def value_of(self, value, key):
        return value if self.a.keys == 1 else f"{value}-{key}"

    def apply_sync(self, name):
        i = name[1:]
        if self.a.keys == 1:
            source, data = {"secretRef": {"name": name, "key": "k"}}, None
        else:
            # The common PushSecret shape: every key of the Secret a property of one remote JSON secret.
            source, data = {"secretRef": {"name": name}}, [{"secretKeyRegex": ".*", "property": "{key}"}]
        spec = {"source": source,
                "target": {"storeRef": {"kind": "Store", "name": "bench"},
                           "remoteName": remote_name(self.a.dialect, self.ns, i)},
                "refreshInterval": self.a.refresh}
        if data is not None:
            spec["data"] = data
        self.kube.apply(f"{GROUP}/namespaces/{self.ns}/secretsyncs/{name}", {
            "apiVersion": "secretsync.io/v1alpha1", "kind": "SecretSync",
            "metadata": {"name": name, "namespace": self.ns}, "spec": spec})

    def all_ready(self, baseline=None):
        n = self.a.n

        def pred(objs):
            if len(objs) < n:
                return False
            for name in self.names:
                o = objs.get(name)
                if o is None or o["phase"] != "Ready":
                    return False
                if baseline is not None and o["digest"] == baseline.get(name):
                    return False
            return True
        return pred

    def timeout(self, requests_per_object=4):
        # Generous: Barbican on the test bed (one WSGI worker) takes about a second per secret.
        slow = 1.5 if self.a.dialect == "Barbican" else 0.02
        return 120 + self.a.n * requests_per_object / max(self.a.rate, 1) * 3 + self.a.n * slow

    # -- phases -------------------------------------------------------------------------------------------------
    def setup(self):
        a = self.a
        self.result["config"] = {
            "n": a.n, "keys": a.keys, "dialect": a.dialect, "refresh": a.refresh, "rate": a.rate, "burst": a.burst,
            "concurrency": a.concurrency, "changes": a.changes, "namespace": self.ns,
            "commit": subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                                     text=True).stdout.strip(),
            "binary": self.binary, "token_jti": self.jti,
            "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "host": {"cpus": os.cpu_count(), "mem_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf(
                "SC_PHYS_PAGES") / 2**30, 1), "load1_at_start": os.getloadavg()[0]},
        }
        log(f"namespace {self.ns}: {a.n} SecretSyncs of {a.keys} key{'s' if a.keys > 1 else ''} on {a.dialect}, "
            f"refresh {a.refresh}, rate {a.rate}/s")
        self.kube.request("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                         "metadata": {"name": self.ns}})
        spec, creds = store_for(a.dialect, self.ns, a.rate, a.burst)
        if creds is not None:
            self.kube.apply(self.secret_path("bench-creds"), {
                "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "bench-creds", "namespace": self.ns},
                "data": creds})
        if a.dialect == "ServiceFabricMesh":
            self.storelog = StoreLog(os.path.join(os.environ.get("TB", os.path.join(ROOT, ".testbed")),
                                                  "logs", "sf-emulator.log"))
        # The controller first, on an empty namespace: its idle size.
        ready_s = self.start_controller()
        time.sleep(3)
        idle = self.sampler.now()
        self.result["phases"]["idle"] = {"controller_ready_s": round(ready_s, 2), "rss_mib": round(idle[1] / 1024, 1)}
        log(f"controller idle: {idle[1] / 1024:.1f} MiB")
        self.kube.apply(f"{GROUP}/namespaces/{self.ns}/stores/bench", {
            "apiVersion": "secretsync.io/v1alpha1", "kind": "Store",
            "metadata": {"name": "bench", "namespace": self.ns}, "spec": spec})
        t0 = time.time()
        self.parallel(lambda nm: self.apply_secret(nm, f"v1-{nm}"), self.names, a.apply_workers)
        t1 = time.time()
        time.sleep(3)
        s = self.sampler.now()
        self.result["phases"]["secrets"] = {"apply_s": round(t1 - t0, 2), "rss_mib": round(s[1] / 1024, 1)}
        log(f"{a.n} source Secrets applied in {t1 - t0:.1f} s; controller {s[1] / 1024:.1f} MiB")
        self.watch = Watch(self.kube, f"{GROUP}/namespaces/{self.ns}/secretsyncs", self.state.on_event)
        self.watch.start()
        self.watch.ready.wait(30)

    def phase_first(self):
        a = self.a
        m0 = self.metrics()
        t0 = time.time()
        self.parallel(self.apply_sync, self.names, a.apply_workers)
        t1 = time.time()
        log(f"{a.n} SecretSyncs server-side applied in {t1 - t0:.1f} s; waiting for Ready")
        ok = self.state.wait(self.all_ready(), self.timeout())
        snap = self.state.snapshot()
        t_last = max((o["t_ready"] or 0) for o in snap.values())
        if not ok:
            not_ready = sum(1 for o in snap.values() if o["phase"] != "Ready")
            raise RuntimeError(f"first sync: {not_ready} of {a.n} not Ready in time")
        time.sleep(1)
        m1 = self.metrics()
        d = diff(m0, m1)
        per_obj = [o["t_ready"] - o["t_added"] for o in snap.values() if o["t_ready"]]
        r = {
            "apply_s": round(t1 - t0, 2),
            "first_sync_s": round(t_last - t0, 2),
            "after_apply_s": round(max(t_last - t1, 0), 2),
            "per_object_created_to_ready_ms": dist(per_obj, digits=0),
            "store_requests": store_requests(d),
            "reconciles": int(total(d, "secretsync_reconciles_total")),
            "process": self.sampler.window(t0, t_last + 1),
            "api": self.audit.summary(t0, t_last + 1, a.n),
        }
        self.t_synced = t_last
        self.result["phases"]["first"] = r
        log(f"first sync of {a.n}: {r['first_sync_s']} s from the start of the apply ({r['apply_s']} s of apply, "
            f"{r['after_apply_s']} s after it)")

    def phase_rest(self):
        a = self.a
        interval = parse_seconds(a.refresh)
        # Start the count one interval after the first sync began (every refresh clock is then running).
        start = max(time.time(), getattr(self, "t_synced", time.time()) + 2)
        time.sleep(max(0, start - time.time()))
        m0, t0 = self.metrics(), time.time()
        log(f"at rest: counting over two refresh intervals ({2 * interval:.0f} s)")
        time.sleep(2 * interval)
        m1, t1 = self.metrics(), time.time()
        d = diff(m0, m1)
        sr = store_requests(d)
        refreshes = a.n * (t1 - t0) / interval
        rec = total(d, "secretsync_reconciles_total")
        api = self.audit.summary(t0, t1, refreshes)
        r = {
            "window_s": round(t1 - t0, 1),
            "store_requests": sr,
            # A reconcile at rest is one refresh of one object.
            "per_refresh": {"reads": round(sr["reads"] / rec, 3) if rec else None,
                            "writes": round(sr["writes"] / rec, 3) if rec else None,
                            "auth": round(sr["auth"] / rec, 3) if rec else None},
            "api_per_refresh": {k: round(v * refreshes / rec, 3) if rec and v is not None else None
                                for k, v in api["per_unit"].items()},
            # Per object and refresh interval: lower than per refresh by the jitter (up to 10 % longer waits).
            "per_object_per_refresh": {"reads": round(sr["reads"] / refreshes, 3),
                                       "writes": round(sr["writes"] / refreshes, 3),
                                       "auth": round(sr["auth"] / refreshes, 3)},
            "reconciles": int(rec),
            "store_requests_per_reconcile": round((sr["reads"] + sr["writes"]) / rec, 3) if rec else None,
            "remote_writes": int(total(d, "secretsync_remote_writes_total")),
            "process": self.sampler.window(t0, t1),
            "api": api,
        }
        self.result["phases"]["rest"] = r
        log(f"at rest: {r['per_object_per_refresh']} store requests per object per refresh; "
            f"{r['reconciles']} reconciles; controller {r['process'].get('rss_end_mib')} MiB")

    def phase_latency(self):
        a = self.a
        k = min(a.changes, a.n)
        sample = [self.names[(j * a.n) // k] for j in range(k)]
        m0, t_start = self.metrics(), time.time()
        watch_lat, store_lat, patch_rt, missing, spans, samples = [], [], [], 0, [], []
        log(f"latency: {k} changes, one at a time, {a.spacing} s apart")
        for j, name in enumerate(sample):
            old = self.state.get(name)["digest"]
            t0 = time.time()
            self.change_secret(name, f"lat-{j}-{t0}", j)
            patch_rt.append(time.time() - t0)
            ok = self.state.wait(lambda objs: objs[name]["digest"] != old and objs[name]["phase"] == "Ready", 30,
                                 poll=0.005)
            if not ok:
                missing += 1
                continue
            t_ack = self.state.get(name)["t_digest"]
            watch_lat.append(t_ack - t0)
            spans.append((name, t0, t_ack + 0.5))
            samples.append([round(t0 - t_start, 3), round(1000 * (t_ack - t0), 1)])
            if self.storelog:
                remote = remote_name(a.dialect, self.ns, name[1:])
                ts = None
                for _ in range(100):
                    ts = self.storelog.first_write_after(remote, t0)
                    if ts:
                        break
                    time.sleep(0.01)
                if ts:
                    store_lat.append(ts - t0)
            time.sleep(a.spacing)
        t_end = time.time()
        m1 = self.metrics()
        d = diff(m0, m1)
        sr = store_requests(d)
        r = {
            "changes": k, "timed_out": missing, "spacing_s": a.spacing,
            "patch_to_status_ms": dist(watch_lat),
            "patch_to_store_write_ms": dist(store_lat) if self.storelog else None,
            "patch_request_ms": dist(patch_rt),
            "controller_push_latency": histogram_quantiles(d, "secretsync_push_latency_seconds"),
            # Refreshes keep running during this phase: the store requests include theirs.
            "store_requests": sr,
            "remote_writes_per_change": round(total(d, "secretsync_remote_writes_total") / k, 3),
            "reconciles": int(total(d, "secretsync_reconciles_total")),
            "process": self.sampler.window(t_start, t_end),
            "api": self.audit.summary(t_start, t_end + 0.5, k),
        }
        if self.storelog:
            # For each change: the store's requests in the second before it (the refreshes it competed with).
            for smp, (_, t0, _) in zip(samples, spans):
                smp.append(len(self.storelog.requests_between(t0 - 1, t0)))
            busy = [smp[1] for smp in samples if smp[2] >= a.rate / 2]
            calm = [smp[1] / 1000 for smp in samples if smp[2] < a.rate / 2]
            r["while_refreshes_saturate_the_rate"] = {"changes": len(busy),
                                                      "patch_to_status_ms": dist([x / 1000 for x in busy])}
            r["while_the_store_is_calm"] = {"changes": len(calm), "patch_to_status_ms": dist(calm)}
        r["samples"] = {"columns": ["t_s", "patch_to_status_ms", "store_requests_in_the_second_before"],
                        "rows": samples}
        # Refreshes of other objects go on during the timed changes; what names the changed object within its
        # own change (patch to acknowledgement + 0.5 s) is that change's cost.
        n_ok = max(len(spans), 1)
        by = self.audit.about(spans)
        reads = sum(v for key, v in by.items() if key.split()[0] in ("get", "list"))
        status = sum(v for key, v in by.items() if key.endswith("/status"))
        r["attributed_per_change"] = {
            "api_by_verb_resource": {key: round(v / n_ok, 3) for key, v in sorted(by.items())},
            "api_reads": round(reads / n_ok, 3), "api_status_writes": round(status / n_ok, 3),
            "api_other_writes": round((sum(by.values()) - reads - status) / n_ok, 3),
        }
        if self.storelog:
            rw = [self.storelog.about(remote_name(a.dialect, self.ns, nm[1:]), t0, t1) for nm, t0, t1 in spans]
            r["attributed_per_change"]["store_reads"] = round(sum(x for x, _ in rw) / n_ok, 3)
            r["attributed_per_change"]["store_writes"] = round(sum(y for _, y in rw) / n_ok, 3)
        self.result["phases"]["latency"] = r
        log(f"latency: patch -> status {r['patch_to_status_ms']}; patch -> store {r['patch_to_store_write_ms']}")

    def phase_burst(self):
        a = self.a
        base = {k: v["digest"] for k, v in self.state.snapshot().items()}
        m0 = self.metrics()
        t0 = time.time()
        stamp = int(t0)
        self.parallel(lambda nm: self.change_secret(nm, f"burst-{stamp}-{nm}", int(nm[1:])), self.names,
                      a.apply_workers)
        t1 = time.time()
        log(f"burst: {a.n} Secrets patched in {t1 - t0:.1f} s; waiting for every new digest")
        ok = self.state.wait(self.all_ready(base), self.timeout())
        snap = self.state.snapshot()
        if not ok:
            left = sum(1 for k, o in snap.items() if o["digest"] == base.get(k))
            raise RuntimeError(f"burst: {left} of {a.n} not pushed in time")
        t_status = max(o["t_digest"] for o in snap.values())
        t_store = None
        if self.storelog:
            time.sleep(0.5)
            ws = [self.storelog.first_write_after(remote_name(a.dialect, self.ns, nm[1:]), t0) for nm in self.names]
            ws = [w for w in ws if w]
            t_store = max(ws) if ws else None
        time.sleep(1)
        m1 = self.metrics()
        d = diff(m0, m1)
        r = {
            "patch_s": round(t1 - t0, 2),
            "last_status_s": round(t_status - t0, 2),
            "last_store_write_s": round(t_store - t0, 2) if t_store else None,
            "after_last_patch_s": round(t_status - t1, 2),
            "store_requests": store_requests(d),
            "remote_writes": int(total(d, "secretsync_remote_writes_total")),
            "reconciles": int(total(d, "secretsync_reconciles_total")),
            "controller_push_latency": histogram_quantiles(d, "secretsync_push_latency_seconds"),
            "process": self.sampler.window(t0, t_status + 1),
            "api": self.audit.summary(t0, t_status + 1, a.n),
        }
        self.result["phases"]["burst"] = r
        log(f"burst: last status {r['last_status_s']} s, last store write {r['last_store_write_s']} s after the "
            f"first patch (patching took {r['patch_s']} s)")

    def phase_restart(self):
        a = self.a
        interval = parse_seconds(a.refresh)
        log(f"restart: stopping the controller, then counting store requests per second for {2 * interval:.0f} s")
        self.stop_controller()
        self.restarts += 1
        t0 = time.time()
        ready_s = self.start_controller()
        series = []  # (second since restart, reads, writes)
        prev = self.metrics()
        end = t0 + 2 * interval
        next_t = time.time() + 1
        while time.time() < end:
            time.sleep(max(0, next_t - time.time()))
            next_t += 1
            cur = self.metrics()
            sr = store_requests(diff(prev, cur))
            series.append((round(time.time() - t0, 1), sr["reads"], sr["writes"]))
            prev = cur
        per_s = [r + w for _, r, w in series]
        sf = None
        if self.storelog:
            reqs = self.storelog.requests_between(t0, end)
            sf = [0] * int(2 * interval + 1)
            for t, _ in reqs:
                sf[min(int(t - t0), len(sf) - 1)] += 1
        time.sleep(2)
        s = self.sampler.now()
        nz = [x for x in per_s if x]
        r = {
            "controller_ready_s": round(ready_s, 2),
            "per_second": {"max": max(per_s) if per_s else 0, "mean": round(statistics.fmean(per_s), 1) if per_s
                           else 0, "p99": pct(per_s, 99), "seconds_with_requests": len(nz),
                           "share_in_first_10pct_of_interval": round(
                               sum(per_s[: max(1, int(interval / 10))]) / max(sum(per_s), 1), 3)},
            "series": [{"t": t, "reads": rd, "writes": w} for t, rd, w in series],
            "store_log_per_second": sf,
            "rss_after_mib": round(s[1] / 1024, 1) if s else None,
            "process": self.sampler.window(t0, end),
        }
        self.result["phases"]["restart"] = r
        log(f"restart: store requests per second max {r['per_second']['max']}, mean {r['per_second']['mean']}; "
            f"controller {r['rss_after_mib']} MiB after")

    # -- clean-up -----------------------------------------------------------------------------------------------
    def cleanup(self):
        ns = self.ns
        try:
            if self.proc is not None and self.proc.poll() is None:
                # SecretSyncs first while the controller runs (it holds the finalizers of deletionPolicy Delete).
                self.kube.request("DELETE", f"{GROUP}/namespaces/{ns}/secretsyncs", ok=None)
                end = time.time() + 60 + self.a.n * 0.02
                while time.time() < end:
                    _, lst = self.kube.request("GET", f"{GROUP}/namespaces/{ns}/secretsyncs?limit=1", ok=None)
                    if not (lst or {}).get("items"):
                        break
                    time.sleep(1)
        except Exception as e:  # noqa: BLE001
            log(f"clean-up: {e}")
        self.stop_controller()
        if self.watch:
            self.watch.stop()
        if self.storelog:
            self.storelog.stop()
        try:
            # No namespace controller without the node: delete the contents, then the namespace.
            _, lst = self.kube.request("GET", f"{GROUP}/namespaces/{ns}/secretsyncs", ok=None)
            for item in (lst or {}).get("items", []):
                if item["metadata"].get("finalizers"):
                    self.kube.merge_patch(f"{GROUP}/namespaces/{ns}/secretsyncs/{item['metadata']['name']}",
                                          {"metadata": {"finalizers": None}})
            for path in (f"{GROUP}/namespaces/{ns}/secretsyncs", f"{GROUP}/namespaces/{ns}/stores",
                         f"/api/v1/namespaces/{ns}/secrets", f"/api/v1/namespaces/{ns}/events",
                         f"/apis/events.k8s.io/v1/namespaces/{ns}/events"):
                self.kube.request("DELETE", path, ok=None)
            self.kube.request("DELETE", f"/api/v1/namespaces/{ns}", ok=None)
        except Exception as e:  # noqa: BLE001
            log(f"clean-up: {e}")
        self.sampler.stopped.set()


def parse_seconds(text):
    m = re.fullmatch(r"(\d+)(s|m|h)", text)
    if not m:
        raise SystemExit(f"refresh {text!r}: use <n>s, <n>m or <n>h")
    return int(m.group(1)) * {"s": 1, "m": 60, "h": 3600}[m.group(2)]


def table(res):
    c, p = res["config"], res["phases"]
    rows = [("N x keys / dialect / refresh / rate",
             f"{c['n']} x {c.get('keys', 1)} / {c['dialect']} / {c['refresh']} / {c['rate']} per s")]
    if "idle" in p:
        rows.append(("controller RSS idle / with N Secrets", f"{p['idle']['rss_mib']} / {p['secrets']['rss_mib']} MiB"))
    if "first" in p:
        f = p["first"]
        rows.append(("first sync of N (apply / after apply)",
                     f"{f['first_sync_s']} s ({f['apply_s']} s / {f['after_apply_s']} s)"))
        rows.append(("first sync: store reads / writes per object",
                     f"{f['store_requests']['reads'] / c['n']:.2f} / {f['store_requests']['writes'] / c['n']:.2f}"))
        rows.append(("first sync: API reads / status / other writes per object",
                     "{reads} / {status_writes} / {other_writes}".format(**f["api"]["per_unit"])))
        rows.append(("first sync: RSS max / at its end, CPU", f"{f['process'].get('rss_max_mib')} / "
                     f"{f['process'].get('rss_end_mib')} MiB, {f['process'].get('cpu_s')} s"))
    if "rest" in p:
        r = p["rest"]
        rows.append(("at rest: store reads / writes per refresh (per object per interval)",
                     f"{r['per_refresh']['reads']} / {r['per_refresh']['writes']} "
                     f"({r['per_object_per_refresh']['reads']} / {r['per_object_per_refresh']['writes']})"))
        rows.append(("at rest: API reads / status / other writes per refresh",
                     "{reads} / {status_writes} / {other_writes}".format(**r["api_per_refresh"])))
        rows.append(("at rest: RSS, CPU", f"{r['process'].get('rss_end_mib')} MiB, {r['process'].get('cpu_pct')} %"))
        rows.append(("RSS growth per object: (rest - idle) / N, (rest - with Secrets) / N",
                     f"{(r['process'].get('rss_end_mib', 0) - p['idle']['rss_mib']) * 1024 / c['n']:.1f} KiB, "
                     f"{(r['process'].get('rss_end_mib', 0) - p['secrets']['rss_mib']) * 1024 / c['n']:.1f} KiB"))
    if "latency" in p:
        l_ = p["latency"]
        fmt = lambda d: f"{d.get('p50')} / {d.get('p90')} / {d.get('p99')} / {d.get('max')} ms" if d else "n/a"  # noqa
        rows.append((f"change -> status, p50/p90/p99/max ({l_['changes']} changes)", fmt(l_["patch_to_status_ms"])))
        rows.append(("change -> store write (store's log)", fmt(l_["patch_to_store_write_ms"])))
        cp = l_["controller_push_latency"]
        rows.append(("controller push latency histogram p50/p99 (bucket bound)",
                     f"<= {cp.get('p50_le_ms')} / <= {cp.get('p99_le_ms')} ms"))
        rows.append(("API reads / status / other writes per change (raw)",
                     "{reads} / {status_writes} / {other_writes}".format(**l_["api"]["per_unit"])))
        n_ = l_["attributed_per_change"]
        rows.append(("  the same, naming the changed object only",
                     f"{n_['api_reads']} / {n_['api_status_writes']} / {n_['api_other_writes']}"))
        if "store_reads" in n_:
            rows.append(("store reads / writes per change (store's log, that secret only)",
                         f"{n_['store_reads']} / {n_['store_writes']}"))
        else:
            rows.append(("store reads / writes in the phase per change (with refreshes)",
                         f"{l_['store_requests']['reads'] / l_['changes']:.2f} / "
                         f"{l_['store_requests']['writes'] / l_['changes']:.2f}"))
    if "burst" in p:
        b = p["burst"]
        rows.append(("burst of N: last status / last store write",
                     f"{b['last_status_s']} s / {b['last_store_write_s']} s (patching took {b['patch_s']} s)"))
        rows.append(("burst: store reads / writes per change",
                     f"{b['store_requests']['reads'] / c['n']:.2f} / {b['store_requests']['writes'] / c['n']:.2f}"))
        rows.append(("burst: API reads / status / other writes per change",
                     "{reads} / {status_writes} / {other_writes}".format(**b["api"]["per_unit"])))
        rows.append(("burst: RSS max, CPU", f"{b['process'].get('rss_max_mib')} MiB, {b['process'].get('cpu_s')} s "
                     f"({b['process'].get('cpu_pct')} %)"))
    if "restart" in p:
        s = p["restart"]
        rows.append(("after restart: store requests per s max / mean",
                     f"{s['per_second']['max']} / {s['per_second']['mean']} "
                     f"({round(100 * s['per_second']['share_in_first_10pct_of_interval'])} % in the first tenth)"))
        rows.append(("after restart: RSS", f"{s['rss_after_mib']} MiB"))
    fr = res.get("foreign_requests_in_namespace")
    rows.append(("API requests in the namespace by another process of the ServiceAccount",
                 f"{fr['count']} (first sync: {p.get('first', {}).get('api', {}).get('foreign_requests_in_namespace')})"
                 if fr else "0"))
    w = max(len(k) for k, _ in rows)
    out = [f"| {'measure'.ljust(w)} | value |", f"| {'-' * w} | --- |"]
    out += [f"| {k.ljust(w)} | {v} |" for k, v in rows]
    if "restart" in p:
        out.append("")
        out.append(series_chart(p["restart"]["series"], parse_seconds(c["refresh"])))
    return "\n".join(out)


def series_chart(series, interval):
    """Store requests per second after the restart, summed into 5-second bins, as a bar chart."""
    if not series:
        return ""
    width = 5
    bins = {}
    for s in series:
        b = int((s["t"] - 0.001) // width)
        bins[b] = bins.get(b, 0) + s["reads"] + s["writes"]
    top = max(bins.values()) or 1
    lines = [f"store requests after the restart, per {width} s (refresh interval {interval} s):"]
    for b in sorted(bins):
        lines.append(f"  {b * width:4d}-{(b + 1) * width:<4d} s {bins[b]:6d} {'#' * round(50 * bins[b] / top)}")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--keys", type=int, default=1, help="keys per source Secret; above 1 each SecretSync pushes "
                    "them all (spec.data, a regex) as the properties of one remote JSON secret")
    ap.add_argument("--dialect", default="ServiceFabricMesh", choices=DIALECTS)
    ap.add_argument("--refresh", default="30s")
    ap.add_argument("--rate", type=int, default=200, help="store requests per second (--backend-rate and the "
                    "Store's rateLimit)")
    ap.add_argument("--burst", type=int, default=0, help="token-bucket burst (default: the rate)")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--changes", type=int, default=200, help="individually timed changes")
    ap.add_argument("--spacing", type=float, default=0.25, help="seconds between timed changes")
    ap.add_argument("--apply-workers", type=int, default=8)
    ap.add_argument("--phases", default="first,rest,latency,burst,restart")
    ap.add_argument("--out-dir", default=os.path.join(ROOT, "bench", "results"))
    ap.add_argument("--controller-kubeconfig", required=True)
    a = ap.parse_args()
    a.burst = a.burst or a.rate
    if a.keys < 1:
        raise SystemExit("--keys: at least 1")
    os.makedirs(a.out_dir, exist_ok=True)
    phases = [p.strip() for p in a.phases.split(",") if p.strip()]
    free = shutil.disk_usage(ROOT).free
    if free < MIN_FREE:
        log(f"only {free / 2**30:.1f} GiB free on the disk (BENCH_MIN_FREE_GIB={MIN_FREE / 2**30:.1f}): not starting")
        return 2
    b = Bench(a)
    stop = {"signal": None}

    def on_signal(sig, _frame):
        stop["signal"] = sig
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    failed = None
    try:
        b.setup()
        for ph in ("first", "rest", "latency", "burst", "restart"):
            if ph in phases:
                getattr(b, "phase_" + ph)()
    except (Exception, KeyboardInterrupt) as e:  # noqa: BLE001
        failed = f"{type(e).__name__}: {e}"
        log(f"FAILED: {failed}")
    finally:
        b.cleanup()
    b.result["failed"] = failed
    b.result["config"]["finished"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    b.result["controller_log"] = b.ctl_log
    b.audit.poll()
    if b.audit.foreign:
        by = {}
        for _, verb, res, sub, _ in b.audit.foreign:
            key = f"{verb} {res}{'/' + sub if sub else ''}"
            by[key] = by.get(key, 0) + 1
        ts = [rec[0] for rec in b.audit.foreign]
        b.result["foreign_requests_in_namespace"] = {"count": len(ts), "by_verb_resource": dict(sorted(by.items())),
                                                     "from": min(ts), "to": max(ts)}
        log(f"WARNING: {len(ts)} API requests in {b.ns} came from another process of the controller's "
            f"ServiceAccount ({by}): the phases that overlap them are not this controller's alone")
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    # A heap-profiled run's timings are dhat's, not the controller's: named so that it is never taken for one.
    suffix = "-heap-profile" if os.environ.get("HEAP_PROFILE") == "1" else ""
    shape = f"x{a.keys}" if a.keys > 1 else ""
    path = os.path.join(a.out_dir, f"{stamp}-{a.dialect}-{a.n}{shape}{suffix}.json")
    with open(path, "w") as f:
        json.dump(b.result, f, indent=1)
    print(table(b.result) if b.result["phases"] else "(no phase completed)")
    print(f"\nresult: {os.path.relpath(path, ROOT)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
