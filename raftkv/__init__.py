"""raftkv: a Redis-compatible store replicated with Raft."""
