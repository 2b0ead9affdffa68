"""jepsen-like-tests: a fault-injection harness for raftkv (cluster control, nemeses,
workloads, checkers). See ../README.md."""
