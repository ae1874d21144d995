#!/usr/bin/env bash
# Issue #35: the test bed runs wherever the project is cloned. Copies this checkout (its files as they are in the
# working tree, without target/ or .testbed/) under a fresh `mktemp -d` (0700, which the `postgres` user cannot
# enter), starts the Barbican backend there alone (barbican/up.sh: PostgreSQL as `postgres`, Keystone, Barbican;
# no kube-apiserver), checks that Keystone issues a token and that both Barbicans answer, runs the copy's
# down.sh and checks that nothing is left: no process of the copy's, no directory outside it.
#
# Safe next to this checkout's running test bed: the copy has its own .testbed, free_port there skips every port
# this checkout handed out (and checks that the port is free), and only PIDs the copy recorded are ever stopped.
# The copy uses this checkout's Barbican venv when it is current (a symlink; else it installs its own). Run by
# tests/run-integration.sh after the integration tests; about 45 s on 2 busy cores (most of it Keystone's first
# start on an empty database, and down.sh stopping each gunicorn).
source "$(dirname "$0")/lib.sh"
set +e
trap - ERR

t=$(mktemp -d /tmp/secretsync-clone-test.XXXXXX)
clone=$t/checkout
ctb=$clone/.testbed
failed=0
fail() { log "clone-location test: FAIL: $*"; failed=1; }

