"""deploy/ kept true to the code: the example settings file names every setting the portal reads
(and nothing else) with the real defaults, every systemd unit runs a command the `portal` CLI
accepts, the Caddyfile proxies to the web ports the README enables, and systemd accepts the units."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from dotenv import dotenv_values

from portal.settings import Settings
from tests.conftest import ROOT

DEPLOY = ROOT / "deploy"
EXAMPLE = DEPLOY / "portal.env.example"
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))
VARIABLE = re.compile(r"^(#?)([A-Z][A-Z0-9_]*)=(.*)$")
PORTAL = "/opt/portal/.venv/bin/portal"


class _Reading(dict):
    """An environment that remembers every name the settings ask it for."""

    def __init__(self, values=()):
        super().__init__(values)
        self.asked: list[str] = []

    def get(self, key, default=None):
        self.asked.append(key)
        return super().get(key, default)


def _names_read() -> set[str]:
    environ = _Reading()
    Settings.from_env(environ, dotenv=None)
    # NAME_FILE is the file form of any secret NAME, not a setting of its own.
    return {n for n in environ.asked if not n.endswith("_FILE")}


def _example() -> tuple[dict[str, str], dict[str, str]]:
    """(the values set, the values shown commented out), read as dotenv reads them (quotes removed;
    the set lines are also what systemd's EnvironmentFile= reads)."""
    active, commented = [], []
    for line in EXAMPLE.read_text().splitlines():
        if m := VARIABLE.match(line):
            (commented if m[1] else active).append(f"{m[2]}={m[3]}")

    def read(lines: list[str]) -> dict[str, str]:
        return {k: v or "" for k, v in dotenv_values(stream=io.StringIO("\n".join(lines) + "\n")).items()}

    return read(active), read(commented)


def test_the_example_names_every_setting_the_portal_reads_and_nothing_else():
    active, commented = _example()
    assert not set(active) & set(commented), "a variable both set and commented out"
    named = set(active) | set(commented)
    read = _names_read()
    assert len(read) > 70  # the recorder saw the settings being read, not nothing
    assert read - named == set(), f"settings missing from {EXAMPLE.name}"
    assert named - read == set(), f"{EXAMPLE.name} names variables the portal does not read"


def test_the_example_loads_and_its_commented_values_are_the_defaults():
    active, commented = _example()
    base = {**active, "SECRET_KEY": "x" * 40}
    settings = Settings.from_env(base, dotenv=None)
    settings.check_for_serving()
    assert (settings.demo, settings.sandbox, settings.public_base_url[:8]) == (False, False, "https://")
    assert settings.database_url and settings.queue_url.startswith("redis://")
    wrong = {name: value for name, value in commented.items()
             if Settings.from_env({**base, name: value}, dotenv=None) != settings}
    assert wrong == {}, "commented-out values that are not the defaults"


def _exec_lines(unit: Path) -> list[str]:
    return [line.split("=", 1)[1].strip() for line in unit.read_text().splitlines()
            if re.match(r"^ExecStart(Pre|Post)?=", line)]


def _instances() -> dict[str, list[str]]:
    """Template instances the README enables, e.g. {"portal-web@": ["8000", "8001"]}."""
    enable = next(line for line in (ROOT / "README.md").read_text().splitlines()
                  if line.startswith("systemctl enable portal.target"))
    found: dict[str, list[str]] = {}
    for template, instance in re.findall(r"(portal-[a-z]+@)([\w-]+)", enable):
        found.setdefault(template, []).append(instance)
    return found


def _portal_accepts(args: list[str]) -> subprocess.CompletedProcess:
    # --help last: argparse checks every argument before it (choices included), then exits 0
    # without running the command.
    return subprocess.run([sys.executable, "-m", "portal.cli", *args, "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def test_every_unit_runs_a_command_the_portal_cli_accepts():
    instances = _instances()
    assert set(instances) == {"portal-web@", "portal-worker@"}
    assert sorted(instances["portal-worker@"]) == ["bulk", "gateway"]  # both queues have a worker
    commands = []
    for unit in UNITS:
        template = unit.name.split("@")[0] + "@" if "@" in unit.name else None
        for line in _exec_lines(unit):
            argv = line.split()
            assert argv[0] == PORTAL, f"{unit.name}: {line}"
            for instance in instances[template] if template else [None]:
                commands.append([a.replace("%i", instance) if instance else a for a in argv[1:]])
    assert ["run"] in commands and ["migrate"] in commands
    assert ["worker", "--queue", "gateway"] in commands and ["worker", "--queue", "bulk"] in commands
    for args in commands:
        done = _portal_accepts(args)
        assert done.returncode == 0, f"portal {' '.join(args)}: {done.stderr}"
    # The check can fail: the CLI refuses what it does not know.
    assert _portal_accepts(["worker", "--queue", "pdfs"]).returncode != 0
    assert _portal_accepts(["serve"]).returncode != 0


def test_migrations_run_in_one_unit_that_the_others_wait_for():
    migrate = DEPLOY / "systemd" / "portal-migrate.service"
    assert [_exec_lines(u) for u in UNITS].count([f"{PORTAL} migrate"]) == 1
    for unit in UNITS:
        if unit != migrate:
            text = unit.read_text()
            assert "Requires=portal-migrate.service" in text and re.search(r"^After=portal-migrate\.service", text, re.M)
            # The folder prometheus-client shares is the one the migrate unit creates empty.
            assert "PROMETHEUS_MULTIPROC_DIR=/run/portal-metrics" in text
            assert "WORKER_IN_PROCESS=0" in text
    assert "RuntimeDirectory=portal-metrics" in migrate.read_text()


def test_the_caddyfile_proxies_to_the_enabled_web_ports_on_127_0_0_1():
    text = (DEPLOY / "Caddyfile").read_text()
    upstreams = re.search(r"^\s*reverse_proxy (.+?) \{", text, re.M)[1].split()
    assert upstreams == [f"127.0.0.1:{port}" for port in _instances()["portal-web@"]]
    # The portal trusts forwarded headers (and X-Request-ID) from 127.0.0.1 only: the proxy must be there.
    from portal.web.middleware import TRUSTED_PROXIES

    assert TRUSTED_PROXIES == ["127.0.0.1"]


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
def test_systemd_accepts_the_units(tmp_path):
    """`systemd-analyze verify` on the units and their instances, the portal command pointed at
    this venv's (it checks that ExecStart's program exists)."""
    portal = Path(sys.executable).parent / "portal"
    names = []
    for unit in [*UNITS, DEPLOY / "systemd" / "portal.target"]:
        text = unit.read_text().replace(PORTAL, str(portal))
        if "@" in unit.name:
            template = unit.name.split("@")[0] + "@"
            for instance in _instances()[template]:
                name = f"{template}{instance}.service"
                (tmp_path / name).write_text(text)
                names.append(name)
        else:
            (tmp_path / unit.name).write_text(text)
            names.append(unit.name)
    done = subprocess.run(["systemd-analyze", "verify", "--man=no", *[f"./{n}" for n in names]], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr
