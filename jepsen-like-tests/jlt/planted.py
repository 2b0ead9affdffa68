"""Bugs planted on purpose in a copy of raftkv's source, to prove the harness catches them.

``run.py --planted-bug NAME`` copies the raftkv tree it would run (the
repository, or ``--raftkv-rev``) into the run folder and patches the copy; the
repository itself is never touched. A patch whose anchor text is not found
exactly once stops the run (the code moved on: update the anchor).

- ``follower-reads``: a follower serves reads from its local state as if it
  were the leader (instead of -MOVED): stale reads, caught by the register
  checker without any fault.
- ``stale-leader-reads``: the leader serves reads locally without a ReadIndex
  quorum round: an old leader that was paused or cut off serves stale reads.
- ``commit-without-quorum``: the leader commits an entry as soon as its own
  log holds it, without a majority: a leader cut off from the others (or
  killed) acknowledges writes the next leader never sees: lost writes, stale
  reads and replicas that diverge.
- ``migration-lost-write`` (``--groups > 1`` with the ``migrate`` nemesis): the
  source group's ``__delifunchanged`` skips its modification check, so a key written
  between the mover's copy (RAFT.DUMPKEY) and its delete is deleted anyway: the write
  is acknowledged by the source and lost, the target keeps the older copy.
- ``false-success``: a write whose entry was replaced by a new leader's, or
  whose outcome is unknown, is answered +OK instead of -TRYAGAIN (only a
  plain SET can be told apart this way; a lost SET is visible only when no
  later write hides it, so this one is hard to catch, as in real life).
"""

from __future__ import annotations

import os
import re
import shutil

RAFT_GROUP = "raftkv/server/raft_group.py"
# name: (file, regular expression that must match exactly once, replacement)
PLANTED = {
    "follower-reads": (RAFT_GROUP, r"(?m)^(\s+)if conn\.readonly\b.*$",
                       r"\1if True:  # PLANTED BUG: followers serve reads"),
    "stale-leader-reads": (RAFT_GROUP, r'(?m)^(\s+)if node\.config\.get\("raft-read-mode"\) == "lease".*$',
                           r"\1if True:  # PLANTED BUG: no ReadIndex round"),
    "commit-without-quorum": ("raftkv/raft/core.py", r"index = matches\[len\(voters\) // 2\]",
                              "index = matches[0]  # PLANTED BUG: no majority needed"),
    "migration-lost-write": ("raftkv/statemachine/slots.py",
                             r"if ctx\.sm\.mods\.modified_after\(ctx\.db\.id, key, index\):",
                             "if False:  # PLANTED BUG: deleted even if written after the copy"),
    "false-success": (RAFT_GROUP, r"proposal\.pending\.resolve\(encode_error\(error\)\)",
                      r"proposal.pending.resolve(b'+OK\\r\\n')  # PLANTED BUG: false success"),
}


def copy_tree(src_root: str, dest: str) -> str:
    """Copy ``src_root``/raftkv into ``dest``/raftkv (once); returns ``dest``."""
    target = os.path.join(dest, "raftkv")
    if not os.path.exists(target):
        shutil.copytree(os.path.join(src_root, "raftkv"), target,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dest


def plant(root: str, name: str) -> None:
    if name not in PLANTED:
        raise SystemExit(f"unknown planted bug {name!r}; choose from {sorted(PLANTED)}")
    rel, anchor, replacement = PLANTED[name]
    path = os.path.join(root, rel)
    with open(path) as f:
        text = f.read()
    new, n = re.subn(anchor, replacement, text)
    if n != 1:
        raise SystemExit(f"planted bug {name}: /{anchor}/ matched {n} times in {path}, expected "
                         "once (raftkv's code moved on: update jepsen-like-tests/jlt/planted.py)")
    with open(path, "w") as f:
        f.write(new)
