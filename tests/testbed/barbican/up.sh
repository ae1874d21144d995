#!/usr/bin/env bash
# Starts the real OpenStack Key Manager stack from PyPI on loopback, each process under gunicorn, on a PostgreSQL
# server of its own, as OpenStack runs in production:
#   - postgres:           Debian's PostgreSQL 15 (postgres.sh) as the `postgres` user, its data and unix socket in
#                         a directory outside the checkout while it runs (lib.sh: outside_take), on 127.0.0.1;
#                         Keystone's database, owned by a role with a random password;
#   - keystone:           Keystone (fernet tokens valid for an hour), bootstrapped with an admin, a `secretsync`
#                         project and user (member), a reader user and an application credential;
#   - keystone-short:     a second Keystone process on the same database and keys whose tokens live
#                         $SHORT_TTL seconds, for the token-renewal tests;
#   - barbican-keystone:  Barbican behind keystonemiddleware (pipeline barbican-api-keystone), registered in the
#                         catalog as the `key-manager` endpoint;
#   - barbican-noauth:    Barbican without authentication (pipeline barbican_api: X-Project-Id and X-Roles).
# Keystone's three processes used to share one SQLite file, which under CPU load answered "database is locked"
# (a Keystone 500). Both Barbicans use SQLite and the simple_crypto plugin with a KEK generated here; each runs one
# sync worker, since SQLite answers concurrent writers from several processes with "database is locked" (HTTP 500).
# They stay off PostgreSQL: there Barbican 23.0.0's simple_crypto stores the project KEK (Python bytes) in a text
# column as psycopg2's hex escape ('\x6741...'), and every later secret write fails with 500 (fernet InvalidToken).
# State lives in .testbed/barbican/ and .testbed/postgres/ (down.sh moves the database back there) and survives
# restarts. Writes .testbed/env.d/barbican.env.
# Idempotent: does nothing while all five processes are alive; otherwise restarts all of them.
source "$(dirname "$0")/../lib.sh"
bash "$ROOT/tests/testbed/barbican/install.sh"

here=$ROOT/tests/testbed/barbican
dir=$TB/barbican
envfile=$TB/env.d/barbican.env
venv=$TB/venv-barbican
PGBIN=/usr/lib/postgresql/15/bin
procs=(postgres keystone keystone-short barbican-keystone barbican-noauth)
SHORT_TTL=30

running=1
for p in "${procs[@]}"; do alive "$p" || running=0; done
if [ $running = 1 ] && [ -f "$envfile" ]; then
  log "keystone and barbican already running"
  exit 0
