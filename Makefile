# One entry point for set-up, tests, the demo and the benchmarks. Every target creates what it needs.
SHELL := /bin/bash
PYTHON313 := $(shell scripts/find-python3.13)
# Which interpreter (version and path) the venvs are built with. Each venv's .installed stamp records it;
# a stamp that records another one (or nothing) re-runs the venv's recipe, which recreates the venv if it
# does not run on this interpreter.
PYTHON313_ID := $(if $(PYTHON313),$(shell $(PYTHON313) -c 'import sys; print(sys.version.split()[0], sys.executable)'))
stamp_current = $(shell test "$$(cat $(1) 2>/dev/null)" = "$(PYTHON313_ID)" || echo FORCE)
# Recreates venv $(1) unless its interpreter is that one.
venv_for_python313 = test "$$($(1)/bin/python -c 'import sys; print(sys.version.split()[0], sys._base_executable)' \
	2>/dev/null)" = "$(PYTHON313_ID)" || $(PYTHON313) -m venv --clear $(1)
VENV := .venv
PY := $(VENV)/bin/python
# Every install takes its versions from this file (`make lock` writes it).
LOCK := requirements.lock
PROJECT := prime-video-monitor-before
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# jsii prints a large banner on Node 20 (end of life since 2026-10-30); it works, keep it out of output.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

.PHONY: venv test test-load lint demo demo-live demo-monolith bench calibrate calibrate-reference bench-localstack evaluate evaluate-combined cost clean synth synth-offline synth-localstack lint-templates node corpus evaluate-corpus evaluate-av train FORCE

FORCE:

venv: $(VENV)/.installed

# The project (editable, no dependencies), then every extra's dependencies at the versions of the lock, each
# wheel checked against its hashes: pip refuses a dependency the lock does not pin (run `make lock`).
$(VENV)/.installed: pyproject.toml $(LOCK) $(call stamp_current,$(VENV)/.installed)
	@test -n "$(PYTHON313)" || { echo "error: Python 3.13 is required" >&2; exit 1; }
	@$(call venv_for_python313,$(VENV))
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --no-deps -e .
	$(PY) -m pip install --quiet --require-hashes --constraint $(LOCK) '$(PROJECT)[dev,cdk,lambda]' \
		|| { echo "error: $(LOCK) does not pin what pyproject.toml asks for: run make lock" >&2; exit 1; }
	@echo "$(PYTHON313_ID)" > $@

# One set of versions for the dev venv, the Lambda packages (infra/bundling.py) and the after's image
# (Dockerfile): pyproject.toml's ranges resolved for every platform, with hashes. Keeps the locked versions
# that still fit; LOCK_ARGS=--upgrade (or --upgrade-package boto3) moves them. Commit the file.
.PHONY: lock
lock: venv
	$(VENV)/bin/uv pip compile --quiet pyproject.toml --all-extras --universal --python-version 3.13 \
		--generate-hashes --custom-compile-command 'make lock' --output-file $(LOCK) $(LOCK_ARGS)

lint: venv
	$(VENV)/bin/ruff check .

test: venv lint localstack-venv checkov-venv node
	$(PY) -m pytest -q -n 2 --dist loadfile -m "not load"

# 20 streams started together on LocalStack; prints the wall time.
test-load: venv localstack-venv node
	$(PY) -m pytest -q -s -m load tests/e2e

# The main job: LocalStack up, deploy the stack, run a stream with defects through it, print what it
# found, the notifications, corrective actions and the bill of materials. STREAM=path runs your file.
demo: venv localstack-venv node
	$(PY) -m demo $(if $(STREAM),--stream $(STREAM))

# The sample published as live HLS into S3 in real time (SPEED=4: four times faster) and followed as it is
# written by the three designs at once: a live board, three bills, three lag tables, the same-defects check.
demo-live: venv localstack-venv node
	$(PY) -m demo --live --speed $(or $(SPEED),1) $(if $(STREAM),--stream $(STREAM))

# The same analysis in one process, no LocalStack.
demo-monolith: venv
	$(PY) -m monolith demo

