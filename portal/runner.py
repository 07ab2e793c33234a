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
    from portal.web.middleware import BehindProxy

    # Our request lines (portal.web.middleware.RequestLog) replace uvicorn's access log, and
    # uvicorn's own lines go through the process's logging (log_config=None: portal.lib.logs).
    servers = [_quiet_signals(uvicorn.Server(uvicorn.Config(
        BehindProxy(create_app(settings)), host=settings.host, port=settings.port, log_config=None, log_level=None,
        access_log=False, proxy_headers=False, lifespan="on",
    )))]
    if settings.sandbox:
        from portal.gateways.callback_urls import sms_delivery_url
        from portal.sandbox.app import create_sandbox_app
        from portal.sandbox.config import SandboxConfig

        config = SandboxConfig(public_url=settings.sandbox_url)
        # The simulated Flutterwave and Africa's Talking post to the portal like the real ones.
        config.flutterwave_webhook_url = config.flutterwave_webhook_url or f"{settings.public_base_url}/hooks/flutterwave"
        config.at_delivery_report_url = config.at_delivery_report_url or sms_delivery_url(settings)
        servers.append(_quiet_signals(uvicorn.Server(uvicorn.Config(
            create_sandbox_app(config), host="127.0.0.1", port=settings.sandbox_port, log_config=None,
            log_level=None, access_log=False,
        ))))
    tasks = [asyncio.create_task(s.serve()) for s in servers]
    # Not one of the tasks waited on below: it finishing must not stop the servers.
    setup = asyncio.create_task(_register_sandbox_paybill(settings, servers)) if settings.sandbox else None
    waiter = asyncio.create_task(_wait_for_signal())
    await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
    log.info("stopping")
    for s in servers:
        s.should_exit = True
    await asyncio.gather(*tasks, return_exceptions=True)
    waiter.cancel()
    if setup is not None:
        setup.cancel()


async def _register_sandbox_paybill(settings: Settings, servers: list[uvicorn.Server]) -> None:
    """Demo: tell the simulated Daraja where our Paybill URLs are, as `portal mpesa
    register-urls` does for the real one, so payments from its Pay Bill page reach us."""
    while not all(s.started for s in servers):
        if any(s.should_exit for s in servers):
            return
        await asyncio.sleep(0.1)
    from portal.payments.mpesa.c2b import register_c2b_urls

    try:
        log.info("sandbox Paybill URLs registered: %s", await register_c2b_urls(settings))
    except Exception as e:  # the demo still works without Paybill
        log.warning("could not register the sandbox Paybill URLs: %s", e)


async def work(settings: Settings, queues: list[str] | None = None) -> None:
    """A separate worker process (production): the queues (all, or those named), their jobs and
    their crons."""
    from piccolo.engine import engine_finder

    from portal.lib import db, queue
    from tasks.worker import make_worker, shutdown_grace

    names = queues or [queue.GATEWAY, queue.BULK]
    q = await queue.start(settings, pool_size=queue.job_slots(settings, names) + 1)
    engine = engine_finder()
    worker = make_worker(settings, q, in_process=True, only=names)
    task = asyncio.create_task(worker.start())
    log.info("worker running: queues %s", ", ".join(names))
    try:
        await _wait_for_signal()
    finally:
        # SIGTERM (systemd stop, a deploy): the jobs in flight finish before the process exits.
        await worker.stop(grace=shutdown_grace(settings))
        task.cancel()
        await q.disconnect()
        await engine.close_connection_pool()
        db.release_embedded()
