"""Find the key arguments of a command from its declaration (COMMAND GETKEYS, routing)."""

from __future__ import annotations

from raftkv.commands.spec import CommandSpec


def key_positions(spec: CommandSpec, argv: list[bytes]) -> list[int]:
    """Indexes into ``argv`` (argv[0] is the name) that hold keys."""
    argc = len(argv)
    positions: list[int] = []
    if spec.first_key > 0:
        last = spec.last_key
        if last < 0:
            last = argc + last
        step = spec.step or 1
        positions.extend(range(spec.first_key, min(last, argc - 1) + 1, step))
    rule = spec.keys
    if not rule:
        return positions
    parts = rule.split()
    if parts[0] == "numkeys":
        count_at, first = int(parts[1]), int(parts[2])
        try:
            n = int(argv[count_at])
        except (IndexError, ValueError):
            return positions
        positions.extend(p for p in range(first, first + max(n, 0)) if p < argc)
    elif parts[0] == "streams":
        upper = [a.upper() for a in argv]
        if b"STREAMS" in upper:
            start = upper.index(b"STREAMS") + 1
            n = (argc - start) // 2
            positions.extend(range(start, start + n))
    elif parts[0] == "sort":
        upper = [a.upper() for a in argv]
        for i in range(2, argc - 1):
            if upper[i] == b"STORE":
                positions.append(i + 1)
    return positions


def keys_of(spec: CommandSpec, argv: list[bytes]) -> list[bytes]:
    return [argv[i] for i in key_positions(spec, argv)]
