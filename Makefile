# The venv is created on first use so `make run` and `make test` work on a fresh clone.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench mutate clean venv compiled

# The compiled engine (setup.py, docs/performance.md): the package built with MAILSIM_COMPILE=1 as a wheel
# and unpacked here, used through PYTHONPATH by `make bench` and tests/test_compiled.py. The editable
# install in .venv stays pure Python, so an edited source is what runs. Rebuilt when any source changes.
COMPILED := .build/compiled
SOURCES := $(shell find simulator -type f -not -path '*/__pycache__/*' -not -name '*.so' 2>/dev/null)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	$(BIN)/python -m pip install -q --only-binary=:all: 'atheris>=2.3' 2>/dev/null || echo 'note: atheris has no wheel here; the loader fuzz test uses hypothesis only'
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	@$(BIN)/mailsim run scenarios/tour.yaml --explain || test $$? -eq 1

lint: $(STAMP)
	$(BIN)/ruff check simulator tests benchmarks
	$(BIN)/mypy

$(COMPILED)/.built: $(STAMP) setup.py pyproject.toml $(SOURCES)
	rm -rf $(COMPILED) .build/wheel
	MAILSIM_COMPILE=1 $(BIN)/python -m pip wheel -q --no-deps --no-build-isolation -w .build/wheel .
	$(BIN)/python -m pip install -q --no-deps --target $(COMPILED) .build/wheel/mailsim-*.whl
	touch $@

compiled: $(COMPILED)/.built

test: $(STAMP) lint $(COMPILED)/.built
	$(BIN)/python -m pytest -q

bench: $(STAMP) $(COMPILED)/.built
	$(BIN)/python benchmarks/run.py

# Mutation testing (docs/testing.md): slow, so not part of `make test`. MUTANTS narrows it to names,
# e.g. make mutate MUTANTS='simulator.domain.*'; the survivor report is mutants/report.txt.
MUTANTS ?=
mutate: $(STAMP)
	$(BIN)/python -m pip install -q -e '.[dev,mutate]'
	ulimit -v 6291456 && nice -n 10 $(BIN)/mutmut run --max-children 1 $(foreach m,$(MUTANTS),'$(m)') || true
	{ $(BIN)/mutmut export-cicd-stats >/dev/null && cat mutants/mutmut-cicd-stats.json && echo && \
	  $(BIN)/mutmut results; } > mutants/report.txt
	@head -c 400 mutants/report.txt; echo; echo "survivors: mutants/report.txt (mutmut show NAME for the diff)"

clean:
	rm -rf $(VENV) .build build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis test-artifacts benchmarks/results.json mutants
