"""Golden step-scripts for the Raft core, in the spirit of etcd raft's testdata.

Each scenario is a script of commands (lines starting with ``>``), each
followed by exactly the output it must produce. Commands:

    > campaign 1               node 1 starts an election (pre-vote first)
    > tick 1 [n]               n ticks on node 1 (``tick * n``: every node)
    > propose 1 data           client proposal on node 1
    > read 1 ctx               ReadIndex request on node 1
    > lease 1                  print whether node 1 may serve a lease read
    > transfer 1 2             leadership transfer from 1 to 2
    > conf 1 add-voter 4       membership change proposed on node 1
                               (add-voter, add-learner, promote, remove)
    > compact 1 5              node 1 snapshots at its applied index 5 and compacts
    > partition 1 2 | 3        only messages within a side get through
    > heal                     remove the partition
    > process 1 2              run node 1's, then 2's Ready; print what comes out
    > deliver 2 3              deliver queued messages addressed to nodes 2, 3
    > drop 2                   discard queued messages addressed to node 2
    > stabilize                process and deliver until nothing moves; print all
    > stabilize quiet          the same, printing nothing
    > status 1 2               role, term, commit, applied, last index, leader

Output lines: ``1->2 Type term=... fields`` for a message sent (after the
sender persisted), ``1 apply 4/2 "x"`` for an applied entry (index/term),
``1 read ctx@5`` for a read state, ``1 is LEADER`` on a role change,
``1 install snapshot 9/2``, ``error: ...`` when a command raises.
"""

from __future__ import annotations

import random
import textwrap

import pytest

from raftkv.raft.confchange import ConfChange, ConfChangeType, decode_conf_change
from raftkv.raft.core import Config, RaftNode
from raftkv.raft.memstorage import MemStorage
from raftkv.raft.readonly import decode_round
from raftkv.raft.types import (
    ConfState,
    Entry,
    EntryKind,
    HardState,
    Message,
    MessageType,
    RaftError,
    Ready,
)

MT = MessageType

# ---------------------------------------------------------------------------
# The harness
# ---------------------------------------------------------------------------


def fmt_entry(e: Entry) -> str:
    if e.kind == EntryKind.NOOP:
        body = "NOOP"
    elif e.kind == EntryKind.CONF:
        cc = decode_conf_change(e.data)
        body = f"CONF {cc.type.name.lower().replace('_', '-')} {cc.node}"
    else:
        body = f'"{e.data.decode()}"'
    return f"{e.index}/{e.term} {body}"


def fmt_msg(m: Message) -> str:
    head = f"{m.src}->{m.dst} {m.type.name} term={m.term}"
    t = m.type
    if t in (MT.PreVote, MT.Vote):
        tail = f"last={m.index}/{m.log_term}" + (" transfer" if m.context else "")
    elif t in (MT.PreVoteResp, MT.VoteResp):
        tail = "reject" if m.reject else "grant"
    elif t is MT.App:
        ents = ", ".join(fmt_entry(e) for e in m.entries)
        tail = f"prev={m.index}/{m.log_term} commit={m.commit} [{ents}]"
    elif t is MT.AppResp:
        if m.reject:
            tail = f"reject prev={m.index} hint={m.reject_hint}/{m.hint_term}"
        else:
            tail = f"index={m.index}"
    elif t is MT.Heartbeat:
        tail = f"commit={m.commit}/{m.log_term} round={decode_round(m.context)}"
    elif t is MT.HeartbeatResp:
        tail = f"round={decode_round(m.context)}"
    elif t is MT.Snap:
        meta = m.snap_meta
        tail = f"snap={meta.index}/{meta.term} offset={m.snap_offset} len={len(m.snap_data)}" + (
            " done" if m.snap_done else ""
        )
    elif t is MT.SnapResp:
        tail = ("reject " if m.reject else "") + f"snap={m.index} offset={m.snap_offset}"
    else:
        tail = ""
    return f"{head} {tail}".rstrip()


