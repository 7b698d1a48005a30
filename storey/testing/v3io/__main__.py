"""python -m storey.testing.v3io --port PORT: serves the V3IO emulator until stopped."""

import argparse

from .emulator import serve


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m storey.testing.v3io",
        description="An emulator of the V3IO web API (key-value tables, objects, streams) on a local port: "
        "run storey's V3IO steps against it with V3IO_API=http://127.0.0.1:PORT and any V3IO_ACCESS_KEY.",
    )
    parser.add_argument(
        "--port", type=int, default=8081, help="the port to serve on (default 8081; 0: a free one)"
    )
    parser.add_argument("--host", default="127.0.0.1", help="the address to serve on (default 127.0.0.1)")
    parser.add_argument("--access-key", default=None, help="the only access key to accept (default: any)")
    args = parser.parse_args(argv)
    serve(args.port, args.host, args.access_key)


if __name__ == "__main__":
    main()
