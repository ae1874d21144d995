"""moto's server with one fidelity fix: STS takes AssumeRoleWithWebIdentity (and AssumeRoleWithSAML) unsigned, as
AWS does (the token is the proof), while moto with IAM authentication on asks every request for a signature."""

import sys

from moto.core.authorization import ActionAuthenticatorMixin
from moto.server import main

UNSIGNED = {"AssumeRoleWithWebIdentity", "AssumeRoleWithSAML"}
signed = ActionAuthenticatorMixin._authenticate_and_authorize_action


def authenticate(self, iam_request_cls, resource="*"):
    if "Authorization" not in self.headers and self._get_action() in UNSIGNED:
        return None
    return signed(self, iam_request_cls, resource)


ActionAuthenticatorMixin._authenticate_and_authorize_action = authenticate

if __name__ == "__main__":
    sys.exit(main())
