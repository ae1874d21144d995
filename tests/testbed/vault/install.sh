#!/usr/bin/env bash
# Builds the real Vault server (github.com/hashicorp/vault, the version pinned in go.mod/go.sum) into
# .testbed/bin/vault; the same binary is the `vault` CLI the tests read back with. Rebuilds only when go.mod, go.sum
# or this script change, so a warm run costs a hash and a stat.
#
# Vault's go.mod replaces its sdk module with the sdk directory of its own release branch, which is published under
# no version (and the module proxy serves no commit of it): a dependent module gets the published sdk v0.21.0 its
# go.mod requires instead. It differs from the branch's in two signatures, so three lines of Vault are adapted, in
# a copy of the module under .testbed/vault-build/, which is built with this module graph: framework.Backend's
# ActivationFunc takes one more argument (a string; identity deduplication's activation flag, which the test bed
# never sets), and keysutil's RestorePolicy returns no key name (Transit's restore names the key it was asked for in
# its audit observation). Every other byte is the module's. README.md says what was tried.
source "$(dirname "$0")/../lib.sh"
here="$ROOT/tests/testbed/vault"
export GOTOOLCHAIN=local GOFLAGS=-mod=mod
apt_install openssl curl ca-certificates
command -v go >/dev/null || { log "go is required (1.25.3 or newer) to build Vault"; exit 1; }

version=$(sed -n 's/^[[:space:]]*github.com\/hashicorp\/vault v\([0-9.]*\).*/\1/p' "$here/go.mod" | head -1)
stamp_file="$TB/bin/.vault-build.sha256"
want=$(cat "$here/go.mod" "$here/go.sum" "$0" | sha256sum | cut -d' ' -f1)
if [ -x "$TB/bin/vault" ] && [ "$(cat "$stamp_file" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
log "building Vault v$version from its Go module (cold: see vault/README.md; on a machine that built it once: a link)"
start=$SECONDS
build="$TB/vault-build"
[ -d "$build" ] && chmod -R u+w "$build" && rm -rf "$build"
mkdir -p "$build"
cd "$here"
src=$(go mod download -json "github.com/hashicorp/vault@v$version" | python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')
cp -r "$src" "$build/vault"
chmod -R u+w "$build/vault"
adapt() { # FILE FROM TO: one exact replacement, or the build stops (a new version needs a look, not a guess)
  python3 - "$build/vault/$1" "$2" "$3" <<'PY'
import sys
path, old, new = sys.argv[1:]
text = open(path).read()
if text.count(old) != 1:
    sys.exit(f"{path}: expected exactly one {old!r}")
open(path, "w").write(text.replace(old, new))
PY
}
adapt vault/identity_store.go 'ActivationFunc: iStore.activateDeduplication,' \
  'ActivationFunc: func(ctx context.Context, req *logical.Request, _ string) error { return iStore.activateDeduplication(ctx, req) },'
adapt vault/logical_system_activation_flags.go 'b.idStoreBackend.ActivationFunc(ctx, nil)' \
  'b.idStoreBackend.ActivationFunc(ctx, nil, "")'
adapt builtin/logical/transit/path_restore.go 'restoredKeyName, err := b.lm.RestorePolicy(' \
  'restoredKeyName, err := keyName, b.lm.RestorePolicy('
# The wrapper's module graph, with Vault itself from the adapted copy.
cp "$here/go.mod" "$here/go.sum" "$build/"
echo "replace github.com/hashicorp/vault => $build/vault" >> "$build/go.mod"
# -trimpath: no checkout path in the compiled packages, so another clone on this machine reuses the build cache.
(cd "$build" && go build -trimpath -o "$TB/bin/vault.new" -ldflags "-s -w" github.com/hashicorp/vault)
mv "$TB/bin/vault.new" "$TB/bin/vault"
echo "$want" > "$stamp_file"
log "Vault built in $((SECONDS - start)) s"