class Harness:
    """A tiny deterministic cluster driven by hand: nodes "1".."n" on MemStorage."""

    def __init__(
        self,
        voters: list[str],
        learners: tuple[str, ...] = (),
        spares: tuple[str, ...] = (),
        logs: dict[str, tuple[list[int], int]] | None = None,
        node_class: type[RaftNode] = RaftNode,
        **cfg,
    ) -> None:
        self.cfg = dict(election_tick=10, heartbeat_tick=1, boot_vote_lease=False, **cfg)
        self.node_class = node_class
        self.storage: dict[str, MemStorage] = {}
        self.nodes: dict[str, RaftNode] = {}
        self.applied: dict[str, int] = {}
        self.queue: list[Message] = []
        self.partition: list[set[str]] | None = None
        conf = ConfState(tuple(voters), tuple(learners))
        for nid in list(voters) + list(learners) + list(spares):
            if nid in spares:
                st = MemStorage()
            elif logs and nid in logs:
                # A hand-made history: entry i has term terms[i-1]; the group's
                # configuration is in the (empty) snapshot at index 0.
                terms, term = logs[nid]
                st = MemStorage(conf)
                st.append(
                    [
                        Entry(i + 1, t, EntryKind.NORMAL, b"e%d" % (i + 1))
                        for i, t in enumerate(terms)
                    ]
                )
                st.set_hard_state(HardState(term, None, 0))
            else:
                st = MemStorage(conf)
                st.append([Entry(1, 1, EntryKind.NORMAL, b"init")])
                st.set_hard_state(HardState(1, None, 1))
            self.storage[nid] = st
            self.start(nid)
        self.stabilize()  # apply the initial entry quietly

    def start(self, nid: str) -> None:
        st = self.storage[nid]
        applied = st.snapshot()[0].index
        self.applied[nid] = applied
        cfg = Config(nid, applied=applied, **self.cfg)
        self.nodes[nid] = self.node_class(cfg, st, random.Random(int(nid) if nid.isdigit() else 0))

    # ---- driver ----------------------------------------------------------

    def process(self, nid: str) -> list[str]:
        node = self.nodes[nid]
        out: list[str] = []
        while node.has_ready():
            rd: Ready = node.ready()
            st = self.storage[nid]
            if rd.soft_state is not None:
                ss = rd.soft_state
                out.append(f"{nid} is {ss.role.name}" + (f" lead={ss.leader}" if ss.leader else ""))
            if rd.snapshot is not None:
                st.apply_snapshot(*rd.snapshot)
                out.append(f"{nid} install snapshot {rd.snapshot[0].index}/{rd.snapshot[0].term}")
                self.applied[nid] = rd.snapshot[0].index
            st.append(rd.entries)
            if rd.hard_state is not None:
                st.set_hard_state(rd.hard_state)
            for m in rd.messages:
                out.append(fmt_msg(m))
                self.queue.append(m)
            for e in rd.committed_entries:
                out.append(f"{nid} apply {fmt_entry(e)}")
                self.applied[nid] = e.index
            for ctx, index in rd.read_states:
                out.append(f"{nid} read {ctx.decode()}@{index}")
            for ctx in rd.dropped_reads:
                out.append(f"{nid} dropped read {ctx.decode()}")
            node.advance(rd)
        return out

    def connected(self, a: str, b: str) -> bool:
        if self.partition is None:
            return True
        return any(a in side and b in side for side in self.partition)

    def deliver(self, targets: set[str] | None = None) -> int:
        keep, todo = [], []
        for m in self.queue:
            (todo if targets is None or m.dst in targets else keep).append(m)
        self.queue = keep
        for m in todo:
            if self.connected(m.src, m.dst) and m.dst in self.nodes:
                self.nodes[m.dst].step(m)
        return len(todo)

    def stabilize(self) -> list[str]:
        out: list[str] = []
        for _ in range(100):
            for nid in self.nodes:
                out.extend(self.process(nid))
            if not self.queue:
                return out
            self.deliver()
        raise AssertionError("did not stabilize")

    def status(self, nid: str) -> str:
        n = self.nodes[nid]
        return (
            f"{nid}: {n.role.name} term={n.term} commit={n.commit_index} "
            f"applied={self.applied[nid]} last={n.last_index} lead={n.lead}"
        )

    # ---- script ----------------------------------------------------------

    def run_command(self, line: str) -> list[str]:
        args = line.split()
        cmd, rest = args[0], args[1:]
        try:
            return self._command(cmd, rest) or []
        except RaftError as e:
            return [f"error: {type(e).__name__}: {e}"]

    def _command(self, cmd: str, a: list[str]) -> list[str] | None:
        nodes = self.nodes
        if cmd == "campaign":
            nodes[a[0]].campaign()
        elif cmd == "tick":
            n = int(a[1]) if len(a) > 1 else 1
            targets = list(nodes) if a[0] == "*" else [a[0]]
            for _ in range(n):
                for nid in targets:
                    nodes[nid].tick()
        elif cmd == "propose":
            nodes[a[0]].propose(a[1].encode())
        elif cmd == "read":
            nodes[a[0]].read_index(a[1].encode())
        elif cmd == "lease":
            return [f"{a[0]} lease {'ok' if nodes[a[0]].lease_read_ok() else 'no'}"]
        elif cmd == "transfer":
            nodes[a[0]].transfer_leadership(a[1])
        elif cmd == "conf":
            kind = {
                "add-voter": ConfChangeType.ADD_VOTER,
                "add-learner": ConfChangeType.ADD_LEARNER,
                "promote": ConfChangeType.PROMOTE_LEARNER,
                "remove": ConfChangeType.REMOVE_NODE,
            }[a[1]]
            nodes[a[0]].propose_conf_change(ConfChange(kind, a[2]))
        elif cmd == "compact":
            nid, index = a[0], int(a[1])
            st = self.storage[nid]
            st.create_snapshot(
                index, nodes[nid].conf_state_at(index), b"S" * int(a[2]) if len(a) > 2 else b"S"
            )
            st.compact(index)
        elif cmd == "partition":
            text = " ".join(a)
            self.partition = [set(side.split()) for side in text.split("|")]
        elif cmd == "heal":
            self.partition = None
        elif cmd == "process":
            return [line for nid in a for line in self.process(nid)]
        elif cmd == "deliver":
            self.deliver(set(a))
        elif cmd == "drop":
            self.queue = [m for m in self.queue if m.dst not in a]
        elif cmd == "stabilize":
            out = self.stabilize()
            return [] if a == ["quiet"] else out
        elif cmd == "status":
            return [self.status(nid) for nid in a]
        else:
            raise ValueError(f"unknown command {cmd}")
        return None


def run_script(h: Harness, script: str) -> None:
    """Run each ``> command`` and compare its output with the lines under it."""
    blocks: list[tuple[str, list[str]]] = []
    for raw in textwrap.dedent(script).strip().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(">"):
            blocks.append((line[1:].strip(), []))
        else:
            blocks[-1][1].append(line)
    transcript: list[str] = []
    for cmd, expected in blocks:
        actual = h.run_command(cmd)
        transcript.append("> " + cmd)
        transcript.extend(actual)
        if actual != expected:
            pytest.fail(
                f"command `{cmd}`\nexpected:\n  "
                + "\n  ".join(expected or ["(nothing)"])
                + "\ngot:\n  "
                + "\n  ".join(actual or ["(nothing)"])
                + "\n\ntranscript so far:\n"
                + "\n".join(transcript),
                pytrace=False,
            )


# ---------------------------------------------------------------------------
# Scenarios
# ---------------------------------------------------------------------------

