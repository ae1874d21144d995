# Shared helpers for the test-bed scripts. Source it; do not run it.
#
# Conventions every backend follows (see tests/testbed/README.md):
#   - processes listen on 127.0.0.1 only, on ports from free_port;
#   - each started process is recorded in $TB/pids/<name>.pid by start_bg, and only those PIDs are ever stopped;
#   - each backend writes its endpoints as `export VAR=value` lines to $TB/env.d/<backend>.env.
set -euo pipefail

ROOT=${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
TB=${TB:-$ROOT/.testbed}
mkdir -p "$TB/pids" "$TB/logs" "$TB/env.d" "$TB/bin"

log() { printf '[testbed] %s\n' "$*" >&2; }

# A TCP port that is free on 127.0.0.1 right now.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# alive NAME: true when the recorded process NAME is running.
alive() {
  local f="$TB/pids/$1.pid"
  [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null
}

# start_bg NAME CMD...: starts CMD in the background in its own session, logging to $TB/logs/NAME.log, and
# records its PID. setsid makes the PID a process-group leader, so stop_pid can stop its children too.
start_bg() {
  local name=$1; shift
  setsid "$@" >"$TB/logs/$name.log" 2>&1 < /dev/null &
  echo $! > "$TB/pids/$name.pid"
}

# stop_pid FILE: TERM the recorded process group, wait up to 15 s, then KILL. Never looks processes up by name.
stop_pid() {
  local f=$1 pid
  pid=$(cat "$f" 2>/dev/null || true)
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

# wait_until SECONDS DESCRIPTION CMD...: retries CMD every 0.5 s until it succeeds.
wait_until() {
  local limit=$1 what=$2; shift 2
  local end=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $end ]; then log "timed out after ${limit}s waiting for $what"; return 1; fi
    sleep 0.5
  done
}

# python_venv NAME REQUIREMENTS_FILE: a venv at $TB/venv-NAME with the requirements installed; reinstalls only
# when the requirements file changes.
python_venv() {
  local name=$1 req=$2 venv="$TB/venv-$1"
  local stamp="$venv/.requirements.sha256" want
  want=$(sha256sum "$req" | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then return 0; fi
  log "installing Python packages for $name (once)"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
  echo "$want" > "$stamp"
}

# apt_install PKG...: installs Debian packages that are missing.
apt_install() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Test certificates (openssl, P-256 keys, with the v3 extensions webpki insists on), kept between runs.
# tls_expire DIR [FILE...]: when any certificate in DIR is within a day of expiring, removes DIR's certificates,
# keys and serials, and the FILEs made with them.
tls_expire() {
  local dir=$1 c
  shift
  for c in "$dir"/*.crt; do
    [ -f "$c" ] || continue
    openssl x509 -checkend 86400 -noout -in "$c" >/dev/null 2>&1 || { rm -f "$dir"/*.crt "$dir"/*.key "$dir"/*.srl "$@"; return 0; }
  done
}
# tls_ca DIR NAME CN: a self-signed CA, DIR/NAME.crt and DIR/NAME.key, unless there is one.
tls_ca() {
  local dir=$1 name=$2 cn=$3
  [ -f "$dir/$name.crt" ] && return 0
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj "/CN=$cn" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$dir/$name.key" -out "$dir/$name.crt" 2>/dev/null
  chmod 600 "$dir/$name.key"
}
# tls_leaf DIR CA NAME EXTENSIONS: DIR/NAME.crt and DIR/NAME.key, signed by the CA DIR/CA.crt, with the v3
# EXTENSIONS (one a line), unless there is one that CA signed (a CA made afresh makes its leaves afresh).
tls_leaf() {
  local dir=$1 ca=$2 name=$3 ext=$4
  [ -f "$dir/$name.crt" ] && openssl verify -CAfile "$dir/$ca.crt" "$dir/$name.crt" >/dev/null 2>&1 && return 0
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$name" \
    -keyout "$dir/$name.key" -out "$dir/$name.csr" 2>/dev/null
  printf '%s\n' "$ext" > "$dir/$name.ext"
  openssl x509 -req -in "$dir/$name.csr" -CA "$dir/$ca.crt" -CAkey "$dir/$ca.key" -CAcreateserial -days 30 \
    -extfile "$dir/$name.ext" -out "$dir/$name.crt" 2>/dev/null
  rm -f "$dir/$name.csr" "$dir/$name.ext"
  chmod 600 "$dir/$name.key"
}
# tls_server DIR CA NAME SANS: a server certificate for SANS (such as IP:127.0.0.1,DNS:localhost).
tls_server() {
  tls_leaf "$1" "$2" "$3" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=$4"
}
# tls_client DIR CA NAME: a client certificate.
tls_client() {
  tls_leaf "$1" "$2" "$3" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"
}
