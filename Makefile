# faultbed: `make run` runs the default test, `make test` runs the test suite.
VENV := .venv
PY := $(VENV)/bin/python
FAULTBED := $(VENV)/bin/faultbed
PYTEST_ARGS ?=

.PHONY: setup run test test-fast lint bench campaign campaign-maelstrom campaign-rabbitmq chaos images gc clean

setup:
	@scripts/setup

run: setup
	$(FAULTBED) run

# --dist loadgroup: the tests of a module that share one cluster (xdist_group) run on one worker,
# so the cluster (RabbitMQ's takes ~30 s) starts once; every other test is spread as usual.
XDIST := -n 2 --dist loadgroup

test: setup images lint
	$(PY) -m pytest -q $(XDIST) $(PYTEST_ARGS)

lint: setup
	@scripts/typecheck

test-fast: setup
	$(PY) -m pytest -q $(XDIST) -m "not docker and not slow" $(PYTEST_ARGS)

bench: setup images
	$(PY) -m bench

# The harness's reliability gate: correct raftkv under every fault kind; every run must give a verdict.
CAMPAIGN_RUNS ?= 50
CAMPAIGN_RUNS_RABBITMQ ?= 10
CAMPAIGN_PARALLEL ?= 2
CAMPAIGN_SEED ?= 7000
# Spread over hosts or CI jobs: CAMPAIGN_SHARD=i/n on each (i = 1..n), CAMPAIGN_STORE=DIR to keep the runs
# for `faultbed store merge` (README "Spreading a campaign").
CAMPAIGN_SHARD ?= 1/1
CAMPAIGN_STORE ?=
campaign: setup
	$(PY) -m bench.campaign --runs $(CAMPAIGN_RUNS) --parallel $(CAMPAIGN_PARALLEL) --seed-base $(CAMPAIGN_SEED) \
		--shard $(CAMPAIGN_SHARD) $(if $(CAMPAIGN_STORE),--store $(CAMPAIGN_STORE)) \
		--expect valid -- --nodes 5 --nemesis partition,kill,pause,latency --nemesis-interval 4 --time-limit 20

# Issue 12's done-when: the Maelstrom test subjects (correct: valid in every run; planted bugs: detected).
campaign-maelstrom: setup
	$(PY) -m bench.maelstrom_campaigns --runs $(or $(MAELSTROM_RUNS),10) --parallel $(CAMPAIGN_PARALLEL)

# RabbitMQ classic mirrored queues (Jepsen 2014's setup) and quorum queues, the control, under the same
# schedules: 5 nodes, random-halves partitions of 7.5 s to 15 s (net_ticktime is 5 s), heal, drain.
RABBITMQ_CAMPAIGN = --system rabbitmq --backend docker --nodes 5 --workload queue --nemesis partition \
	--nemesis-interval 15 --time-limit 60
campaign-rabbitmq: setup images
	$(PY) -m bench.campaign --runs $(CAMPAIGN_RUNS_RABBITMQ) --parallel 2 --seed-base 1000 \
		-- $(RABBITMQ_CAMPAIGN) --option queue-type=classic-mirrored
	$(PY) -m bench.campaign --runs $(CAMPAIGN_RUNS_RABBITMQ) --parallel 2 --seed-base 1000 --expect valid \
		-- $(RABBITMQ_CAMPAIGN)

chaos: setup
	$(PY) -m pytest -n 2 examples/chaos_suite

images: setup
	@scripts/images

gc: setup
	$(FAULTBED) gc

clean:
	rm -rf $(VENV) .tools store