ELECTION = """
# Three voters whose logs hold one committed entry (index 1, term 1).
> campaign 1
> stabilize
1 is PRE_CANDIDATE
1->2 PreVote term=2 last=1/1
1->3 PreVote term=2 last=1/1
2->1 PreVoteResp term=2 grant
3->1 PreVoteResp term=2 grant
1 is CANDIDATE
1->2 Vote term=2 last=1/1
1->3 Vote term=2 last=1/1
2->1 VoteResp term=2 grant
3->1 VoteResp term=2 grant
1 is LEADER lead=1
1->2 App term=2 prev=1/1 commit=1 [2/2 NOOP]
1->3 App term=2 prev=1/1 commit=1 [2/2 NOOP]
2 is FOLLOWER lead=1
2->1 AppResp term=2 index=2
3 is FOLLOWER lead=1
3->1 AppResp term=2 index=2
1->2 App term=2 prev=2/2 commit=2 []
1->3 App term=2 prev=2/2 commit=2 []
1 apply 2/2 NOOP
2->1 AppResp term=2 index=2
2 apply 2/2 NOOP
3->1 AppResp term=2 index=2
3 apply 2/2 NOOP
> status 1 2 3
1: LEADER term=2 commit=2 applied=2 last=2 lead=1
2: FOLLOWER term=2 commit=2 applied=2 last=2 lead=1
3: FOLLOWER term=2 commit=2 applied=2 last=2 lead=1
# Followers refuse proposals and say who leads.
> propose 2 x
error: NotLeader: not the leader (leader hint: 1)
> propose 1 x
> stabilize
1->2 App term=2 prev=2/2 commit=2 [3/2 "x"]
1->3 App term=2 prev=2/2 commit=2 [3/2 "x"]
2->1 AppResp term=2 index=3
3->1 AppResp term=2 index=3
1->2 App term=2 prev=3/2 commit=3 []
1->3 App term=2 prev=3/2 commit=3 []
1 apply 3/2 "x"
2->1 AppResp term=2 index=3
2 apply 3/2 "x"
3->1 AppResp term=2 index=3
3 apply 3/2 "x"
"""

PRE_VOTE = """
> campaign 1
> stabilize quiet
# Node 3 is cut off. It times out over and over, but a pre-vote needs a
# majority before anyone's term moves: its term stays 2.
> partition 1 2 | 3
> tick 3 50
> process 3
3 is PRE_CANDIDATE
3->1 PreVote term=3 last=2/2
3->2 PreVote term=3 last=2/2
3->1 PreVote term=3 last=2/2
3->2 PreVote term=3 last=2/2
3->1 PreVote term=3 last=2/2
3->2 PreVote term=3 last=2/2
> stabilize quiet
> status 3
3: PRE_CANDIDATE term=2 commit=2 applied=2 last=2 lead=None
# Healed, its pre-votes are ignored: 1 and 2 hear from their leader.
> heal
> tick 3 20
> process 3
3->1 PreVote term=3 last=2/2
3->2 PreVote term=3 last=2/2
> deliver 1 2
> process 1 2
# The leader's next heartbeat brings it back, in the same term.
> tick 1
> stabilize
1->2 Heartbeat term=2 commit=2/2 round=1
1->3 Heartbeat term=2 commit=2/2 round=1
2->1 HeartbeatResp term=2 round=1
3 is FOLLOWER lead=1
3->1 HeartbeatResp term=2 round=1
> status 1 3
1: LEADER term=2 commit=2 applied=2 last=2 lead=1
3: FOLLOWER term=2 commit=2 applied=2 last=2 lead=1
"""

CHECK_QUORUM = """
> campaign 1
> stabilize quiet
# The leader is isolated: after an election timeout without hearing from a
# quorum it steps down (and drops a read it could no longer confirm).
> partition 1 | 2 3
> read 1 r1
> tick 1 9
> stabilize quiet
> status 1
1: LEADER term=2 commit=2 applied=2 last=2 lead=1
> tick 1
> process 1
1 is FOLLOWER
1 dropped read r1
> status 1
1: FOLLOWER term=2 commit=2 applied=2 last=2 lead=None
"""

# Leader 1 (term 5) and follower 2 agree up to index 2; after that the
# follower has five entries of term 3 the leader never had, the leader has
# entries of term 4. One rejection with a term hint skips all of term 3.
BACKTRACK_LOGS = {
    "1": ([1, 1, 4, 4, 4, 4, 4, 4], 5),
    "2": ([1, 1, 3, 3, 3, 3, 3], 4),
    "3": ([1, 1, 4, 4, 4, 4, 4, 4], 4),
}
BACKTRACK_STEPS = """
> campaign 1
> process 1
1 is PRE_CANDIDATE
1->2 PreVote term=6 last=8/4
1->3 PreVote term=6 last=8/4
> deliver 2 3
> process 2 3
2->1 PreVoteResp term=6 grant
3->1 PreVoteResp term=6 grant
> deliver 1
> process 1
1 is CANDIDATE
1->2 Vote term=6 last=8/4
1->3 Vote term=6 last=8/4
> deliver 2 3
> process 2 3
2->1 VoteResp term=6 grant
3->1 VoteResp term=6 grant
> deliver 1
> drop 3
> process 1
1 is LEADER lead=1
1->2 App term=6 prev=8/4 commit=0 [9/6 NOOP]
1->3 App term=6 prev=8/4 commit=0 [9/6 NOOP]
# 2 has nothing at 8; it hints at its last entry 7 and that entry's term 3.
> deliver 2
> process 2
2 is FOLLOWER lead=1
2->1 AppResp term=6 reject prev=8 hint=7/3
# The leader's last entry with term <= 3 is 2: it probes from 2 at once.
> deliver 1
> process 1
1->2 App term=6 prev=2/1 commit=0 [3/4 "e3", 4/4 "e4", 5/4 "e5", 6/4 "e6", 7/4 "e7", 8/4 "e8", 9/6 NOOP]
> deliver 2
> process 2
2->1 AppResp term=6 index=9
"""