# The outside directories that belong to the copy: the one it recorded, and any naming the copy's .testbed.
copy_outside() {
  [ -L "$ctb/outside" ] && readlink "$ctb/outside"
  grep -lxF "$ctb" /var/tmp/secretsync-testbed-*/testbed 2>/dev/null | xargs -r -n1 dirname
}
# PIDs of processes that run from the copy or from its outside directories (command line or working directory).
copy_processes() {
  local p d dirs
  dirs=$(copy_outside | sort -u)
  for p in /proc/[0-9]*; do
    for d in "$t" $dirs; do
      if { tr '\0' ' ' < "$p/cmdline"; } 2>/dev/null | grep -qF "$d" ||
         case "$(readlink "$p/cwd" 2>/dev/null)" in "$d"|"$d"/*) true ;; *) false ;; esac; then
        echo "${p#/proc/}"; break
      fi
    done
  done
}
cleanup() {
  # Whatever a failed run left: the copy's own processes (by the PIDs it recorded), then its files.
  if compgen -G "$ctb/pids/*.pid" >/dev/null; then env -u TB -u ROOT bash "$clone/tests/testbed/down.sh" >/dev/null 2>&1; fi
  copy_outside | sort -u | while read -r d; do
    case "$d" in /var/tmp/secretsync-testbed-*) rm -rf "$d" ;; esac
  done
  rm -rf "$t"
}
trap cleanup EXIT

start=$SECONDS
# The copy: what `git clone` would give, plus this working tree's uncommitted and untracked (not ignored) files.
mkdir "$clone"
(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard |
  while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
  tar --null -T - -cf -) | tar -xf - -C "$clone"
mkdir -p "$ctb"
[ -f "$TB/ports.given" ] && cp "$TB/ports.given" "$ctb/ports.given"
req=$clone/tests/testbed/barbican/requirements.txt
if [ "$(cat "$TB/venv-barbican/.requirements.sha256" 2>/dev/null)" = "$(sha256sum "$req" | cut -d' ' -f1)" ]; then
  ln -s "$TB/venv-barbican" "$ctb/venv-barbican"
fi
log "clone-location test: a copy at $clone ($(stat -c %a "$t") $t); starting its Barbican backend"

# Generous bounds: this runs on 2 cores, often next to a build; up.sh's own waits are shorter than this.
if ! timeout --kill-after=10 900 env -u TB -u ROOT bash "$clone/tests/testbed/barbican/up.sh" >"$t/up.log" 2>&1; then
  fail "barbican/up.sh failed in the copy; the end of its output and logs:"
  tail -n 20 "$t/up.log" >&2
  for f in "$ctb"/logs/*.log; do [ -s "$f" ] && { log "--- ${f#"$t"/}"; tail -n 10 "$f" >&2; }; done
fi

if [ $failed = 0 ]; then
  (
    set -a; source "$ctb/env.d/barbican.env"; set +a
    token=$(curl -s --max-time 60 -D - -o /dev/null -H 'Content-Type: application/json' \
      -d "{\"auth\": {\"identity\": {\"methods\": [\"password\"], \"password\": {\"user\": {\"name\": \"$KEYSTONE_USERNAME\",
           \"domain\": {\"id\": \"default\"}, \"password\": \"$KEYSTONE_PASSWORD\"}}},
           \"scope\": {\"project\": {\"name\": \"$KEYSTONE_PROJECT\", \"domain\": {\"id\": \"default\"}}}}}" \
      "$KEYSTONE_AUTH_URL/auth/tokens" | tr -d '\r' | awk -F': ' 'tolower($1) == "x-subject-token" {print $2}')
    [ -n "$token" ] || { log "clone-location test: FAIL: Keystone (on PostgreSQL) issued no token"; exit 1; }
    code=$(curl -s --max-time 60 -o /dev/null -w '%{http_code}' -H "X-Auth-Token: $token" "$BARBICAN_ENDPOINT/v1/secrets")
    [ "$code" = 200 ] || { log "clone-location test: FAIL: Barbican behind Keystone answered $code"; exit 1; }
    code=$(curl -s --max-time 60 -o /dev/null -w '%{http_code}' -H "X-Project-Id: probe" -H "X-Roles: member" \
      "$BARBICAN_NOAUTH_ENDPOINT/v1/secrets")
    [ "$code" = 200 ] || { log "clone-location test: FAIL: Barbican without auth answered $code"; exit 1; }
  ) || failed=1
fi
[ $failed = 0 ] && log "clone-location test: Keystone and Barbican Ready in the copy after $((SECONDS - start)) s"

# Down, as `make testbed-down` would; then nothing may be left of the copy but its (parked) state under .testbed.
if [ $failed = 0 ] && [ -z "$(copy_processes)" ]; then
  fail "found no process of the copy's while it runs: the checks below would prove nothing"
fi
pids=$(cat "$ctb"/pids/*.pid 2>/dev/null)
outside=$(copy_outside | sort -u)
for d in $outside; do
  [ -f "$d/postgres/data/postmaster.pid" ] && pids+=" $(head -n 1 "$d/postgres/data/postmaster.pid")"
done
timeout --kill-after=10 120 env -u TB -u ROOT bash "$clone/tests/testbed/down.sh" >"$t/down.log" 2>&1 ||
  { fail "down.sh failed in the copy:"; tail -n 20 "$t/down.log" >&2; }
compgen -G "$ctb/pids/*.pid" >/dev/null && fail "PID files left in the copy: $(ls "$ctb/pids")"
for p in $pids; do
  kill -0 "$p" 2>/dev/null && fail "a process the copy recorded still runs: $p $({ tr '\0' ' ' < "/proc/$p/cmdline"; } 2>/dev/null)"
done
no_copy_processes() { [ -z "$(copy_processes)" ]; }
if ! wait_until 15 "the copy's processes to exit" no_copy_processes; then
  for p in $(copy_processes); do fail "a process of the copy's still runs: $p $({ tr '\0' ' ' < "/proc/$p/cmdline"; } 2>/dev/null)"; done
fi
for d in $(printf '%s\n' $outside $(copy_outside) | sort -u); do
  [ -e "$d" ] && fail "left outside the copy: $d"
done
[ -e "$ctb/outside" ] && fail "down.sh left the link $ctb/outside"
if [ $failed = 0 ] && [ ! -s "$ctb/postgres/data/PG_VERSION" ]; then
  fail "the database was not kept in $ctb/postgres for the next start"
fi

if [ $failed = 0 ]; then
  log "clone-location test: passed in $((SECONDS - start)) s"
else
  log "clone-location test: failed after $((SECONDS - start)) s"
fi
exit $failed
