"""Backups that restore: the real `portal backup` and `portal restore` commands, on whichever
PostgreSQL the suite runs (the embedded server, or DATABASE_URL's), a real worker making the PDFs.

The disaster is a database that is gone: the backup is restored into a new, empty database (the
suite's own database stays, for the fixtures), which must then hold the same rows, ledger and
documents, byte for byte."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from portal import backups
from tests.billing.helpers import assert_books_agree, invoice_for, pay
from tests.conftest import ROOT
from tests.factories import make_member

TIMINGS = ROOT / "test-artifacts" / "backup-timings.txt"


def portal_cli(*args: str, database_url: str, **env: str) -> subprocess.CompletedProcess:
    """The `portal` command, as an operator runs it."""
    return subprocess.run([sys.executable, "-m", "portal.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "DATABASE_URL": database_url, **env}, timeout=600)


def _fresh_database(suffix: str) -> str:
    """A new, empty database next to the suite's (dropped first if a run left it)."""
    test_url = os.environ["DATABASE_URL"]
    parts = urlsplit(test_url)
    name = parts.path.lstrip("/").removesuffix("_test") + f"_{suffix}_test"
    with psycopg.connect(os.environ["PORTAL_TEST_MAINTENANCE_URL"], autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(parts._replace(path=f"/{name}"))


def _drop(url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    assert name.endswith("_test")
    with psycopg.connect(os.environ["PORTAL_TEST_MAINTENANCE_URL"], autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _contents(url: str) -> dict:
    """What must survive, read plainly: rows per table, every ledger leg, every document's bytes."""
    with psycopg.connect(url) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename NOT LIKE 'saq%'"
            " AND tablename <> 'backup_status' ORDER BY 1")]
        return {
            "counts": {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables},
            "legs": conn.execute("SELECT entry, account, amount, member FROM ledger_leg ORDER BY id").fetchall(),
            "documents": conn.execute("SELECT kind, subject, filename, content FROM document ORDER BY id").fetchall(),
            "members": conn.execute("SELECT member_number, first_name, last_name FROM member ORDER BY id").fetchall(),
        }


def _restore_audited(url: str, dump, *, forced: bool) -> int:
    """How many restore entries the audit log holds, once each is checked to say what was restored
    (the file and when it was taken, from its manifest), by which OS user, and that the books agreed."""
    import getpass
    import json

    taken_at = json.loads(dump.with_suffix(".json").read_text())["taken_at"]
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT entity, entity_id, staff, details FROM audit_log WHERE action = 'backup.restored'"
                            " ORDER BY id").fetchall()
    for entity, entity_id, staff, details in rows:
        assert (entity, entity_id, staff) == ("backup", dump.name, None)
        assert details["file"] == str(dump.resolve()) and details["taken_at"] == taken_at
        assert details["os_user"] == getpass.getuser() and details["forced"] is forced
        assert details["books_agree"] is True and details["problems"] == []
    return len(rows)


async def _wait_for_documents(n: int) -> None:
    from tables.billing import Document

    for _ in range(300):
        if await Document.count() >= n:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"fewer than {n} documents were rendered")


def _reset_status(url: str) -> None:
    with psycopg.connect(url) as conn:
        conn.execute("UPDATE backup_status SET since = now(), last_ok_at = NULL, last_ok_file = NULL,"
                     " last_ok_bytes = NULL, last_failed_at = NULL, last_error = NULL WHERE id = 1")


def _record_timing(line: str) -> None:
    TIMINGS.parent.mkdir(exist_ok=True)
    with TIMINGS.open("a") as f:
        f.write(f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} {line}\n")