# Figure 8 of the Raft paper. Node 1 was leader of term 2 and put entry 2
# (term 2) on node 2 only; node 5 then led term 3 and wrote its own entry 2.
# Node 1 is elected again in term 4 and copies entry 2 to node 3: it is now
# on a majority, yet it must NOT count as committed, because node 5 could
# still be elected (its last term, 3, beats theirs) and overwrite it.
FIGURE8_LOGS = {
    "1": ([1, 2], 3),
    "2": ([1, 2], 3),
    "3": ([1], 3),
    "4": ([1], 3),
    "5": ([1, 3], 3),
}
FIGURE8 = """
# One entry per append (max_size_per_msg=1) so entry 2 and the NOOP travel
# separately. Node 5 is away while 1 is elected for term 4.
> partition 1 2 3 4 | 5
> campaign 1
> process 1
1 is PRE_CANDIDATE
1->2 PreVote term=4 last=2/2
1->3 PreVote term=4 last=2/2
1->4 PreVote term=4 last=2/2
1->5 PreVote term=4 last=2/2
> deliver 2 3 4 5
> process 2 3 4
2->1 PreVoteResp term=4 grant
3->1 PreVoteResp term=4 grant
4->1 PreVoteResp term=4 grant
> deliver 1
> process 1
1 is CANDIDATE
1->2 Vote term=4 last=2/2
1->3 Vote term=4 last=2/2
1->4 Vote term=4 last=2/2
1->5 Vote term=4 last=2/2
> deliver 2 3 4
> process 2 3 4
2->1 VoteResp term=4 grant
3->1 VoteResp term=4 grant
4->1 VoteResp term=4 grant
> deliver 1
> process 1
1 is LEADER lead=1
1->2 App term=4 prev=2/2 commit=0 [3/4 NOOP]
1->3 App term=4 prev=2/2 commit=0 [3/4 NOOP]
1->4 App term=4 prev=2/2 commit=0 [3/4 NOOP]
1->5 App term=4 prev=2/2 commit=0 [3/4 NOOP]
# Only 3 is fast.
> drop 2 4 5
> deliver 3
> process 3
3 is FOLLOWER lead=1
3->1 AppResp term=4 reject prev=2 hint=1/1
> deliver 1
> process 1
1->3 App term=4 prev=1/1 commit=0 [2/2 "e2"]
> deliver 3
> process 3
3->1 AppResp term=4 index=2
> deliver 1
> process 1
1->3 App term=4 prev=2/2 commit=0 [3/4 NOOP]
> status 1
1: LEADER term=4 commit=0 applied=0 last=3 lead=1
# Entry 2 (term 2) is on 1, 2 and 3, a majority of five, but not committed.
# Rightly so: 1 fails now and 5, whose last term 3 beats 2, is elected by
# 2, 3 and 4 and overwrites entry 2 everywhere.
> partition 1 | 2 3 4 5
> drop 3
# (5's first pre-vote, for term 4, is refused by 2 and 4, who voted in term
# 4, and ignored by 3, which just heard from leader 1; 5 adopts term 4.)
> campaign 5
> stabilize quiet
> campaign 5
> stabilize
5 is PRE_CANDIDATE
5->1 PreVote term=5 last=2/3
5->2 PreVote term=5 last=2/3
5->3 PreVote term=5 last=2/3
5->4 PreVote term=5 last=2/3
2->5 PreVoteResp term=5 grant
4->5 PreVoteResp term=5 grant
5 is CANDIDATE
5->1 Vote term=5 last=2/3
5->2 Vote term=5 last=2/3
5->3 Vote term=5 last=2/3
5->4 Vote term=5 last=2/3
2->5 VoteResp term=5 grant
4->5 VoteResp term=5 grant
5 is LEADER lead=5
5->1 App term=5 prev=2/3 commit=0 [3/5 NOOP]
5->2 App term=5 prev=2/3 commit=0 [3/5 NOOP]
5->3 App term=5 prev=2/3 commit=0 [3/5 NOOP]
5->4 App term=5 prev=2/3 commit=0 [3/5 NOOP]
2 is FOLLOWER lead=5
2->5 AppResp term=5 reject prev=2 hint=2/2
3 is FOLLOWER lead=5
3->5 AppResp term=5 reject prev=2 hint=2/2
4 is FOLLOWER lead=5
4->5 AppResp term=5 reject prev=2 hint=1/1
5->2 App term=5 prev=1/1 commit=0 [2/3 "e2"]
5->3 App term=5 prev=1/1 commit=0 [2/3 "e2"]
5->4 App term=5 prev=1/1 commit=0 [2/3 "e2"]
2->5 AppResp term=5 index=2
3->5 AppResp term=5 index=2
4->5 AppResp term=5 index=2
5->2 App term=5 prev=2/3 commit=0 [3/5 NOOP]
5->3 App term=5 prev=2/3 commit=0 [3/5 NOOP]
5->4 App term=5 prev=2/3 commit=0 [3/5 NOOP]
2->5 AppResp term=5 index=3
3->5 AppResp term=5 index=3
4->5 AppResp term=5 index=3
5->2 App term=5 prev=3/5 commit=3 []
5->3 App term=5 prev=3/5 commit=3 []
5->4 App term=5 prev=3/5 commit=3 []
5 apply 1/1 "e1"
5 apply 2/3 "e2"
5 apply 3/5 NOOP
2->5 AppResp term=5 index=3
2 apply 1/1 "e1"
2 apply 2/3 "e2"
2 apply 3/5 NOOP
3->5 AppResp term=5 index=3
3 apply 1/1 "e1"
3 apply 2/3 "e2"
3 apply 3/5 NOOP
4->5 AppResp term=5 index=3
4 apply 1/1 "e1"
4 apply 2/3 "e2"
4 apply 3/5 NOOP
> status 1 2 3 4 5
1: LEADER term=4 commit=0 applied=0 last=3 lead=1
2: FOLLOWER term=5 commit=3 applied=3 last=3 lead=5
3: FOLLOWER term=5 commit=3 applied=3 last=3 lead=5
4: FOLLOWER term=5 commit=3 applied=3 last=3 lead=5
5: LEADER term=5 commit=3 applied=3 last=3 lead=5
"""

