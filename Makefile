# raftkv: `make run` starts a single node on 127.0.0.1:6379 with data in ./data;
# `make test` runs the suite. Both create .venv when it is missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint bench chaos chaos-long fuzz connections cluster cluster-stop sim-long clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip >/dev/null 2>&1 || true
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/raftkv-server --port 6379 --dir ./data

test: $(STAMP) redis-tools
	$(PY) -m pytest tests jepsen-like-tests/test_checkers.py -p no:cacheprovider

lint: $(STAMP)
	$(VENV)/bin/ruff check raftkv tests bench jepsen-like-tests

# redis-cli, redis-benchmark and redis-server (for comparisons) from Debian's packages.
redis-tools:
	@command -v redis-cli >/dev/null && command -v redis-server >/dev/null || bash bench/install_redis.sh

bench: $(STAMP) redis-tools
	$(PY) bench/bench_single.py --targets
	$(PY) bench/bench_single.py --tests datatypes --pipelines 1 --targets
	$(PY) bench/bench_streams.py
	$(PY) bench/bench_pubsub.py
	$(PY) bench/bench_elements.py
	$(PY) bench/bench_memory.py
	$(PY) bench/bench_metrics.py
	$(PY) bench/bench_cluster.py

# The jepsen-like chaos harness: every fault mix and workload against a real cluster.
chaos: $(STAMP)
	bash jepsen-like-tests/install_faketime.sh
	$(PY) jepsen-like-tests/chaos.py --time 60

chaos-long: $(STAMP)
	bash jepsen-like-tests/install_faketime.sh
	$(PY) jepsen-like-tests/chaos.py --time 300 --runs 3

# The protocol fuzzer for longer than the default suite's smoke run.
fuzz: $(STAMP)
	RAFTKV_FUZZ_EXAMPLES=20000 $(PY) -m pytest tests/test_fuzz_protocol.py -p no:cacheprovider

connections: $(STAMP)
	RAFTKV_CONNECTIONS=10000 $(PY) -m pytest -s tests/test_many_connections.py -p no:cacheprovider

sim-long: $(STAMP)
	RAFT_SIM_SEEDS=20000 $(PY) -m pytest tests/raft/test_simulation.py -p no:cacheprovider

# A local 3-node Raft cluster in the background: data, logs and pids under ./cluster-run.
CLUSTER_PORTS ?= 7001 7002 7003
CLUSTER_PEERS := $(shell echo $(CLUSTER_PORTS) | sed 's/\([0-9]*\)/127.0.0.1:\1/g; s/ /,/g')
cluster: $(STAMP)
	@for p in $(CLUSTER_PORTS); do \
	  mkdir -p cluster-run/$$p; \
	  $(VENV)/bin/raftkv-server --port $$p --dir cluster-run/$$p --cluster-peers $(CLUSTER_PEERS) \
	    --logfile cluster-run/$$p/server.log >/dev/null 2>&1 & echo $$! > cluster-run/$$p/pid; \
	  echo "node 127.0.0.1:$$p pid $$(cat cluster-run/$$p/pid)"; \
	done
	@echo "try: redis-cli -c -p $(firstword $(CLUSTER_PORTS)) set k v"

cluster-stop:
	@for f in cluster-run/*/pid; do [ -f $$f ] && kill $$(cat $$f) 2>/dev/null; rm -f $$f; done; true

clean:
	rm -rf $(VENV) build *.egg-info
