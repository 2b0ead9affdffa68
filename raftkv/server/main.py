"""``raftkv-server [config-file] [--name value ...]``: start a node, as redis-server takes it."""

from __future__ import annotations

import asyncio
import logging
import os
import sys

from raftkv.config import Config, ConfigError, parse_argv

_LEVELS = {"debug": logging.DEBUG, "verbose": logging.INFO, "notice": logging.INFO,
           "warning": logging.WARNING, "nothing": logging.CRITICAL + 10}


def _setup_logging(config: Config) -> None:
    logfile = config.get("logfile")
    handler: logging.Handler = logging.FileHandler(logfile) if logfile else logging.StreamHandler()
    handler.setFormatter(logging.Formatter(
        f"{os.getpid()}:M %(asctime)s.%(msecs)03d %(levelname).1s %(name)s: %(message)s",
        "%d %b %Y %H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(_LEVELS[config.get("loglevel")])
    config.on_change(lambda name, value: root.setLevel(_LEVELS[value])
                     if name == "loglevel" else None)


def _raise_fd_limit(maxclients: int) -> None:
    """As Redis does: room for maxclients connections plus the files the node keeps open."""
    import resource

    want = maxclients + 64
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= want:
        return
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):
        return
    if target < want:
        logging.getLogger(__name__).warning(
            "maxclients %d needs %d file descriptors; the limit allows %d", maxclients, want,
            target)


def build_config(argv: list[str]) -> Config:
    config = Config()
    path, pairs = parse_argv(argv)
    config.load(path, pairs)
    return config


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in ("-v", "--version"):
        print("raftkv server v=0.1.0 (Redis 7.2 compatible)")
        return 0
    try:
        config = build_config(args)
    except (ConfigError, OSError) as exc:
        print(f"*** FATAL CONFIG FILE ERROR *** {exc}", file=sys.stderr)
        return 1
    _setup_logging(config)
    _raise_fd_limit(config.get_int("maxclients"))
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency; asyncio still works
        logging.getLogger(__name__).warning("uvloop missing: using asyncio's default loop")
    return asyncio.run(_serve(config))


async def _serve(config: Config) -> int:
    from raftkv.server.factory import create_node

    node = create_node(config)
    await node.serve_forever()
    if node.restart_args is not None:  # RAFTKV.JOIN: start again as a member of the cluster
        logging.shutdown()
        os.execv(sys.executable, [sys.executable, "-m", "raftkv.server.main",
                                  *node.restart_args])
    return 0


if __name__ == "__main__":
    sys.exit(main())
