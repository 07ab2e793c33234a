"""The `portal` command line."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
import time

from portal.settings import SettingsError, get_settings


def _settings(serving: bool = False):
    """The settings, or exit with the configuration error (never a traceback); `serving` adds
    what the web app and the worker need (SECRET_KEY, a readable logo)."""
    try:
        settings = get_settings()
        if serving:
            settings.check_for_serving()
        return settings
    except SettingsError as e:
        sys.exit(f"configuration error: {e}")


async def migrate() -> None:
    from piccolo.apps.migrations.commands.forwards import run_forwards

    import piccolo_conf  # noqa: F401  (resolves the database, starting the embedded one if needed)

    for app_name in ("user", "session_auth", "portal"):
        response = await run_forwards(app_name=app_name, migration_id="all", fake=False)
        if not response.success:
            raise SystemExit(f"migrations for {app_name} failed: {response.message}")


def cmd_run(args) -> None:
    settings = _settings(serving=True)
    from portal.lib import db
    from portal.runner import serve

    started = time.monotonic()
    try:
        asyncio.run(migrate())
        if settings.demo:
            from demo.seed import ensure_demo_data

            asyncio.run(ensure_demo_data())
        print(f"\n  {settings.gym_name} portal: http://{settings.host}:{settings.port}/", flush=True)
        if settings.demo:
            print("  Demo logins: frontdesk / frontdesk, manager / manager, admin / admin", flush=True)
        if settings.sandbox:
            print(f"  Gateway sandbox (simulated phone, checkout, SMS): {settings.sandbox_url}/", flush=True)
        print(f"  Database: {'DATABASE_URL' if settings.database_url else 'embedded PostgreSQL in ' + str(db.pgdata_dir(settings))}"
              f"; ready in {time.monotonic() - started:.1f} s. Ctrl-C stops everything.\n", flush=True)
        asyncio.run(serve(settings))
    except KeyboardInterrupt:
        pass
    finally:
        db.release_embedded()


def _queue_names(chosen: list[str] | None) -> list[str] | None:
    from portal.lib import queue

    names = {"gateway": queue.GATEWAY, "bulk": queue.BULK}
    return [names[c] for c in dict.fromkeys(chosen)] if chosen else None


def cmd_worker(args) -> None:
    settings = _settings(serving=True)
    from portal.lib import db
    from portal.runner import work

    try:
        import piccolo_conf  # noqa: F401

        asyncio.run(work(settings, _queue_names(args.queue)))
    except KeyboardInterrupt:
        pass
    finally:
        db.release_embedded()


def cmd_migrate(args) -> None:
    from portal.lib import db

    try:
        asyncio.run(migrate())
    finally:
        db.release_embedded()
    print("migrations applied")


def cmd_createuser(args) -> None:
    from portal.auth import create_staff
    from portal.lib import db

    password = args.password or getpass.getpass("Password (10+ characters): ")
    if len(password) < 10:
        sys.exit("password: at least 10 characters")

    async def go():
        import piccolo_conf  # noqa: F401

        await migrate()
        return await create_staff(args.username, password, args.role, first_name=args.first_name or args.username)

    try:
        staff_id = asyncio.run(go())
    except ValueError as e:  # a taken user name, an unknown role: say so, no traceback
        sys.exit(f"createuser: {e}")
    finally:
        db.release_embedded()
    print(f"created {args.role} {args.username} (staff #{staff_id})")


def cmd_demo_data(args) -> None:
    from demo.bulk import DemoDataRefused
    from demo.seed import load_demo_data
    from portal.lib import db

    async def go():
        await migrate()
        await load_demo_data(members=args.members, seed=args.seed, payments=args.payments,
                             force_append=args.force_append)

    try:
        asyncio.run(go())
    except DemoDataRefused as e:
        sys.exit(f"demo-data refused: {e}")
    finally:
        db.release_embedded()


def cmd_import_statement(args) -> None:
    """`portal import-statement FILE`: the managers' statement import with a progress bar (a file
    from the M-Pesa portal too big to upload, or a script's)."""
    from pathlib import Path

    from portal.lib import db
    from portal.lib.progress import Progress
    from portal.reconcile.statement import StatementError
    from portal.reconcile.statements import import_statement

    path = Path(args.file)
    try:
        data = path.read_bytes()
    except OSError as e:
        sys.exit(f"cannot read {path}: {e}")
    _settings()
    bar: list[Progress] = []

    def progress(done: int, total: int) -> None:
        if not bar:
            bar.append(Progress("statement lines", total, "lines"))
        bar[0].advance(done - bar[0].done)

    async def go():
        from piccolo.engine import engine_finder

        import piccolo_conf  # noqa: F401

        await migrate()
        engine = engine_finder()
        await engine.start_connection_pool(min_size=1, max_size=2)
        try:
            return await import_statement(data, filename=path.name, progress=progress)
        finally:
            await engine.close_connection_pool()

    try:
        imported = asyncio.run(go())
    except StatementError as e:
        sys.exit(f"{path.name} was not imported, nothing was changed. {e}")
    finally:
        db.release_embedded()
    if bar:
        bar[0].finish()
    found = ", ".join(f"{v} {k}" for k, v in imported.summary.items())
    print(f"statement {imported.statement_id}: {found}" + ("" if imported.new else " (imported before: nothing changed)"))