async def test_backup_then_restore_into_a_wiped_database_gives_back_everything(alice, worker, tmp_path):
    source = os.environ["DATABASE_URL"]
    _reset_status(source)
    # Money in every shape: invoices part and fully paid over HTTP (receipts rendered by the
    # worker: the stored documents), a credit, a refund-free ledger with several accounts.
    members = [await make_member("Wanjiku", "Kamau"), await make_member("Otieno", "Ng'ang'a"),
               await make_member("Achieng", "Odhiambo")]
    for i, member in enumerate(members):
        await invoice_for(member, 3000)
        r = await alice.post(f"/members/{member}/payments",
                             {"method": "cash", "amount": str(1000 * (i + 1)), "idempotency_key": f"bk{i}"})
        assert r.status_code in (302, 303), r.text
    await pay(members[0], 2500, method="bank", reference="TRF-1")  # pays off and leaves credit
    await _wait_for_documents(6)  # A4 and 80 mm receipts of the three desk payments
    await assert_books_agree()
    before = _contents(source)
    assert before["counts"]["member"] == 3 and before["counts"]["payment"] == 4
    assert len(before["documents"]) >= 6 and before["legs"]

    folder, copies = tmp_path / "backups", tmp_path / "usb"
    copies.mkdir()
    started = time.monotonic()
    done = portal_cli("backup", database_url=source, BACKUP_DIR=str(folder), BACKUP_COPY_DIR=str(copies))
    backup_seconds = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    [dump] = list(folder.glob("portal-*.dump"))
    assert str(dump) in done.stdout and "3 members, 4 payments" in done.stdout
    # The checksum file is sha256sum's, for the dump and its manifest, and so is the copy's.
    sums = dump.with_suffix(".sha256").read_text()
    for f in (dump, dump.with_suffix(".json")):
        assert f"{hashlib.sha256(f.read_bytes()).hexdigest()}  {f.name}" in sums
        assert (copies / f.name).read_bytes() == f.read_bytes()
        assert f.stat().st_mode & 0o077 == 0 and (copies / f.name).stat().st_mode & 0o077 == 0  # owner only
    with psycopg.connect(source) as conn:
        recorded = conn.execute("SELECT last_ok_file, last_ok_bytes FROM backup_status").fetchone()
    assert recorded == (dump.name, dump.stat().st_size)

    wiped = _fresh_database("restored")
    try:
        started = time.monotonic()
        done = portal_cli("restore", str(dump), database_url=wiped)
        restore_seconds = time.monotonic() - started
        assert done.returncode == 0, done.stderr
        assert "the ledger balances" in done.stdout and "member" in done.stdout and "payment" in done.stdout
        after = _contents(wiped)
        # Rows per table, every ledger leg, every document byte for byte; plus the restore's own
        # audit entry, written once the restored database is checked.
        assert _restore_audited(wiped, dump, forced=False) == 1
        after["counts"]["audit_log"] -= 1
        assert after == before
        _record_timing(f"suite data ({before['counts']['payment']} payments, {len(before['documents'])} documents, "
                       f"{urlsplit(source).hostname or 'embedded'}): backup {backup_seconds:.1f} s, "
                       f"restore {restore_seconds:.1f} s (CLI start included)")

        # A second restore into what is now a database with data is refused, and changes nothing.
        with psycopg.connect(wiped) as conn:
            conn.execute("INSERT INTO location (code, name) VALUES ('XTR', 'Added after the restore')")
        refused = portal_cli("restore", str(dump), database_url=wiped)
        assert refused.returncode != 0 and "not empty" in refused.stderr
        assert _contents(wiped)["counts"]["location"] == before["counts"]["location"] + 1
        # Told to, it replaces what is there with the backup.
        forced = portal_cli("restore", "--force", str(dump), database_url=wiped)
        assert forced.returncode == 0, forced.stderr
        # The forced restore replaced everything, the first restore's audit entry included.
        assert _restore_audited(wiped, dump, forced=True) == 1
        after = _contents(wiped)
        after["counts"]["audit_log"] -= 1
        assert after == before
    finally:
        _drop(wiped)
        _reset_status(source)


async def test_a_damaged_backup_is_not_restored(db, tmp_path):
    source = os.environ["DATABASE_URL"]
    await make_member()
    folder = tmp_path / "backups"
    done = portal_cli("backup", database_url=source, BACKUP_DIR=str(folder), BACKUP_COPY_DIR="")
    assert done.returncode == 0, done.stderr
    [dump] = list(folder.glob("portal-*.dump"))
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0xFF
    dump.write_bytes(bytes(data))
    target = _fresh_database("damaged")
    try:
        refused = portal_cli("restore", str(dump), database_url=target)
        assert refused.returncode != 0 and "damaged" in refused.stderr
        with psycopg.connect(target) as conn:
            assert backups.is_empty(conn)
    finally:
        _drop(target)
        _reset_status(source)


def _t(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=timezone.utc)


def test_retention_keeps_the_newest_of_each_recent_day_and_month():
    # Two backups a day (02:00 nightly plus one by hand at 15:00) from 1 January to 20 March.
    taken = []
    day = _t("2026-01-01T02:00")
    while day <= _t("2026-03-20T02:00"):
        taken += [day, day + timedelta(hours=13)]
        day += timedelta(days=1)
    kept = backups.to_keep(taken, keep_daily=3, keep_monthly=2)
    assert sorted(kept) == [
        _t("2026-02-28T15:00"),  # February's newest (the second month)
        _t("2026-03-18T15:00"), _t("2026-03-19T15:00"),
        _t("2026-03-20T15:00"),  # the newest: also March's
    ]
    # The newest is kept whatever the settings; nothing is invented.
    assert backups.to_keep(taken, keep_daily=1, keep_monthly=0) == {_t("2026-03-20T15:00")}
    assert backups.to_keep([], keep_daily=7, keep_monthly=12) == set()


