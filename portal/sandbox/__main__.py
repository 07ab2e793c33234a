"""python -m portal.sandbox [--port N]: run the gateway simulators on their own."""

import argparse

import uvicorn

from portal.sandbox.app import create_sandbox_app


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8001)
    args = ap.parse_args()
    uvicorn.run(create_sandbox_app(), host=args.host, port=args.port, log_level="info")


if __name__ == "__main__":
    main()