READ_INDEX = """
> campaign 1
> stabilize quiet
# Three reads in one loop turn share one heartbeat round.
> read 1 a
> read 1 b
> read 1 c
> process 1
1->2 Heartbeat term=2 commit=2/2 round=1
1->3 Heartbeat term=2 commit=2/2 round=1
> deliver 2
> process 2
2->1 HeartbeatResp term=2 round=1
# One ack plus the leader itself is a quorum: all three reads are answered
# at the commit index recorded when the round was sent.
> deliver 1
> process 1
1 read a@2
1 read b@2
1 read c@2
# A read registered after a round left waits for the next round.
> read 1 d
> process 1
1->2 Heartbeat term=2 commit=2/2 round=2
1->3 Heartbeat term=2 commit=2/2 round=2
> stabilize
2->1 HeartbeatResp term=2 round=2
3->1 HeartbeatResp term=2 round=1
3->1 HeartbeatResp term=2 round=2
1 read d@2
# Followers do not serve ReadIndex.
> read 2 e
error: NotLeader: not the leader (leader hint: 1)
"""

READ_INDEX_NEW_LEADER = """
# A new leader defers reads until its NOOP commits: before that its commit
# index may be behind what the previous leader acknowledged.
> campaign 1
> stabilize quiet
> propose 1 x
> stabilize quiet
> transfer 1 2
> process 1
1->2 TimeoutNow term=2
> deliver 2
> process 2
2 is CANDIDATE
2->1 Vote term=3 last=3/2 transfer
2->3 Vote term=3 last=3/2 transfer
> deliver 1 3
> process 1 3
1 is FOLLOWER
1->2 VoteResp term=3 grant
3 is FOLLOWER
3->2 VoteResp term=3 grant
> deliver 2
> process 2
2 is LEADER lead=2
2->1 App term=3 prev=3/2 commit=3 [4/3 NOOP]
2->3 App term=3 prev=3/2 commit=3 [4/3 NOOP]
> read 2 r
> process 2
> stabilize
1 is FOLLOWER lead=2
1->2 AppResp term=3 index=4
3 is FOLLOWER lead=2
3->2 AppResp term=3 index=4
2->1 App term=3 prev=4/3 commit=4 []
2->3 App term=3 prev=4/3 commit=4 []
2->1 Heartbeat term=3 commit=4/3 round=1
2->3 Heartbeat term=3 commit=4/3 round=1
2 apply 4/3 NOOP
1->2 AppResp term=3 index=4
1->2 HeartbeatResp term=3 round=1
1 apply 4/3 NOOP
3->2 AppResp term=3 index=4
3->2 HeartbeatResp term=3 round=1
3 apply 4/3 NOOP
2 read r@4
"""

LEASE = """
> campaign 1
> stabilize quiet
# No heartbeat round acknowledged yet: no lease.
> lease 1
1 lease no
> tick 1
> stabilize quiet
> lease 1
1 lease ok
# Cut off, the lease lasts election_tick - margin = 8 ticks after the last
# acknowledged round was sent, then expires before check-quorum steps down.
> partition 1 | 2 3
> tick 1 7
> stabilize quiet
> lease 1
1 lease ok
> tick 1
> lease 1
1 lease no
> status 1
1: LEADER term=2 commit=2 applied=2 last=2 lead=1
"""

TRANSFER = """
> campaign 1
> stabilize quiet
# Node 3 misses an entry; transfer to it: the leader first catches it up,
# then sends TimeoutNow. Proposals are refused meanwhile.
> partition 1 2 | 3
> propose 1 x
> stabilize quiet
> heal
> transfer 1 3
> propose 1 y
error: LeadershipTransferring: leadership transfer in progress (leader hint: 3)
> process 1
1->3 App term=2 prev=3/2 commit=3 []
> deliver 3
> process 3
3->1 AppResp term=2 reject prev=3 hint=2/2
> deliver 1
> process 1
1->3 App term=2 prev=2/2 commit=3 [3/2 "x"]
> deliver 3
> process 3
3->1 AppResp term=2 index=3
3 apply 3/2 "x"
# 3 is up to date: TimeoutNow.
> deliver 1
> process 1
1->3 TimeoutNow term=2
# 3 campaigns at once, without pre-vote; its Vote says "transfer", so 2
# grants it although it heard from leader 1 a moment ago.
> deliver 3
> process 3
3 is CANDIDATE
3->1 Vote term=3 last=3/2 transfer
3->2 Vote term=3 last=3/2 transfer
> deliver 2
> process 2
2 is FOLLOWER
2->3 VoteResp term=3 grant
> stabilize quiet
> status 1 2 3
1: FOLLOWER term=3 commit=4 applied=4 last=4 lead=3
2: FOLLOWER term=3 commit=4 applied=4 last=4 lead=3
3: LEADER term=3 commit=4 applied=4 last=4 lead=3
"""

TRANSFER_ABORT = """
> campaign 1
> stabilize quiet
> partition 1 2 | 3
> transfer 1 3
> propose 1 y
error: LeadershipTransferring: leadership transfer in progress (leader hint: 3)
# The target never answers: after an election timeout the leader gives up
# and takes proposals again.
> tick 1 5
> stabilize quiet
> tick 1 4
> stabilize quiet
> propose 1 y
error: LeadershipTransferring: leadership transfer in progress (leader hint: 3)
> tick 1
> propose 1 y
> status 1
1: LEADER term=2 commit=2 applied=2 last=3 lead=1
"""

