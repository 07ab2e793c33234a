"""Browser tests: Debian's Chromium driven by Playwright against a real `portal run` process."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]


@pytest.fixture(scope="session")
def live_server(_database):
    """The portal as a separate process on the test database (it sees what tests commit)."""
    port = free_port()
    sandbox_port = free_port()
    env = {**os.environ, "PORT": str(port), "DEMO": "0", "SANDBOX": "1", "SANDBOX_PORT": str(sandbox_port),
           "WORKER_IN_PROCESS": "1", "SANDBOX_CALLBACK_DELAY": "0.2"}
    # A file, not a pipe: a pipe nobody reads fills up with the request lines of a long browser
    # session and then blocks the server on its next log line.
    output = tempfile.TemporaryFile()
    proc = subprocess.Popen([str(Path(sys.executable).parent / "portal"), "run"], env=env,
                            stdout=output, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            output.seek(0)
            raise AssertionError(output.read().decode())
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "live server did not start"
        time.sleep(0.2)
    os.environ["E2E_SANDBOX_URL"] = f"http://127.0.0.1:{sandbox_port}"
    yield base
    proc.send_signal(signal.SIGINT)
    proc.wait(30)


@pytest_asyncio.fixture(scope="session")
async def browser():
    from playwright.async_api import async_playwright

    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if not executable:
        pytest.fail("Debian's chromium is needed for the browser tests: `make test` installs it as root")
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        yield b
        await b.close()


@pytest_asyncio.fixture
async def page(browser, live_server):
    context = await browser.new_context(base_url=live_server, viewport={"width": 1280, "height": 860})
    context.set_default_timeout(10_000)
    p = await context.new_page()
    yield p
    await context.close()


async def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path