# Found/true per case and per defect type, FFmpeg's detectors beside ours, block-damage recall per codec,
# and the Lambda path (in one process) checked against the monolith on every case: a difference fails.
# Then the held-out table of the damage corpus (`evaluate-corpus` below), with these cases as one row, and the
# held-out A/V-shift evaluation (`evaluate-av` below).
# SEED=n draws a set nobody tuned on (0, the default, is the development set); the JSON goes to
# eval-output/. EVALUATE_ARGS="--no-lambda-path" skips the Lambda-path check, "--markdown" prints Markdown.
evaluate: venv
	$(PY) -m monolith evaluate --seed $(or $(SEED),0) --json eval-output/evaluate-seed$(or $(SEED),0).json \
		$(EVALUATE_ARGS)
	@$(MAKE) --no-print-directory evaluate-corpus \
		CORPUS_EVALUATE_ARGS="--generated eval-output/evaluate-seed$(or $(SEED),0).json $(CORPUS_EVALUATE_ARGS)"
	@$(MAKE) --no-print-directory evaluate-av

# The damage corpus (issue 22): public clips of six kinds and the generator, each in H.264, HEVC, VP8, VP9,
# AV1, MPEG-2 and MPEG-4 at two bit rates, damaged as transport and storage do, labelled by decoding damaged
# vs clean (about one CPU-minute). Cached outside git: $(CORPUS_DIR)/seed<N>, default
# ~/.cache/stream-quality-monitor/corpus; CORPUS_SEED=n draws other damage.
corpus: venv
	$(PY) -m sample_streams.corpus build --seed $(or $(CORPUS_SEED),0)

# The block-damage model (lambdas/detectors/block_model.json, committed) learned from the corpus's tuning
# sources only, with what it was trained on (sources, codecs, counts, date, command); builds the corpus first
# if needed. Deterministic: the same corpus gives the same weights. CORPUS_SEED=n trains on other damage.
train: venv
	$(PY) -m monolith train --seed $(or $(CORPUS_SEED),0)

# Block-damage recall per codec, content kind and damage on the corpus's held-out sources only, precision,
# onset, false alarms on the clean twins and on every clip of media/, FFmpeg's decoder flags beside ours,
# the Lambda path checked against the monolith on every stream (builds the corpus first if needed).
evaluate-corpus: venv
	$(PY) -m monolith evaluate-corpus --seed $(or $(CORPUS_SEED),0) \
		--json eval-output/corpus-heldout-seed$(or $(CORPUS_SEED),0).json $(CORPUS_EVALUATE_ARGS)

# Mid-stream A/V shifts of 300-400 ms (both signs) in real clips, judged on held-out sources whose sound is
# tied to motion (found within +-40 ms), untied content's "unknown" answers apart, the clean twins' false
# alarms, the Lambda path checked on every stream (sources: sample_streams/av_sources.py; about 4 minutes).
# AV_SEED=n draws other shifts; AV_EVALUATE_ARGS="--split held-out" runs the held-out sources alone.
evaluate-av: venv
	$(PY) -m monolith evaluate-av --seed $(or $(AV_SEED),0) \
		--json eval-output/av-seed$(or $(AV_SEED),0).json $(AV_EVALUATE_ARGS)

# The saved seeds as one report, a row per case summed over them (run `make evaluate SEED=n` for each first).
evaluate-combined: venv
	$(PY) -m monolith evaluate --combine $(or $(RESULTS),eval-output/evaluate-seed*.json) $(EVALUATE_ARGS)

# CPU per stream-second at 360p/720p/1080p: median and spread of 5 runs (a few minutes on 2 cores).
bench: venv
	$(PY) -m monolith bench --json bench-output/media-bench.json

# The same measurements, plus whole tasks' memory (`monolith serve --concurrency 1,2,4,8` on LocalStack),
# written to calibration/calibration.json (date, machine, command, load), which the cost model and the after
# stack read: commit the file after running it. Refuses a busy machine: run it with nothing else running.
# CALIBRATE_ARGS="--out FILE" writes elsewhere (`python -m monolith calibrate --help` for the rest).
calibrate: venv localstack-venv
	$(PY) -m monolith calibrate --repeats 5 --duration 10 $(CALIBRATE_ARGS)

# The reference host (calibration/host_reference.json): what PyAV alone decoding the bench streams costs
# here, the unit `make calibrate` prices CPU in. Only after a new PyAV (make calibrate then refuses).
calibrate-reference: venv
	$(PY) -m monolith calibrate --reference --repeats 9 --duration 10

