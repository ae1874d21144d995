#!/usr/bin/env python3
"""Builds a FROM-scratch container image as a `docker save` tarball, without any registry or daemon.

usage: mkimage.py OUT.tar NAME:TAG[,NAME:TAG...] ENTRYPOINT SRC=DEST [SRC=DEST ...] [--env K=V ...] [--port N ...]
                   [--user UID:GID] [--cmd ARG ...]

Each SRC file is copied to DEST (an absolute path inside the image, parents created, mode kept). The single layer
is reproducible: sorted entries, mtime 0, uid/gid 0. `ctr -n k8s.io images import OUT.tar` loads it with the
name NAME:TAG (docker.io/library/ is prefixed to a name without a registry, as Docker would). Several
comma-separated names tag the same image.
"""
import hashlib, io, json, os, sys, tarfile

def main(argv):
    out, ref, entry, rest = argv[0], argv[1], argv[2], argv[3:]
    files, env, ports, user, cmd = [], ["PATH=/"], {}, None, []
    it = iter(rest)
    for a in it:
        if a == "--env": env.append(next(it))
        elif a == "--port": ports[f"{next(it)}/tcp"] = {}
        elif a == "--user": user = next(it)
        elif a == "--cmd": cmd.append(next(it))
        else:
            src, dest = a.split("=", 1)
            files.append((src, dest.lstrip("/")))
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w", format=tarfile.PAX_FORMAT) as t:
        dirs = sorted({"/".join(d.split("/")[:i]) for _, d in files for i in range(1, d.count("/") + 1)})
        for d in dirs:
            ti = tarfile.TarInfo(d); ti.type = tarfile.DIRTYPE; ti.mode = 0o755; t.addfile(ti)
        for src, dest in sorted(files, key=lambda f: f[1]):
            data = open(src, "rb").read()
            ti = tarfile.TarInfo(dest); ti.size = len(data); ti.mode = os.stat(src).st_mode & 0o7777
            t.addfile(ti, io.BytesIO(data))
    layer = layer.getvalue()
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = {
        "architecture": "amd64", "os": "linux", "created": "1970-01-01T00:00:00Z",
        "config": {"Entrypoint": [entry], "Env": env, "WorkingDir": "/", **({"ExposedPorts": ports} if ports else {}),
                   **({"User": user} if user else {}), **({"Cmd": cmd} if cmd else {})},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "tests/testbed/node/mkimage.py"}],
    }
    cfg = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    cfg_name = hashlib.sha256(cfg).hexdigest() + ".json"
    layer_name = diff_id[7:] + "/layer.tar"
    manifest = json.dumps([{"Config": cfg_name, "RepoTags": ref.split(","), "Layers": [layer_name]}]).encode()
    with tarfile.open(out, "w") as t:
        for name, data in ((layer_name, layer), (cfg_name, cfg), ("manifest.json", manifest)):
            ti = tarfile.TarInfo(name); ti.size = len(data); ti.mode = 0o644
            t.addfile(ti, io.BytesIO(data))

if __name__ == "__main__":
    if len(sys.argv) < 5: sys.exit(__doc__)
    main(sys.argv[1:])
