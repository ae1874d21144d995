#!/usr/bin/env bash
# Starts moto's server (Secrets Manager and STS; moto_server.py: STS web identity unsigned, as AWS takes it) over HTTPS with a certificate from a CA made here, with IAM
# authentication on: the first requests (INITIAL_NO_AUTH_ACTION_COUNT) make an IAM user with an access key and a
# role for web identity, both allowed secretsmanager:*, and every later request must be signed by a key moto
# knows. Writes .testbed/env.d/aws.env. Idempotent.
source "$(dirname "$0")/../lib.sh"
bash "$ROOT/tests/testbed/aws/install.sh"

dir="$TB/aws"
envfile="$TB/env.d/aws.env"
# The certificate names the node's address too: pods reach moto at $NODE_IP:<port>, DNATed to loopback
# (node/README.md); the dialect takes plain HTTP only on loopback, so everything speaks HTTPS to it.
source "$ROOT/tests/testbed/node/common.sh"
names_node() { openssl x509 -in "$dir/server.crt" -noout -ext subjectAltName 2>/dev/null | grep -q "IP Address:$NODE_IP\b"; }
if alive aws-moto && [ -f "$envfile" ] && names_node; then
  log "moto already running"
  exit 0
fi
[ -f "$TB/pids/aws-moto.pid" ] && stop_pid "$TB/pids/aws-moto.pid"
mkdir -p "$dir"
chmod 700 "$dir"
tls_expire "$dir"
names_node || rm -f "$dir/server.crt" "$dir/server.key"
tls_ca "$dir" ca "moto test CA"
tls_server "$dir" ca server "IP:127.0.0.1,IP:$NODE_IP,DNS:localhost"

port=$(free_port)
# Five unauthenticated IAM calls set up the principals below; moto then checks every signature and policy.
start_bg aws-moto env INITIAL_NO_AUTH_ACTION_COUNT=5 MOTO_ALLOW_NONEXISTENT_REGION=true \
  "$TB/venv-aws/bin/python" "$ROOT/tests/testbed/aws/moto_server.py" -H 127.0.0.1 -p "$port" -c "$dir/server.crt" -k "$dir/server.key"
wait_until 60 "moto" curl -sf --max-time 5 --cacert "$dir/ca.crt" "https://127.0.0.1:$port/moto-api/data.json"

(umask 077; "$TB/venv-aws/bin/python" - "https://127.0.0.1:$port" "$dir/ca.crt" > "$dir/principals" <<'PY'
import json, sys
import boto3
endpoint, ca = sys.argv[1], sys.argv[2]
iam = boto3.client("iam", endpoint_url=endpoint, verify=ca, region_name="us-east-1",
                   aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap")
allow = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "secretsmanager:*", "Resource": "*"}]})
iam.create_user(UserName="secretsync")
key = iam.create_access_key(UserName="secretsync")["AccessKey"]
iam.put_user_policy(UserName="secretsync", PolicyName="secrets", PolicyDocument=allow)
trust = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRoleWithWebIdentity",
    "Principal": {"Federated": "arn:aws:iam::123456789012:oidc-provider/testbed"}}]})
role = iam.create_role(RoleName="secretsync-web-identity", AssumeRolePolicyDocument=trust)["Role"]
iam.put_role_policy(RoleName="secretsync-web-identity", PolicyName="secrets", PolicyDocument=allow)
print(key["AccessKeyId"], key["SecretAccessKey"], role["Arn"])
PY
)
read -r key_id key_secret role_arn < "$dir/principals"

cat > "$envfile" <<ENV
export AWSSM_ENDPOINT=https://127.0.0.1:$port
export AWSSM_CA_CERT=$dir/ca.crt
export AWSSM_CA_B64=$(base64 -w0 "$dir/ca.crt")
export AWSSM_REGION=us-east-1
export AWSSM_ACCESS_KEY_ID=$key_id
export AWSSM_SECRET_ACCESS_KEY=$key_secret
export AWSSM_ROLE_ARN=$role_arn
ENV
log "moto on 127.0.0.1:$port (HTTPS)"