def cmd_mpesa(args) -> None:
    from portal.gateways.http import GatewayError
    from portal.lib import db
    from portal.payments.mpesa.c2b import register_c2b_urls

    settings = _settings()

    async def go():
        from piccolo.engine import engine_finder

        import piccolo_conf  # noqa: F401

        await migrate()  # the Daraja token is kept in the database
        engine = engine_finder()
        await engine.start_connection_pool(min_size=1, max_size=2)
        try:
            return await register_c2b_urls(settings)
        finally:
            await engine.close_connection_pool()

    try:
        answer = asyncio.run(go())
    except (GatewayError, SettingsError, ValueError) as e:
        sys.exit(f"Daraja refused: {e}")
    finally:
        db.release_embedded()
    from portal.gateways.callback_urls import c2b_confirmation_url, c2b_validation_url

    print(f"C2B URLs registered for shortcode {settings.daraja_shortcode}: {answer}")
    print(f"  confirmation: {c2b_confirmation_url(settings)}")
    print(f"  validation:   {c2b_validation_url(settings)}")


def cmd_db(args) -> None:
    from portal.lib import db

    settings = _settings()
    if args.action == "stop":
        if settings.database_url:
            sys.exit("DATABASE_URL is set: the portal does not manage that server")
        stopped = db.stop_embedded_hard(settings)
        print("embedded PostgreSQL stopped" if stopped else "embedded PostgreSQL was not running")


def _database_dsn() -> str:
    """The database this command works on (the embedded server is started, or attached to)."""
    import piccolo_conf  # noqa: F401  (resolves the database, starting the embedded one if needed)

    return piccolo_conf.DB.config["dsn"]


def cmd_backup(args) -> None:
    from portal import backups
    from portal.lib import db

    settings = _settings()
    try:
        result = backups.backup(settings, _database_dsn())
    except backups.BackupError as e:
        sys.exit(f"backup failed: {e}")
    finally:
        db.release_embedded()
    counts = result.summary["tables"]
    print(f"backup written: {result.dump} ({result.bytes:,} bytes, {result.seconds:.1f} s; "
          f"{counts.get('member', 0):,} members, {counts.get('payment', 0):,} payments, "
          f"{counts.get('document', 0):,} documents)")
    if result.copied_to:
        print(f"copied to: {result.copied_to}")
    for gone in result.deleted:
        print(f"deleted by retention: {gone.name}")


