"""WSGI entry point for the test bed's Keystone servers.

Keystone's own entry point (keystone.wsgi.api) lets oslo.config parse the process's command line, which under
gunicorn is gunicorn's own; hide it. The configuration file is named by OS_KEYSTONE_CONFIG_FILES.
"""

import sys

sys.argv = sys.argv[:1]

from keystone.wsgi.api import application  # noqa: E402,F401
