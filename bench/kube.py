"""A small Kubernetes client for the benchmark (Python stdlib only): token auth from a kubeconfig, JSON requests,
server-side apply, and a watch that timestamps every event as it arrives."""

import base64
import http.client
import json
import os
import ssl
import subprocess
import threading
import time
import urllib.parse


class Kube:
    def __init__(self, kubeconfig):
        raw = subprocess.run(
            ["kubectl", "--kubeconfig", kubeconfig, "config", "view", "--raw", "--minify", "-o", "json"],
            check=True, capture_output=True, text=True,
        ).stdout
        cfg = json.loads(raw)
        cluster = cfg["clusters"][0]["cluster"]
        user = cfg["users"][0]["user"]
        url = urllib.parse.urlparse(cluster["server"])
        self.host, self.port = url.hostname, url.port or 443
        self.ctx = ssl.create_default_context()
        self.ctx.load_verify_locations(
            cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
        self.token = user["token"]
        self.local = threading.local()

    def _conn(self, fresh=False, timeout=120):
        if fresh:
            return http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=timeout)
        c = getattr(self.local, "conn", None)
        if c is None:
            c = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=timeout)
            self.local.conn = c
        return c

    def request(self, method, path, body=None, content_type="application/json", ok=(200, 201, 202)):
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        headers = {"Authorization": "Bearer " + self.token, "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = content_type
        for attempt in range(5):
            c = self._conn()
            try:
                c.request(method, path, body=data, headers=headers)
                r = c.getresponse()
                payload = r.read()
            except (http.client.HTTPException, OSError):
                c.close()
                self.local.conn = None
                if attempt == 4:
                    raise
                time.sleep(0.2 * (attempt + 1))
                continue
            if r.status == 429 or r.status >= 500:
                time.sleep(0.2 * (attempt + 1))
                continue
            out = json.loads(payload) if payload else None
            if ok and r.status not in ok:
                raise RuntimeError(f"{method} {path}: {r.status} {payload[:300]!r}")
            return r.status, out
        raise RuntimeError(f"{method} {path}: gave up after retries")

    def apply(self, path, obj, manager="secretsync-bench"):
        """Server-side apply of one object at its path (…/<plural>/<name>)."""
        q = urllib.parse.urlencode({"fieldManager": manager, "force": "true"})
        return self.request("PATCH", f"{path}?{q}", obj, content_type="application/apply-patch+yaml")

    def merge_patch(self, path, patch):
        return self.request("PATCH", path, patch, content_type="application/merge-patch+json")


class Watch(threading.Thread):
    """Lists, then watches a collection; calls on_event(t, type, obj) for every object, t = arrival time
    (time.time()). Re-watches from the last resourceVersion when the server ends the stream."""

    def __init__(self, kube, path, on_event, on_list=None):
        super().__init__(daemon=True)
        self.kube, self.path, self.on_event, self.on_list = kube, path, on_event, on_list
        self.stopped = threading.Event()
        self.ready = threading.Event()
        self.conn = None

    def run(self):
        rv = None
        while not self.stopped.is_set():
            try:
                if rv is None:
                    _, lst = self.kube.request("GET", self.path + "?limit=0")
                    now = time.time()
                    for item in lst.get("items", []):
                        self.on_event(now, "ADDED", item)
                    rv = lst["metadata"]["resourceVersion"]
                    self.ready.set()
                q = urllib.parse.urlencode({"watch": "1", "resourceVersion": rv, "allowWatchBookmarks": "true",
                                            "timeoutSeconds": "3000"})
                c = self.kube._conn(fresh=True, timeout=None)
                self.conn = c
                c.request("GET", f"{self.path}?{q}", headers={"Authorization": "Bearer " + self.kube.token})
                r = c.getresponse()
                if r.status != 200:
                    r.read()
                    rv = None
                    time.sleep(0.5)
                    continue
                while not self.stopped.is_set():
                    line = r.readline()
                    if not line:
                        break
                    t = time.time()
                    ev = json.loads(line)
                    typ, obj = ev["type"], ev["object"]
                    if typ == "ERROR":
                        rv = None  # too old: list again
                        break
                    rv = obj["metadata"].get("resourceVersion", rv)
                    if typ != "BOOKMARK":
                        self.on_event(t, typ, obj)
                c.close()
            except Exception:  # noqa: BLE001 - a broken stream is re-watched
                if self.stopped.is_set():
                    return
                time.sleep(0.5)

    def stop(self):
        self.stopped.set()
        try:
            if self.conn is not None:
                self.conn.sock and self.conn.sock.shutdown(2)
        except OSError:
            pass


class LogTail(threading.Thread):
    """Follows a growing log file and calls on_line(t, line) for every new line, t = when it was read
    (polled every few milliseconds)."""

    def __init__(self, path, on_line, poll=0.003):
        super().__init__(daemon=True)
        self.path, self.on_line, self.poll = path, on_line, poll
        self.stopped = threading.Event()

    def run(self):
        with open(self.path, "rb") as f:
            f.seek(0, os.SEEK_END)
            buf = b""
            while not self.stopped.is_set():
                chunk = f.read()
                if not chunk:
                    time.sleep(self.poll)
                    continue
                t = time.time()
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    self.on_line(t, line.decode(errors="replace"))

    def stop(self):
        self.stopped.set()