def cmd_restore(args) -> None:
    from pathlib import Path

    from portal import backups
    from portal.billing import ledger
    from portal.lib import db

    _settings()

    async def books(result) -> list[str]:
        from piccolo.engine import engine_finder

        engine = engine_finder()
        await engine.start_connection_pool(min_size=1, max_size=2)
        try:
            problems = await ledger.books_disagreements()
            await backups.record_restore(Path(args.file), result, forced=args.force, problems=problems)
            return problems
        finally:
            await engine.close_connection_pool()

    try:
        result = backups.restore(_database_dsn(), Path(args.file), force=args.force)
        problems = asyncio.run(books(result))
    except backups.BackupError as e:
        sys.exit(f"restore failed: {e}")
    finally:
        db.release_embedded()
    if problems:
        sys.exit("restored, but the books do not agree: " + "; ".join(problems))
    print(f"restored {args.file} (taken {result.manifest['taken_at']}) in {result.seconds:.1f} s; "
          "checksum verified, the ledger balances, documents identical")
    counts = result.summary["tables"]
    for table in backups.MAIN_TABLES:
        if table in counts:
            print(f"  {table:<14} {counts[table]:>10,} rows")
    print(f"  (all {len(counts)} tables match the backup's row counts; the restore is in the audit log)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="portal", description="The gym's staff portal.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="serve the portal (worker in-process; sandbox and demo data when enabled)").set_defaults(func=cmd_run)
    p = sub.add_parser("worker", help="run a separate job worker (production)")
    p.add_argument("--queue", action="append", choices=["gateway", "bulk"],
                   help="run only this queue's jobs (repeatable; default: both), e.g. PDFs in a process of their own")
    p.set_defaults(func=cmd_worker)
    sub.add_parser("migrate", help="apply database migrations").set_defaults(func=cmd_migrate)
    p = sub.add_parser("createuser", help="create a staff login")
    p.add_argument("username")
    p.add_argument("--role", choices=["front_desk", "manager", "admin"], default="front_desk")
    p.add_argument("--first-name", default="")
    p.add_argument("--password", help="prompted for when omitted")
    p.set_defaults(func=cmd_createuser)
    p = sub.add_parser("demo-data", help="load a realistic demo gym (demo mode)")
    p.add_argument("--members", type=int, default=200)
    p.add_argument("--payments", type=int, default=None,
                   help="bulk-load years of history with exactly this many payments (e.g. --members 20000 --payments 500000)")
    p.add_argument("--force-append", action="store_true", help="bulk-load even if the gym already has members")
    p.add_argument("--seed", type=int, default=7)
    p.set_defaults(func=cmd_demo_data)
    p = sub.add_parser("import-statement", help="import an M-Pesa organisation statement CSV (as the upload does)")
    p.add_argument("file", help="the statement CSV as the M-Pesa business portal exports it")
    p.set_defaults(func=cmd_import_statement)
    p = sub.add_parser("mpesa", help="M-Pesa set-up")
    p.add_argument("action", choices=["register-urls"], help="register-urls: tell Daraja our Paybill (C2B) URLs")
    p.set_defaults(func=cmd_mpesa)
    sub.add_parser("backup", help="back up the database and documents into BACKUP_DIR").set_defaults(func=cmd_backup)
    p = sub.add_parser("restore", help="restore a backup into an empty database")
    p.add_argument("file", help="the backup's .dump file (its .json and .sha256 beside it)")
    p.add_argument("--force", action="store_true", help="replace what the database holds")
    p.set_defaults(func=cmd_restore)
    p = sub.add_parser("db", help="the embedded database")
    p.add_argument("action", choices=["stop"], help="stop: hard stop of the embedded PostgreSQL")
    p.set_defaults(func=cmd_db)
    args = parser.parse_args(argv)
    from portal.lib import logs, logsafe

    try:
        settings = get_settings()
    except SettingsError:
        logs.configure()  # paths are still redacted; the command reports the setting
    else:
        logs.configure_from(settings)
        logsafe.install(settings)
    args.func(args)


if __name__ == "__main__":
    main()
