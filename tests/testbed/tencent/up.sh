#!/usr/bin/env bash
# Starts the Tencent SSM emulator with generated key pairs: a main one, one for the rate-limit test (the
# emulator counts its limit per key pair and action, so that test's counts are its own), one for the Python
# SDK tests, temporary credentials with a token, and a read-only pair. Writes .testbed/env.d/tencent.env.
# Idempotent.
source "$(dirname "$0")/../lib.sh"
bash "$ROOT/tests/testbed/tencent/install.sh"

dir="$TB/tencent"
envfile="$TB/env.d/tencent.env"
if alive ssm-emulator && [ -f "$envfile" ]; then
  log "ssm-emulator already running"
  exit 0
fi
[ -f "$TB/pids/ssm-emulator.pid" ] && stop_pid "$TB/pids/ssm-emulator.pid"
mkdir -p "$dir"
chmod 700 "$dir"

# keypair NAME: a SecretId (AKID + 32 characters) and a SecretKey, kept across restarts.
keypair() {
  local f="$dir/$1"
  if [ ! -f "$f" ]; then
    (umask 077; printf 'AKID%s %s\n' "$(openssl rand -hex 16)" "$(openssl rand -hex 16)" > "$f")
  fi
  cat "$f"
}
read -r main_id main_key < <(keypair main)
read -r rate_id rate_key < <(keypair rate)
read -r sdk_id sdk_key < <(keypair sdk)
read -r temp_id temp_key < <(keypair temp)
read -r ro_id ro_key < <(keypair readonly)
[ -f "$dir/token" ] || (umask 077; openssl rand -hex 24 > "$dir/token")
token=$(cat "$dir/token")
rate=50

port=$(free_port)
start_bg ssm-emulator "$ROOT/target/debug/ssm-emulator" --port "$port" --rate-limit "$rate" \
  --account "$main_id:$main_key" --account "$rate_id:$rate_key" --account "$sdk_id:$sdk_key" \
  --temp-account "$temp_id:$temp_key:$token" --readonly-account "$ro_id:$ro_key"
wait_until 30 "ssm-emulator" curl -sf "http://127.0.0.1:$port/_emulator/health"

cat > "$envfile" <<ENV
export SSM_ENDPOINT=http://127.0.0.1:$port
export SSM_REGION=ap-guangzhou
export SSM_RATE_LIMIT=$rate
export SSM_SECRET_ID=$main_id
export SSM_SECRET_KEY=$main_key
export SSM_RATE_SECRET_ID=$rate_id
export SSM_RATE_SECRET_KEY=$rate_key
export SSM_SDK_SECRET_ID=$sdk_id
export SSM_SDK_SECRET_KEY=$sdk_key
export SSM_TEMP_SECRET_ID=$temp_id
export SSM_TEMP_SECRET_KEY=$temp_key
export SSM_TEMP_TOKEN=$token
export SSM_READONLY_SECRET_ID=$ro_id
export SSM_READONLY_SECRET_KEY=$ro_key
ENV
log "ssm-emulator on 127.0.0.1:$port"
