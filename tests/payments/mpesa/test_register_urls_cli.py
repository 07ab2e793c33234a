"""`portal mpesa register-urls` tells Daraja (here the sandbox) where our Paybill URLs are."""

import os
import subprocess
import sys
from pathlib import Path

import httpx


def test_register_urls_command(sandbox):
    env = {**os.environ, "SANDBOX": "1", "SANDBOX_PORT": sandbox.rsplit(":", 1)[1], "DARAJA_BASE_URL": sandbox,
           "PUBLIC_BASE_URL": "https://portal.example.co.ke", "DARAJA_CALLBACK_TOKEN": "cli-token-5678"}
    r = subprocess.run([str(Path(sys.executable).parent / "portal"), "mpesa", "register-urls"], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "C2B URLs registered for shortcode 174379: Success" in r.stdout
    assert "https://portal.example.co.ke/hooks/daraja/c2b/confirmation/cli-token-5678" in r.stdout
    registered = httpx.get(f"{sandbox}/_sandbox/daraja/c2b").json()
    assert "https://portal.example.co.ke/hooks/daraja/c2b/confirmation/cli-token-5678" in str(registered)
