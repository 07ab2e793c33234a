"""Hand-written migrations run raw SQL (triggers, CHECKs, partial indexes) statement by
statement: asyncpg runs one statement per call."""

from piccolo.engine import engine_finder


def runner(statements: list[str]):
    async def run():
        engine = engine_finder()
        for statement in statements:
            await engine.run_ddl(statement)

    return run
