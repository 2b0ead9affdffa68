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
	$(PY) -m pytest tests jepsen-like-tests/test_checkers.py -p no:cacheprovider --durations=15

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
	$(PY) bench/bench_groups.py --quick

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

# A local cluster in the background: NODES nodes x GROUPS slot groups, one raftkv-server
# process per group replica (node i's process for group g on port BASE_PORT + NODE_STEP*i + g),
# all started with --cluster-map CLUSTER_DIR/map.json; data, server.log and pid per process
# in CLUSTER_DIR/<port>. `make cluster-stop` stops them by their pid files.
NODES ?= 3
GROUPS ?= 3
REPLICAS ?= $(shell [ $(NODES) -lt 3 ] && echo $(NODES) || echo 3)
BASE_PORT ?= 7001
NODE_STEP ?= 100
CLUSTER_DIR ?= cluster-run
MAP_ARGS = --host 127.0.0.1 --nodes $(NODES) --groups $(GROUPS) --replicas $(REPLICAS) \
  --base-port $(BASE_PORT) --node-step $(NODE_STEP)
cluster: $(STAMP)
	@set -e; mkdir -p $(CLUSTER_DIR); \
	for f in $(CLUSTER_DIR)/*/pid; do \
	  if [ -f $$f ] && kill -0 $$(cat $$f) 2>/dev/null; then \
	    echo "a cluster is running (pid $$(cat $$f), $$f): make cluster-stop first"; exit 1; fi; \
	done; \
	$(PY) -m raftkv.cluster.groupmap $(MAP_ARGS) > $(CLUSTER_DIR)/map.json.new; \
	if [ -f $(CLUSTER_DIR)/map.json ] && ! cmp -s $(CLUSTER_DIR)/map.json $(CLUSTER_DIR)/map.json.new; then \
	  rm -f $(CLUSTER_DIR)/map.json.new; \
	  echo "$(CLUSTER_DIR) holds a cluster of another shape: rm -rf $(CLUSTER_DIR) to start anew"; exit 1; fi; \
	if [ ! -f $(CLUSTER_DIR)/map.json ] && ls -d $(CLUSTER_DIR)/*/group-* >/dev/null 2>&1; then \
	  rm -f $(CLUSTER_DIR)/map.json.new; \
	  echo "$(CLUSTER_DIR) holds data of an earlier cluster: rm -rf $(CLUSTER_DIR) to start anew"; exit 1; fi; \
	mv $(CLUSTER_DIR)/map.json.new $(CLUSTER_DIR)/map.json; \
	map=$$(cd $(CLUSTER_DIR) && pwd)/map.json; \
	$(PY) -m raftkv.cluster.groupmap $(MAP_ARGS) --processes | while read port node group; do \
	  d=$(CLUSTER_DIR)/$$port; mkdir -p $$d; \
	  $(VENV)/bin/raftkv-server --port $$port --dir $$d --cluster-map $$map \
	    --logfile $$d/server.log >/dev/null 2>&1 & echo $$! > $$d/pid; \
	  echo "node $$node group $$group: 127.0.0.1:$$port pid $$(cat $$d/pid)"; \
	done
	@echo "map: $(CLUSTER_DIR)/map.json; status: $(VENV)/bin/raftkv-admin -s 127.0.0.1:$(BASE_PORT) status"
	@echo "try: redis-cli -c -p $(BASE_PORT) set k v"

cluster-stop:
	@for f in $(CLUSTER_DIR)/*/pid; do \
	  [ -f $$f ] || continue; pid=$$(cat $$f); \
	  if kill $$pid 2>/dev/null; then \
	    for i in $$(seq 100); do kill -0 $$pid 2>/dev/null || break; sleep 0.1; done; \
	    echo "stopped pid $$pid ($$(dirname $$f))"; fi; \
	  rm -f $$f; \
	done; true

clean:
	rm -rf $(VENV) build *.egg-info
