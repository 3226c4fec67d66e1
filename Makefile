# jaxml: two commands for a newcomer, `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
OUT    := out

.PHONY: demo test bench docs clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# One stamp per set of extras, remade when pyproject.toml changes.
$(VENV)/.stamp-%: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e ".[$*]"
	touch $@

# `make demo` runs the quick tour (every chapter, small sizes); `make demo FULL=1` the full one.
demo: $(VENV)/.stamp-examples
	MPLBACKEND=Agg $(PY) examples/tour.py --out $(OUT) $(if $(FULL),,--quick)
	@echo "figures and summary in $(OUT)/ (open $(OUT)/index.html, or read $(OUT)/summary.md)"

test: $(VENV)/.stamp-test
	ulimit -s 65536 2>/dev/null || true; MPLBACKEND=Agg $(PY) -m pytest -q -n 2 --dist loadfile --durations=30

bench: $(VENV)/.stamp-bench
	MPLBACKEND=Agg $(PY) benchmarks/run_all.py --out $(OUT)/bench

# The API reference (mkdocs-material + mkdocstrings), strict: a broken reference fails.
docs: $(VENV)/.stamp-docs
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --site-dir $(OUT)/docs
	@echo "API reference in $(OUT)/docs/index.html"

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .hypothesis
