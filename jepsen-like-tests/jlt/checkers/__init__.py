"""Checkers for Jepsen-style histories: linearizability, list-append (Elle-style), counters."""