fi
# Reverse start order: the servers before their database.
for ((i = ${#procs[@]} - 1; i >= 0; i--)); do
  f=$TB/pids/${procs[i]}.pid
  if [ -f "$f" ]; then stop_pid "$f"; fi
done

mkdir -p "$dir/keystone" "$dir/noauth/.barbican" "$dir/keystone-auth/.barbican"
chmod 700 "$dir"
secret() {
  [ -s "$1" ] || (umask 077; python3 -c 'import secrets; print(secrets.token_hex(16))' > "$1")
}
for u in admin barbican secretsync secretsync-reader; do secret "$dir/$u.password"; done
# Password of Keystone's database role.
secret "$dir/db-keystone.password"
# simple_crypto's key-encryption key: 32 random bytes, base64.
[ -s "$dir/kek" ] || (umask 077; python3 -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())' > "$dir/kek")

kport=$(free_port)
kshort=$(free_port)
bks=$(free_port)
bnoauth=$(free_port)
pgport=$(free_port)

# ---------------------------------------------------------------------------------------------------- PostgreSQL
# PostgreSQL refuses to run as root: the server and its administration run as Debian's `postgres` user, which owns
# its directory (data/ and the socket's run/). That user may not be able to enter .testbed (a clone under a 0700
# directory), so the directory lives outside the checkout while the test bed is up; down.sh puts it back in
# .testbed/postgres.
as_pg() { (cd / && setpriv --reuid=postgres --regid=postgres --init-groups --reset-env -- "$@"); }
pgdir=$(outside_take postgres postgres)
if ! as_pg test -w "$pgdir"; then
  log "postgres: user postgres cannot reach $pgdir; every directory above it needs o+x"
  exit 1
fi
if [ ! -s "$pgdir/data/PG_VERSION" ]; then
  log "postgres: creating the cluster (once)"
  as_pg rm -rf "$pgdir/data"
  as_pg "$PGBIN/initdb" -D "$pgdir/data" -U postgres --auth-local=peer --auth-host=scram-sha-256 \
    --encoding=UTF8 --locale=C.UTF-8 >"$TB/logs/postgres-initdb.log" 2>&1
fi
as_pg mkdir -p "$pgdir/run"
start_bg postgres bash "$here/postgres.sh" "$pgdir/data" "$pgport" "$pgdir/run"
wait_until 60 "postgres" "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$pgport"
# psql as the superuser, over the unix socket (peer authentication); SQL on stdin, -v variables allowed.
pg_admin() { as_pg "$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$pgdir/run" -p "$pgport" -U postgres "$@"; }
# ensure_db ROLE DATABASE: the role (with its password from db-ROLE.password) and the database it owns.
ensure_db() {
  pg_admin -d postgres -v role="$1" -v db="$2" -v pw="$(cat "$dir/db-$1.password")" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'role') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
ALTER ROLE :"role" PASSWORD :'pw';
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role')
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
SQL
}
# has_table DATABASE TABLE: whether the schema has been created there.
has_table() { [ "$(echo "SELECT to_regclass('public.$2') IS NOT NULL" | pg_admin -d "$1")" = t ]; }
db_url() { echo "postgresql+psycopg2://$1:$(cat "$dir/db-$1.password")@127.0.0.1:$pgport/$2"; }
ensure_db keystone keystone

# ---------------------------------------------------------------------------------------------------- Keystone
keystone_conf() {
  cat <<CONF
[DEFAULT]
debug = false
[database]
connection = $(db_url keystone keystone)
[token]
provider = fernet
expiration = $1
[fernet_tokens]
key_repository = $dir/keystone/fernet-keys
[fernet_receipts]
key_repository = $dir/keystone/fernet-receipts
[credential]
key_repository = $dir/keystone/credential-keys
[identity]
# Test passwords are random; cheap hashing keeps password authentication fast.
password_hash_rounds = 4
CONF
}
(umask 077
 keystone_conf 3600 > "$dir/keystone/keystone.conf"
 keystone_conf "$SHORT_TTL" > "$dir/keystone/keystone-short.conf")
km() { "$venv/bin/keystone-manage" --config-file "$dir/keystone/keystone.conf" "$@"; }
# Bootstrapped when the admin user exists (the database, not a marker file, says so: either may be made afresh).
# fernet_setup and credential_setup keep keys that exist.
if ! has_table keystone local_user || [ "$(echo "SELECT count(*) FROM local_user WHERE name = 'admin'" | pg_admin -d keystone)" = 0 ]; then
  log "keystone: creating the database and keys (once)"
  km db_sync >"$TB/logs/keystone-manage.log" 2>&1
  km fernet_setup --keystone-user "$(id -u)" --keystone-group "$(id -g)" >>"$TB/logs/keystone-manage.log" 2>&1
  km credential_setup --keystone-user "$(id -u)" --keystone-group "$(id -g)" >>"$TB/logs/keystone-manage.log" 2>&1
  km bootstrap --bootstrap-password "$(cat "$dir/admin.password")" --bootstrap-username admin \
    --bootstrap-project-name admin --bootstrap-role-name admin --bootstrap-service-name keystone \
    --bootstrap-region-id RegionOne --bootstrap-public-url "http://127.0.0.1:$kport/v3" \
    >>"$TB/logs/keystone-manage.log" 2>&1
fi
start_bg keystone env OS_KEYSTONE_CONFIG_FILES="$dir/keystone/keystone.conf" \
  "$venv/bin/gunicorn" --no-control-socket --bind "127.0.0.1:$kport" --workers 2 --timeout 180 --chdir "$here" keystone_wsgi:application
start_bg keystone-short env OS_KEYSTONE_CONFIG_FILES="$dir/keystone/keystone-short.conf" \
  "$venv/bin/gunicorn" --no-control-socket --bind "127.0.0.1:$kshort" --workers 1 --timeout 180 --chdir "$here" keystone_wsgi:application
wait_until 90 "keystone" curl -sf --max-time 5 "http://127.0.0.1:$kport/v3"
wait_until 90 "keystone (short tokens)" curl -sf --max-time 5 "http://127.0.0.1:$kshort/v3"
ids=$("$venv/bin/python" "$here/bootstrap.py" "$dir" "http://127.0.0.1:$kport" "http://127.0.0.1:$bks" 2>>"$TB/logs/keystone-bootstrap.log")
field() { printf '%s' "$ids" | python3 -c "import json, sys; print(json.load(sys.stdin)['$1'])"; }

# ---------------------------------------------------------------------------------------------------- Barbican
barbican_conf() {
  cat <<CONF
[DEFAULT]
host_href = http://127.0.0.1:$2
db_auto_create = false
debug = false
[database]
connection = sqlite:///$dir/$1/barbican.db
[secretstore]
enabled_secretstore_plugins = store_crypto
[crypto]
enabled_crypto_plugins = simple_crypto
[simple_crypto_plugin]
kek = $(cat "$dir/kek")
[keystone_authtoken]
www_authenticate_uri = http://127.0.0.1:$kport/v3
auth_url = http://127.0.0.1:$kport
auth_type = password
username = barbican
password = $(cat "$dir/barbican.password")
project_name = service
user_domain_id = default
project_domain_id = default
interface = public
# No validation cache: a revoked token is refused at once (the 401-renewal test revokes one).
token_cache_time = -1
CONF
}
paste_ini() {
  sed "s#^/v1: .*#/v1: $1#; s#^disable_by_file_path = .*#disable_by_file_path = $dir/healthcheck_disable#" \
    "$venv/etc/barbican/barbican-api-paste.ini"
}
(umask 077
 barbican_conf keystone-auth "$bks" > "$dir/keystone-auth/.barbican/barbican.conf"
 barbican_conf noauth "$bnoauth" > "$dir/noauth/.barbican/barbican.conf")
paste_ini barbican-api-keystone > "$dir/keystone-auth/barbican-api-paste.ini"
paste_ini barbican_api > "$dir/noauth/barbican-api-paste.ini"
for inst in keystone-auth noauth; do
  if [ ! -f "$dir/$inst/.migrated" ]; then
    log "barbican ($inst): creating the database (once)"
    HOME="$dir/$inst" "$venv/bin/barbican-manage" db upgrade >"$TB/logs/barbican-manage-$inst.log" 2>&1
    touch "$dir/$inst/.migrated"
  fi
done
start_bg barbican-keystone env HOME="$dir/keystone-auth" BARBICAN_PASTE_INI="$dir/keystone-auth/barbican-api-paste.ini" \
  "$venv/bin/gunicorn" --no-control-socket --chdir "$here" --bind "127.0.0.1:$bks" --workers 1 --timeout 60 barbican_wsgi:application
start_bg barbican-noauth env HOME="$dir/noauth" BARBICAN_PASTE_INI="$dir/noauth/barbican-api-paste.ini" \
  "$venv/bin/gunicorn" --no-control-socket --chdir "$here" --bind "127.0.0.1:$bnoauth" --workers 1 --timeout 60 barbican_wsgi:application
wait_until 90 "barbican (keystone)" curl -sf --max-time 5 "http://127.0.0.1:$bks/" -o /dev/null
wait_until 90 "barbican (no auth)" curl -sf --max-time 5 -H "X-Project-Id: probe" -H "X-Roles: member" "http://127.0.0.1:$bnoauth/v1/secrets" -o /dev/null

appcred_id=$(python3 -c "import json; print(json.load(open('$dir/appcred.json'))['id'])")
appcred_secret=$(python3 -c "import json; print(json.load(open('$dir/appcred.json'))['secret'])")
(umask 077; cat > "$envfile" <<ENV
export BARBICAN_ENDPOINT=http://127.0.0.1:$bks
export BARBICAN_NOAUTH_ENDPOINT=http://127.0.0.1:$bnoauth
export BARBICAN_MAX_SECRET_BYTES=20000
export KEYSTONE_AUTH_URL=http://127.0.0.1:$kport/v3
export KEYSTONE_SHORT_AUTH_URL=http://127.0.0.1:$kshort/v3
export KEYSTONE_SHORT_TTL=$SHORT_TTL
export KEYSTONE_ADMIN_PASSWORD=$(cat "$dir/admin.password")
export KEYSTONE_USERNAME=secretsync
export KEYSTONE_PASSWORD=$(cat "$dir/secretsync.password")
export KEYSTONE_READER_USERNAME=secretsync-reader
export KEYSTONE_READER_PASSWORD=$(cat "$dir/secretsync-reader.password")
export KEYSTONE_PROJECT=secretsync
export KEYSTONE_PROJECT_ID=$(field project_id)
export KEYSTONE_USER_ID=$(field user_id)
export KEYSTONE_APP_CRED_ID=$appcred_id
export KEYSTONE_APP_CRED_SECRET=$appcred_secret
ENV
)
log "postgres on 127.0.0.1:$pgport; keystone on http://127.0.0.1:$kport/v3 (short tokens: $kshort); barbican behind keystone on http://127.0.0.1:$bks, without auth on http://127.0.0.1:$bnoauth"