LEARNER = """
# 1, 2, 3 vote; 4 is a learner.
> campaign 1
> stabilize quiet
> status 4
4: FOLLOWER term=2 commit=2 applied=2 last=2 lead=1
# With 2 and 3 away, the leader and the learner are two out of four nodes,
# but only one of three voters: nothing commits.
> partition 1 4 | 2 3
> propose 1 x
> stabilize
1->2 App term=2 prev=2/2 commit=2 [3/2 "x"]
1->3 App term=2 prev=2/2 commit=2 [3/2 "x"]
1->4 App term=2 prev=2/2 commit=2 [3/2 "x"]
4->1 AppResp term=2 index=3
> status 1
1: LEADER term=2 commit=2 applied=2 last=3 lead=1
# A learner never campaigns.
> tick 4 100
> process 4
> status 4
4: FOLLOWER term=2 commit=2 applied=2 last=3 lead=1
"""

CONF_CHANGE = """
> campaign 1
> stabilize quiet
# Add 4 as a learner. It starts with an empty log.
> conf 1 add-learner 4
# Only one change at a time: the first is not committed yet.
> conf 1 add-voter 5
error: ConfChangeError: a membership change is already in progress
> stabilize quiet
> status 1 4
1: LEADER term=2 commit=3 applied=3 last=3 lead=1
4: FOLLOWER term=2 commit=3 applied=3 last=3 lead=1
> conf 1 promote 4
> process 1
1->2 App term=2 prev=3/2 commit=3 [4/2 CONF promote-learner 4]
1->3 App term=2 prev=3/2 commit=3 [4/2 CONF promote-learner 4]
1->4 App term=2 prev=3/2 commit=3 [4/2 CONF promote-learner 4]
> stabilize quiet
# 4 now counts: with 1 and 4 alone (2 of 4 voters), nothing commits.
> partition 1 4 | 2 3
> propose 1 x
> stabilize quiet
> status 1
1: LEADER term=2 commit=4 applied=4 last=5 lead=1
> heal
> tick 1
> stabilize quiet
> status 1
1: LEADER term=2 commit=5 applied=5 last=5 lead=1
# The leader removes itself: it keeps leading until the entry commits
# (not counting itself), then steps down and hands over with TimeoutNow.
> conf 1 remove 1
> stabilize
1->2 App term=2 prev=5/2 commit=5 [6/2 CONF remove-node 1]
1->3 App term=2 prev=5/2 commit=5 [6/2 CONF remove-node 1]
1->4 App term=2 prev=5/2 commit=5 [6/2 CONF remove-node 1]
2->1 AppResp term=2 index=6
3->1 AppResp term=2 index=6
4->1 AppResp term=2 index=6
1 is FOLLOWER
1->2 App term=2 prev=6/2 commit=6 []
1->3 App term=2 prev=6/2 commit=6 []
1->4 App term=2 prev=6/2 commit=6 []
1->2 TimeoutNow term=2
1 apply 6/2 CONF remove-node 1
2 is CANDIDATE
2->1 AppResp term=2 index=6
2->3 Vote term=3 last=6/2 transfer
2->4 Vote term=3 last=6/2 transfer
2 apply 6/2 CONF remove-node 1
3->1 AppResp term=2 index=6
3 apply 6/2 CONF remove-node 1
4->1 AppResp term=2 index=6
4 apply 6/2 CONF remove-node 1
3 is FOLLOWER
3->2 VoteResp term=3 grant
4 is FOLLOWER
4->2 VoteResp term=3 grant
2 is LEADER lead=2
2->3 App term=3 prev=6/2 commit=6 [7/3 NOOP]
2->4 App term=3 prev=6/2 commit=6 [7/3 NOOP]
3 is FOLLOWER lead=2
3->2 AppResp term=3 index=7
4 is FOLLOWER lead=2
4->2 AppResp term=3 index=7
2->3 App term=3 prev=7/3 commit=7 []
2->4 App term=3 prev=7/3 commit=7 []
2 apply 7/3 NOOP
3->2 AppResp term=3 index=7
3 apply 7/3 NOOP
4->2 AppResp term=3 index=7
4 apply 7/3 NOOP
"""

SNAPSHOT = """
> campaign 1
> stabilize quiet
> propose 1 a
> propose 1 b
> stabilize quiet
# The leader snapshots at 4 (10 bytes of state) and drops its log up to it.
> compact 1 4 10
# A new learner 4 needs entries below the leader's first index: the
# snapshot goes in 4-byte chunks, one in flight at a time.
> conf 1 add-learner 4
> stabilize
1->2 App term=2 prev=4/2 commit=4 [5/2 CONF add-learner 4]
1->3 App term=2 prev=4/2 commit=4 [5/2 CONF add-learner 4]
1->4 App term=2 prev=5/2 commit=4 []
2->1 AppResp term=2 index=5
3->1 AppResp term=2 index=5
4 is FOLLOWER lead=1
4->1 AppResp term=2 reject prev=5 hint=0/0
1->4 Snap term=2 snap=4/2 offset=0 len=4
1->2 App term=2 prev=5/2 commit=5 []
1->3 App term=2 prev=5/2 commit=5 []
1 apply 5/2 CONF add-learner 4
2->1 AppResp term=2 index=5
2 apply 5/2 CONF add-learner 4
3->1 AppResp term=2 index=5
3 apply 5/2 CONF add-learner 4
4->1 SnapResp term=2 snap=4 offset=4
1->4 Snap term=2 snap=4/2 offset=4 len=4
4->1 SnapResp term=2 snap=4 offset=8
1->4 Snap term=2 snap=4/2 offset=8 len=2 done
4 install snapshot 4/2
4->1 AppResp term=2 index=4
1->4 App term=2 prev=4/2 commit=5 [5/2 CONF add-learner 4]
4->1 AppResp term=2 index=5
4 apply 5/2 CONF add-learner 4
> status 4
4: FOLLOWER term=2 commit=5 applied=5 last=5 lead=1
"""

