"""WSGI entry point for the test bed's Barbican API servers.

Barbican's own entry point (barbican.wsgi.api) loads /etc/barbican/barbican-api-paste.ini; the test bed runs two
instances (no-auth and Keystone) from its own paste files, named by BARBICAN_PASTE_INI. barbican.conf is found by
oslo.config under $HOME/.barbican/, so each instance gets a HOME of its own.

Barbican's no-auth context middleware reads `req.request_id`, an attribute oslo.middleware's RequestId filter no
longer sets (it keeps the ID in environ['openstack.request_id'] only), so every no-auth request would fail with
500. The wrapper below gives each request that attribute, with the same ID when oslo.middleware has made one.
"""

import os
import uuid

from paste import deploy

_app = deploy.loadapp("config:" + os.environ["BARBICAN_PASTE_INI"])


class _RequestId:
    def __init__(self, environ):
        self.environ = environ
        self.fallback = "req-" + str(uuid.uuid4())

    def __str__(self):
        return self.environ.get("openstack.request_id", self.fallback)


def application(environ, start_response):
    rid = _RequestId(environ)
    environ.setdefault("webob.adhoc_attrs", {})["request_id"] = str(rid)
    return _app(environ, start_response)
