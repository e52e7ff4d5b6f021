# Everything a researcher or CI runs; the first target that needs it creates .venv and installs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The real MNIST / Fashion-MNIST / CIFAR-10 files beside the checkout (see tests/conftest.py).
export GAN_JAX_SHARED_DATA ?= $(abspath ../shared/data)

.PHONY: install demo lint test bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

demo: install
	$(PY) -m gan_jax.main --config=experiments/demo_ring.py --workdir=runs/demo
	@echo "pictures: runs/demo/samples/ (steps 2500 and 5000), runs/demo/curves.png"

lint: install
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .

test: lint
	$(PY) -m pytest -n 2 --dist worksteal --durations=10 tests

$(VENV)/.bench: $(VENV)/.installed
	$(PY) -m pip install --quiet -e '.[bench]'
	touch $@

bench: $(VENV)/.bench
	$(PY) benchmarks/train_speed.py
	$(PY) benchmarks/train_speed.py --experiments=toy_ring,toy_ring+pac=4,toy_ring+unroll_steps=5 \
	    --json=benchmarks/train_speed_mode_collapse.json
	$(PY) benchmarks/sweep_throughput.py --trials=8 --experiment=toy_ring
	$(PY) benchmarks/sweep_throughput.py --trials=8 --experiment=dcgan --steps=10 --repeats=3 \
	    --json=benchmarks/sweep_throughput_dcgan.json
	$(PY) benchmarks/sweep_overhead.py --experiment=toy_ring --steps=300

clean:
	rm -rf runs/demo .pytest_cache
