"""The image's HEALTHCHECK: exit 0 when the daemon's /healthz answers 200, else print why
and exit 1. Standard library only (the slim image has no curl)."""

import os
import sys
import urllib.error
import urllib.request

port = os.environ.get("SCHEDULER_HTTP", "0.0.0.0:8080").rpartition(":")[2]
url = os.environ.get("SCHEDULER_HEALTH_URL", f"http://127.0.0.1:{port}/healthz")
try:
    with urllib.request.urlopen(url, timeout=5) as reply:
        sys.exit(0 if reply.status == 200 else 1)
except urllib.error.HTTPError as exc:
    print(f"{url}: {exc.code} {exc.read().decode(errors='replace')}", file=sys.stderr)
except OSError as exc:
    print(f"{url}: {exc}", file=sys.stderr)
sys.exit(1)