# End-to-end wall time per stream-second on LocalStack, Lambda-path time next to the monolith's; then the
# three designs' lag to the live edge on the same stream published live (python -m demo.bench --help).
bench-localstack: venv localstack-venv node
	$(PY) -m demo.bench

# The Prime-Video-like scenario: 3,000 concurrent 25 fps 1080p streams, 24x7, us-east-1, from the committed
# calibration; the two figures go to docs/ (the README shows them).
cost: venv
	$(PY) -m cost_model compare --streams 3000 --hours 730 --resolution 1080p \
		--chart docs/cost.png --bars docs/cost-per-stream-hour.png

clean:
	rm -rf $(VENV) bench-output demo-output cost-output eval-output .pytest_cache cdk.out

# --- CDK ---
node: node_modules/.installed

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	@touch $@

# Both stacks, StreamQuality-<stage> (before) and StreamQuality-after-<stage>, checked by cdk-nag.
# Builds the Lambda packages with host-side pip (cache: ~/.cache/stream-quality-monitor/pip); the after's
# container image is only staged (cdk.out/asset.*): `cdk deploy` builds it where Docker exists.
synth: venv node
	scripts/cdk synth -q

# Code only, no pip: checks the app and cdk-nag offline; the result is not deployable.
synth-offline: venv node
	scripts/cdk synth -q -c bundle=false

synth-localstack: venv node
	scripts/cdk synth -q -c localstack=true

# cfn-lint on both synthesized templates: fails on errors, prints warnings; then checkov: fails on any
# failed check (make test runs both: tests/infra/test_infra_after_templates.py, test_infra_checkov.py).
lint-templates: synth-offline checkov-venv
	$(VENV)/bin/cfn-lint --non-zero-exit-code error cdk.out/*.template.json
	$(CHECKOV_VENV)/bin/checkov --framework cloudformation --skip-download --compact --quiet \
		$$(printf -- '-f %s ' cdk.out/*.template.json)

# checkov in a venv of its own (make test runs it on every template: tests/infra/test_infra_checkov.py):
# checkov 3.3 pins boto3 1.35, which the dev venv's boto3 (the Lambdas' pin) excludes.
CHECKOV_VENV := .venv-checkov
CHECKOV := checkov==3.3.30
.PHONY: checkov-venv
checkov-venv: $(CHECKOV_VENV)/.installed
$(CHECKOV_VENV)/.installed: $(shell test "$$(cat $(CHECKOV_VENV)/.installed 2>/dev/null)" = "$(PYTHON313_ID) $(CHECKOV)" || echo FORCE)
	@test -n "$(PYTHON313)" || { echo "error: Python 3.13 is required" >&2; exit 1; }
	@$(call venv_for_python313,$(CHECKOV_VENV))
	$(CHECKOV_VENV)/bin/python -m pip install --quiet '$(CHECKOV)'
	@echo "$(PYTHON313_ID) $(CHECKOV)" > $@

# --- LocalStack ---
# LocalStack 4.14.0 in host mode (no Docker) in a venv of its own, with our `process` Lambda executor
# (localstack_executor/). The stamp is redone when the executor's sources change.
LOCALSTACK_VENV := .venv-localstack
LOCALSTACK_PY := $(LOCALSTACK_VENV)/bin/python

.PHONY: localstack-venv localstack-up localstack-down

localstack-venv: $(LOCALSTACK_VENV)/.installed

$(LOCALSTACK_VENV)/.installed: localstack_executor/pyproject.toml $(wildcard localstack_executor/localstack_process_executor/*.py) \
		$(call stamp_current,$(LOCALSTACK_VENV)/.installed)
	@test -n "$(PYTHON313)" || { echo "error: Python 3.13 is required" >&2; exit 1; }
	@$(call venv_for_python313,$(LOCALSTACK_VENV))
	$(LOCALSTACK_PY) -m pip install --quiet './localstack_executor[server]'
	@rm -rf localstack_executor/build
	@echo "$(PYTHON313_ID)" > $@

# Starts in the background (pid, port, url and env.sh in .localstack/); `source .localstack/env.sh` for clients.
localstack-up: localstack-venv
	$(LOCALSTACK_PY) scripts/localstack.py up

localstack-down:
	python3 scripts/localstack.py down