SNAPSHOT_COMMIT_STEPS = """
# Chunks move nothing: 4's commit index stays 0 until the last chunk is in
# and the snapshot installed; only then is its commit the snapshot index.
> campaign 1
> stabilize quiet
> propose 1 a
> stabilize quiet
> compact 1 3 8
> conf 1 add-learner 4
> process 1
1->2 App term=2 prev=3/2 commit=3 [4/2 CONF add-learner 4]
1->3 App term=2 prev=3/2 commit=3 [4/2 CONF add-learner 4]
1->4 App term=2 prev=4/2 commit=3 []
> deliver 4
> process 4
4 is FOLLOWER lead=1
4->1 AppResp term=2 reject prev=4 hint=0/0
> deliver 1
> process 1
1->4 Snap term=2 snap=3/2 offset=0 len=4
> deliver 4
> process 4
4->1 SnapResp term=2 snap=3 offset=4
> status 4
4: FOLLOWER term=2 commit=0 applied=0 last=0 lead=1
> deliver 1
> process 1
1->4 Snap term=2 snap=3/2 offset=4 len=4 done
> deliver 4
> process 4
4 install snapshot 3/2
4->1 AppResp term=2 index=3
> status 4
4: FOLLOWER term=2 commit=3 applied=3 last=3 lead=1
"""


def test_election_and_noop():
    run_script(Harness(["1", "2", "3"]), ELECTION)


def test_pre_vote_prevents_term_inflation():
    run_script(Harness(["1", "2", "3"]), PRE_VOTE)


def test_check_quorum_steps_down_isolated_leader():
    run_script(Harness(["1", "2", "3"]), CHECK_QUORUM)


def test_log_conflict_backtracks_by_term():
    run_script(Harness(["1", "2", "3"], logs=BACKTRACK_LOGS), BACKTRACK_STEPS)


def test_figure8_only_current_term_entries_commit_by_counting():
    run_script(figure8_harness(RaftNode), FIGURE8)


def figure8_harness(node_class: type[RaftNode]) -> Harness:
    return Harness(
        ["1", "2", "3", "4", "5"], logs=FIGURE8_LOGS, max_size_per_msg=1, node_class=node_class
    )