def test_days_are_the_gyms_days():
    # 22:30 UTC on 1 March is 01:30 on 2 March in Nairobi: the same day as the next morning's backup.
    from zoneinfo import ZoneInfo

    late, morning = _t("2026-03-01T22:30"), _t("2026-03-02T02:00")
    assert backups.to_keep([late, morning], keep_daily=2, keep_monthly=0, tz=ZoneInfo("Africa/Nairobi")) == {morning}
    assert backups.to_keep([late, morning], keep_daily=2, keep_monthly=0) == {late, morning}


def test_prune_deletes_only_what_retention_drops(tmp_path, settings):
    from dataclasses import replace

    names = ["portal-20260301-020000", "portal-20260302-020000", "portal-20260303-020000"]
    for n in names:
        for ext in (".dump", ".json", ".sha256"):
            (tmp_path / f"{n}{ext}").write_text("x")
    (tmp_path / "notes.dump").write_text("not ours")
    gone = backups.prune(tmp_path, replace(settings, backup_keep_daily=2, backup_keep_monthly=0))
    assert [g.name for g in gone] == ["portal-20260301-020000.dump"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"{n}{e}" for n in names[1:] for e in (".dump", ".json", ".sha256")] + ["notes.dump"])


async def test_admins_are_warned_when_the_last_good_backup_is_two_days_old(alice, carol, tmp_path):
    source = os.environ["DATABASE_URL"]
    with psycopg.connect(source) as conn:
        conn.execute("UPDATE backup_status SET since = now() - interval '3 days', last_ok_at = NULL,"
                     " last_failed_at = now(), last_error = 'pg_dump failed: disk full'")
    try:
        page = await carol.get("/members")
        assert 'hx-get="/backups/warning"' in page.text
        warning = await carol.get("/backups/warning", htmx=True)
        assert "No backup has been made yet" in warning.text and "disk full" in warning.text
        # Front desk is not asked (no request, no query) and may not read it.
        assert "/backups/warning" not in (await alice.get("/members")).text
        assert (await alice.get("/backups/warning", htmx=True)).status_code in (302, 303, 401, 403)

        # A backup clears it.
        done = portal_cli("backup", database_url=source, BACKUP_DIR=str(tmp_path), BACKUP_COPY_DIR="")
        assert done.returncode == 0, done.stderr
        assert "backup-warning" not in (await carol.get("/backups/warning", htmx=True)).text

        # Three days later, with the last one old, it is back, saying how old.
        with psycopg.connect(source) as conn:
            conn.execute("UPDATE backup_status SET last_ok_at = now() - interval '3 days'")
        assert "3 days old" in (await carol.get("/backups/warning", htmx=True)).text
    finally:
        _reset_status(source)


def test_a_backup_with_no_matching_client_says_so():
    # No PostgreSQL 99 anywhere: the message names the version and where it looked.
    with pytest.raises(backups.BackupError, match="no pg_dump/pg_restore of PostgreSQL 99.*postgresql-client-99"):
        backups.client_bin_dir(99)


def test_the_nightly_backup_is_a_bulk_queue_cron_at_backup_time(settings):
    from dataclasses import replace

    from portal.lib import queue
    from tasks.worker import cron_jobs

    [job] = [c for c in cron_jobs(replace(settings, backup_time=(3, 45))) if c.function.__qualname__ == "run_backup"]
    assert job.cron == "45 3 * * *" and queue.route("run_backup") == queue.BULK
    assert not [c for c in cron_jobs(replace(settings, backup_time=None)) if c.function.__qualname__ == "run_backup"]


async def test_the_worker_makes_the_nightly_backup(queue, worker, settings):
    """The cron's job, run by a real worker: a checked backup in BACKUP_DIR, its outcome recorded."""
    source = os.environ["DATABASE_URL"]
    _reset_status(source)
    await make_member()
    before = set(settings.backup_dir.glob("portal-*")) if settings.backup_dir.exists() else set()
    try:
        job = await queue.apply("run_backup", timeout=300)
        made = set(settings.backup_dir.glob("portal-*")) - before
        assert job["file"] in {p.name for p in made} and len(made) == 3
        assert backups.verify(settings.backup_dir / job["file"])["tables"]["member"] == 1
        with psycopg.connect(source) as conn:
            assert conn.execute("SELECT last_ok_file FROM backup_status").fetchone()[0] == job["file"]
    finally:
        for p in set(settings.backup_dir.glob("portal-*")) - before:
            p.unlink()
        _reset_status(source)


def test_a_server_password_is_never_on_pg_dumps_command_line():
    url, env = backups._libpq("postgresql://gym:p%40ss%2Fword@db.example:5433/portal?sslmode=require")
    assert url == "postgresql://gym@db.example:5433/portal?sslmode=require"
    assert env["PGPASSWORD"] == "p@ss/word"
