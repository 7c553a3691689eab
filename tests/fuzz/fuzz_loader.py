"""libFuzzer harness for the scenario loader (atheris): any exception but ScenarioError is a crash.

Run by ``tests/test_loader_fuzz.py`` for a fixed number of runs; by hand, e.g.::

    mkdir -p /tmp/corpus && cp scenarios/*.yaml /tmp/corpus
    .venv/bin/python tests/fuzz/fuzz_loader.py /tmp/corpus -runs=100000 -seed=1

The input bytes are decoded the way a file would be (UTF-8; invalid bytes become lone
surrogates, which the loader must report, not choke on). A ScenarioError must also point
inside the text, as DESIGN §8 asks of every error.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["simulator"]):
    from simulator.scenario.errors import ScenarioError
    from simulator.scenario.loader import load_scenario_text


def test_one_input(data: bytes) -> None:
    text = data.decode("utf-8", errors="surrogateescape")
    try:
        load_scenario_text(text, "fuzz.yaml")
    except ScenarioError as e:
        if not (1 <= e.line <= len(text.splitlines()) + 1 and e.column >= 1):
            raise AssertionError(f"error outside the text: {e}") from None


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
