"""`portal run` and `portal worker`: processes that start cleanly and stop cleanly.

uvicorn re-raises SIGINT/SIGTERM after its own shutdown, which would kill the process before the
embedded PostgreSQL is released. We own the signals instead: one handler asks every server (the
portal, and the gateway sandbox in demo) to exit, then the app's shutdown hooks run to the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

import uvicorn

from portal.settings import Settings

log = logging.getLogger(__name__)


def _quiet_signals(server: uvicorn.Server) -> uvicorn.Server:
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]
    return server


async def _wait_for_signal() -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def serve(settings: Settings) -> None:
    from portal.app import create_app

    servers = [_quiet_signals(uvicorn.Server(uvicorn.Config(
        create_app(settings), host=settings.host, port=settings.port, log_level="info",
        proxy_headers=True, forwarded_allow_ips="127.0.0.1", lifespan="on",
    )))]
    if settings.sandbox:
        from portal.sandbox.app import create_sandbox_app
        from portal.sandbox.config import SandboxConfig

        config = SandboxConfig(public_url=settings.sandbox_url)
        # The simulated Flutterwave and Africa's Talking post to the portal like the real ones.
        config.flutterwave_webhook_url = config.flutterwave_webhook_url or f"{settings.public_base_url}/hooks/flutterwave"
        config.at_delivery_report_url = config.at_delivery_report_url or f"{settings.public_base_url}/hooks/sms/delivery"
        servers.append(_quiet_signals(uvicorn.Server(uvicorn.Config(
            create_sandbox_app(config), host="127.0.0.1", port=settings.sandbox_port, log_level="warning",
        ))))
    tasks = [asyncio.create_task(s.serve()) for s in servers]
    waiter = asyncio.create_task(_wait_for_signal())
    await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
    log.info("stopping")
    for s in servers:
        s.should_exit = True
    await asyncio.gather(*tasks, return_exceptions=True)
    waiter.cancel()


async def work(settings: Settings) -> None:
    """A separate worker process (production): the queue, the jobs, the cron."""
    from piccolo.engine import engine_finder

    from portal import db, queue
    from tasks.worker import make_worker

    settings.check_for_serving()
    engine = engine_finder()
    await engine.start_connection_pool(min_size=1, max_size=5)
    q = queue.make_queue(settings, engine.config["dsn"])
    await q.connect()
    queue.set_queue(q)
    worker = make_worker(settings, q, in_process=True)
    task = asyncio.create_task(worker.start())
    try:
        await _wait_for_signal()
    finally:
        await worker.stop()
        task.cancel()
        await q.disconnect()
        await engine.close_connection_pool()
        db.release_embedded()