class CommitsOldTermsByCounting(RaftNode):
    """A deliberately broken leader: commits whatever a quorum holds, any term."""

    def _maybe_commit(self) -> bool:
        voters = self.conf.voters
        index = sorted((self.prs[v].match for v in voters), reverse=True)[len(voters) // 2]
        if index > self.log.committed:
            self.log.commit_to(index)
            return True
        return False


def test_figure8_script_catches_commit_by_counting_bug():
    with pytest.raises(pytest.fail.Exception, match="commit=2"):
        run_script(figure8_harness(CommitsOldTermsByCounting), FIGURE8)


def test_read_index_batches_reads_into_one_round():
    run_script(Harness(["1", "2", "3"]), READ_INDEX)


def test_read_index_waits_for_new_leader_commit():
    run_script(Harness(["1", "2", "3"]), READ_INDEX_NEW_LEADER)


def test_lease_read_holds_then_expires():
    run_script(Harness(["1", "2", "3"]), LEASE)


def test_leadership_transfer():
    run_script(Harness(["1", "2", "3"]), TRANSFER)


def test_leadership_transfer_aborts_after_election_timeout():
    run_script(Harness(["1", "2", "3"]), TRANSFER_ABORT)


def test_learner_not_counted_and_never_campaigns():
    run_script(Harness(["1", "2", "3"], learners=("4",)), LEARNER)


def test_conf_change_one_at_a_time_and_leader_removal():
    run_script(Harness(["1", "2", "3"], spares=("4",)), CONF_CHANGE)


def test_snapshot_sent_in_chunks():
    run_script(Harness(["1", "2", "3"], spares=("4",), snap_chunk_size=4), SNAPSHOT)


def test_follower_commit_only_after_snapshot_install():
    run_script(Harness(["1", "2", "3"], spares=("4",), snap_chunk_size=4), SNAPSHOT_COMMIT_STEPS)


# ---------------------------------------------------------------------------
# Direct checks of rules that are easier to state in code than in a script
# ---------------------------------------------------------------------------


def elected(h: Harness, nid: str = "1") -> RaftNode:
    h.nodes[nid].campaign()
    h.stabilize()
    assert h.nodes[nid].is_leader_ready()
    return h.nodes[nid]


def snap_chunk(meta_index: int, term: int, offset: int, data: bytes, done: bool) -> Message:
    from raftkv.raft.types import SnapshotMeta

    meta = SnapshotMeta(meta_index, 2, ConfState(("1", "2", "3"), ()))
    return Message(
        MT.Snap,
        "1",
        "3",
        term=term,
        snap_meta=meta,
        snap_offset=offset,
        snap_data=data,
        snap_done=done,
    )


def test_stale_snapshot_is_answered_with_commit_index():
    h = Harness(["1", "2", "3"])
    elected(h)
    for x in (b"a", b"b", b"c"):
        h.nodes["1"].propose(x)
    h.stabilize()
    f = h.nodes["3"]
    assert f.commit_index == 5
    f.step(snap_chunk(3, f.term, 0, b"xx", True))
    rd = f.ready()
    assert rd.snapshot is None
    assert [(m.type, m.index, m.reject) for m in rd.messages] == [(MT.AppResp, 5, False)]
    f.advance(rd)


def test_snapshot_chunks_never_raise_commit_of_a_divergent_log():
    # Follower 3 holds uncommitted entries 2..4 of term 1 that the leader
    # (term 2) never had. The leader's snapshot is at index 4, term 2.
    h = Harness(
        ["1", "2", "3"],
        logs={"1": ([1, 2, 2, 2], 2), "2": ([1, 2, 2, 2], 2), "3": ([1, 1, 1, 1], 1)},
    )
    f = h.nodes["3"]
    assert f.commit_index == 0
    f.step(snap_chunk(4, 2, 0, b"ab", False))
    assert f.commit_index == 0 and f.last_index == 4  # a chunk proves nothing
    f.step(snap_chunk(4, 2, 2, b"cd", True))
    # Installed: the divergent entries are gone and commit = snapshot index.
    assert f.commit_index == 4 and f.last_index == 4 and f.log.term(4) == 2
    rd = f.ready()
    assert rd.snapshot is not None and rd.snapshot[1] == b"abcd"
    assert rd.messages[-1].type is MT.AppResp and rd.messages[-1].index == 4


def test_snapshot_matching_our_log_only_commits():
    h = Harness(["1", "2", "3"], logs={n: ([1, 2, 2], 2) for n in ("1", "2", "3")})
    f = h.nodes["3"]
    from raftkv.raft.types import SnapshotMeta

    meta = SnapshotMeta(3, 2, ConfState(("1", "2", "3"), ()))
    f.step(Message(MT.Snap, "1", "3", term=2, snap_meta=meta, snap_data=b"s", snap_done=True))
    rd = f.ready()
    assert rd.snapshot is None  # our log already holds (3, 2): keep it
    assert f.commit_index == 3
    assert [e.index for e in rd.committed_entries] == [1, 2, 3]


def test_heartbeat_commit_needs_matching_term():
    h = Harness(["1", "2", "3"], logs={"1": ([1, 2], 2), "2": ([1, 2], 2), "3": ([1, 1, 1], 1)})
    f = h.nodes["3"]
    f.step(Message(MT.Heartbeat, "1", "3", term=2, commit=2, index=2, log_term=2))
    assert f.commit_index == 0  # its entry 2 is of term 1: not the leader's
    f.step(Message(MT.Heartbeat, "1", "3", term=2, commit=1, index=1, log_term=1))
    assert f.commit_index == 1


def test_append_commit_limited_to_verified_prefix():
    h = Harness(
        ["1", "2", "3"], logs={"1": ([1, 2, 2], 2), "2": ([1, 2, 2], 2), "3": ([1, 1, 1], 1)}
    )
    f = h.nodes["3"]
    # Matches at 1, carries nothing: commit 3 from the leader only goes to 1.
    f.step(Message(MT.App, "1", "3", term=2, index=1, log_term=1, commit=3))
    assert f.commit_index == 1
    # A rejected append moves nothing.
    f.step(Message(MT.App, "1", "3", term=2, index=3, log_term=2, commit=3))
    assert f.commit_index == 1


def test_conf_change_takes_effect_on_append_and_reverts_on_truncation():
    h = Harness(["1", "2", "3"])
    leader = elected(h)
    f = h.nodes["3"]
    h.partition = [{"1", "3"}, {"2"}]
    leader.propose_conf_change(ConfChange(ConfChangeType.ADD_LEARNER, "9"))
    h.process("1")
    h.deliver({"3"})
    # 3 uses the new configuration as soon as the entry is in its log.
    assert f.conf.learners == ("9",) and f.pending_conf_index() == 3
    # A new leader (2, term 3) that never had the entry overwrites it.
    f.step(
        Message(
            MT.App,
            "2",
            "3",
            term=3,
            index=2,
            log_term=2,
            entries=[Entry(3, 3, EntryKind.NOOP, b"")],
            commit=2,
        )
    )
    assert f.conf == ConfState(("1", "2", "3"), ())
    assert f.pending_conf_index() == 0


def test_conf_change_refused_before_leader_commits_its_term():
    h = Harness(["1", "2", "3"])
    n = h.nodes["1"]
    n.campaign()
    for _ in range(2):  # pre-vote, then vote
        h.process("1")
        h.deliver()
        h.process("2")
        h.process("3")
        h.deliver()
    h.process("1")
    assert n.is_leader and not n.is_leader_ready()
    with pytest.raises(RaftError, match="committed an entry of its term"):
        n.propose_conf_change(ConfChange(ConfChangeType.ADD_LEARNER, "9"))


def test_restart_rebuilds_membership_from_log():
    h = Harness(["1", "2", "3"], spares=("4",))
    leader = elected(h)
    leader.propose_conf_change(ConfChange(ConfChangeType.ADD_LEARNER, "4"))
    h.stabilize()
    leader.propose(b"x")
    h.stabilize()
    h.storage["2"].create_snapshot(2, h.nodes["2"].conf_state_at(2), b"s")
    h.storage["2"].compact(2)
    h.start("2")  # a restart: the node is rebuilt from storage alone
    assert h.nodes["2"].conf == ConfState(("1", "2", "3"), ("4",))
    assert h.nodes["2"].conf_state_at(2) == ConfState(("1", "2", "3"), ())


def test_ready_must_be_advanced_before_the_next():
    h = Harness(["1"])
    n = h.nodes["1"]
    n.campaign()
    rd = n.ready()
    assert not n.has_ready()
    with pytest.raises(RaftError):
        n.ready()
    h.storage["1"].append(rd.entries)
    n.advance(rd)
    assert n.has_ready()  # our own NOOP is durable now: it commits


def test_single_voter_commits_only_what_the_driver_persisted():
    h = Harness(["1"])
    n = h.nodes["1"]
    n.campaign()
    h.stabilize()
    index = n.propose(b"x")
    rd = n.ready()
    assert [e.index for e in rd.entries] == [index]
    assert n.commit_index == index - 1  # not before advance() says it is durable
    h.storage["1"].append(rd.entries)
    n.advance(rd)
    assert n.commit_index == index
    n.read_index(b"r")  # a single voter answers at once
    rd = n.ready()
    assert rd.read_states == [(b"r", index)]
    assert n.lease_read_ok()


def test_lease_revoked_after_timeout_now():
    h = Harness(["1", "2", "3"])
    leader = elected(h)
    leader.tick()
    h.stabilize()
    assert leader.lease_read_ok()
    h.partition = [{"1", "2"}, {"3"}]
    leader.transfer_leadership("3")
    h.stabilize()
    leader.tick()
    leader.tick()  # the transfer to 3 (unreachable) continues for a while
    h.stabilize()
    assert leader.is_leader and not leader.lease_read_ok()
    for _ in range(10):
        leader.tick()
        h.stabilize()
    assert leader.lead_transferee is None
    assert leader.is_leader and not leader.lease_read_ok()  # not for the rest of the term
