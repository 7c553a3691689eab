# The venv is created on first use so `make run` and `make test` work on a fresh clone.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench mutate clean venv

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

test: $(STAMP) lint
	$(BIN)/python -m pytest -q

bench: $(STAMP)
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
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis test-artifacts benchmarks/results.json mutants
