#!/usr/bin/env bash
# Every measurement that the open issues wait for on an accelerator, sized for a device session
# (15 minutes of one H200, at most 10 for one command): two commands, each under 9 minutes.
#
#   bash benchmarks/on_accelerator.sh throughput rate sngan     # about 7.5 minutes at most
#   bash benchmarks/on_accelerator.sh cgan_pd grid              # about 8 minutes at most
#
#   throughput  issue 18: 8 vectorised dcgan trials against 8 one after another (target 5x)
#   rate        issue 16: SNGAN and the projection GAN's steps/s and share of the matmul rate
#   sngan       issue 16: SNGAN on CIFAR-10 for 3,000 steps (loss curves, sample grids)
#   cgan_pd     issue 16: the projection GAN likewise
#   grid        issue 17: PacGAN Table 1 (grid), 10 seeds per row, at 40,000 of 400,000 steps
#
# Each item is cut at its own time limit (a cut training run checkpoints and keeps what it
# logged), so one slow item leaves the others their time. Results go to $OUT (default
# runs/accelerator): log.txt and results.tar.gz (the benchmarks' JSON, each run's metrics.jsonl,
# curves and last sample grid, the table), 2 files, as the device tool brings back.
#
# Before the first run, in this checkout:
#   echo /.whl/ >> .git/info/exclude; echo /.devdata/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 -d .whl \
#       ml_collections==1.1.0                      # the GPU image lacks it (KINDS.md)
#   mkdir -p .devdata && cp ../shared/data/cifar10/test.npz .devdata/cifar10_test.npz
# then the device tool: run(command="bash benchmarks/on_accelerator.sh throughput rate sngan",
# carry=[".whl", ".devdata"], timeout_s=600), and the same for "cgan_pd grid".
# SCALE=small runs each item for a few steps at small widths: a smoke test on a CPU.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # gan_jax, uninstalled, for benchmarks/*.py
[ $# -gt 0 ] || set -- help
for one in "$@"; do
  case $one in
    throughput | rate | sngan | cgan_pd | grid) ;;
    *) echo "usage: bash $0 ITEM... with ITEMs of:" >&2; sed -n 8,12p "$0" >&2; exit 2 ;;
  esac
done
OUT="${OUT:-runs/accelerator}"
RUNS="$OUT/work"
mkdir -p "$RUNS"
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl && export PYTHONPATH="/tmp/site:${PYTHONPATH:-}"
fi
PY="${PYTHON:-python3}"
CIFAR="${CIFAR:-.devdata/cifar10_test.npz}"
export PYTHONUNBUFFERED=1
if [ "${SCALE:-full}" = small ]; then
  THROUGHPUT=(--trials=2 --steps=2 --repeats=1)
  RATE=(--batch=8 --seconds=1 --repeats=1 --matmul_size=512)
  TRAIN=(--config.train.num_steps=4 --config.model.ngf=16 --config.model.ndf=16
    --config.sample_every=2 --config.log_every=2)
  GRID=(--config.train.num_steps=20)
else
  THROUGHPUT=(--trials=8 --steps=10 --repeats=3)
  RATE=(--seconds=3 --repeats=3)
  TRAIN=(--config.train.num_steps=3000 --config.sample_every=1000)
  GRID=(--config.train.num_steps=40000)
fi

item() {  # item SECONDS NAME COMMAND...: one measurement, cut at SECONDS, its output in log.txt
  local seconds=$1 name=$2
  shift 2
  echo "== $name at $(date -u +%T), at most ${seconds} s: $*" >>"$OUT/log.txt"
  local start=$SECONDS
  timeout "$seconds" "$@" >>"$OUT/log.txt" 2>&1
  echo "== $name: exit $?, $((SECONDS - start)) s" | tee -a "$OUT/log.txt"
}

run_item() {
  case $1 in
    throughput) item 90 throughput "$PY" benchmarks/sweep_throughput.py --experiment=dcgan \
      "${THROUGHPUT[@]}" --json="$RUNS/sweep_throughput_dcgan.json" ;;
    rate)
      for e in sngan_cifar10 cgan_pd_cifar10; do
        item 60 "rate $e" "$PY" benchmarks/accelerator.py --experiment=$e "${RATE[@]}" \
          --json="$RUNS/accelerator_$e.json"
      done ;;
    sngan | cgan_pd)
      local e=${1}_cifar10
      item 240 "$e" "$PY" -m gan_jax.main --config=experiments/$e.py --workdir="$RUNS/$e" \
        --config.data.path="$CIFAR" "${TRAIN[@]}" ;;
    grid) item 240 grid "$PY" -m gan_jax.sweep --config=experiments/tables/pacgan_table1_grid.py \
      --workdir="$RUNS/grid" --vectorize=true "${GRID[@]}" ;;
  esac
}

nvidia-smi --query-gpu=name,driver_version --format=csv,noheader >>"$OUT/log.txt" 2>&1
"$PY" -c "import jax; print('jax', jax.__version__, jax.devices())" >>"$OUT/log.txt" 2>&1
for one in "$@"; do run_item "$one"; done
# What comes back: the numbers, curves and last pictures, not the checkpoints.
(cd "$RUNS" && find . \( -name '*.json' -o -name '*.jsonl' -o -name '*.md' -o -name 'curves.png' \
  -o -name 'sweep.png' \) -not -path '*/checkpoints/*' -print
  for d in */; do ls -d "$d"samples/*.png 2>/dev/null | tail -n 1; done) |
  tar -czf "$OUT/results.tar.gz" -C "$RUNS" -T -
rm -rf "$RUNS"
ls -l "$OUT"
