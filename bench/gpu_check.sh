#!/usr/bin/env bash
# The prepared GPU check: one command, at most 5 minutes, on a machine with a CUDA GPU and PyPI access.
#
#     bash bench/gpu_check.sh
#
#  1. Checks for a GPU (nvidia-smi, then torch.cuda.is_available()). Where there is none it exits 2
#     at once with one line, having installed and run nothing.
#  2. Installs what is missing, saying what: torch (the README's pin), the project with its test
#     extra (pip install -e ".[test]"), diffusers into bench/.env (bench/ddpm_vs_diffusers.py --setup).
#  3. The CUDA tests: pytest -m cuda (AMP fp16/bf16 with grad scaling, compile, channels-last).
#  4. NCCL: bench/_nccl_check.py under torchrun (the library's collectives through the NCCL + gloo
#     process group), then `genmodels train ddpm --precision bf16` under torchrun, both on
#     N = min(GPUs, 2) processes (with one GPU the second is torchrun's one-process path, which
#     joins no process group).
#     Then sharded sampling and evaluation (bench/_sharded_check.py): `sample` and `evaluate` of that
#     run on 1 process and under torchrun on N, the same images and metrics to float rounding.
#  5. 20-step `genmodels train ddpm --data mnist5k --device cuda` runs with --precision fp16,
#     --channels-last and --compile (bf16 is the torchrun run's; fp16 on a GPU without bf16).
#  6. Training and sampling against diffusers on the GPU, fp32 and bf16, through
#     `python -m bench --only ddpm_vs_diffusers_cuda,ddpm_vs_diffusers_cuda_bf16`, which writes the
#     figures into docs/benchmarks.md and docs/benchmarks.json (commit them).
# Each stage runs under `timeout`, limited by what is left of the whole budget; a stage that no
# longer fits is skipped and counts as failed; the slowest stage, compile, comes last. Each
# stage's seconds are printed, then a summary.
# Exit status: 0 all stages passed, 1 some failed, 2 no GPU.
# Environment: PYTHON (default python3), GPU_CHECK_BUDGET (seconds, default 300), GPU_CHECK_OUT
# (where the training runs go; default a new temporary folder).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
BUDGET=${GPU_CHECK_BUDGET:-300}
START=$SECONDS
export PIP_DISABLE_PIP_VERSION_CHECK=1

DONE="nothing installed, nothing run"
no_gpu() {
  echo "gpu_check: no CUDA GPU here ($1): $DONE" >&2
  exit 2
}

# --- 1. a GPU, before anything is installed ------------------------------------------------------
command -v nvidia-smi >/dev/null 2>&1 || no_gpu "nvidia-smi is not on PATH"
SMI=$(timeout 30 nvidia-smi -L 2>/dev/null || true)
grep -q '^GPU ' <<<"$SMI" || no_gpu "nvidia-smi lists no GPU"

# prints "<CUDA devices> <bf16 supported: 1|0> <name of GPU 0>"; exit 1: torch sees no CUDA, 3: no torch
cuda_probe() {
  timeout 60 "$PY" - <<'EOF'
import sys
try:
    import torch
except ImportError:
    sys.exit(3)
if not torch.cuda.is_available():
    print(f"torch {torch.__version__} sees none: a CPU build, a driver problem, or CUDA_VISIBLE_DEVICES hides them")
    sys.exit(1)
print(torch.cuda.device_count(), int(torch.cuda.is_bf16_supported()), torch.cuda.get_device_name(0))
EOF
}
probe_rc=0
PROBE=$(cuda_probe) || probe_rc=$?
[ "$probe_rc" -eq 1 ] && no_gpu "$PROBE"
[ "$probe_rc" -eq 0 ] || [ "$probe_rc" -eq 3 ] || no_gpu "the torch check failed (exit $probe_rc)"

# --- the stages -----------------------------------------------------------------------------------
SUMMARY=()
FAILED=0
LAST_RC=0

# stage NAME CAP COMMAND...: COMMAND under `timeout`, for at most CAP seconds and what is left of the budget
stage() {
  local name=$1 cap=$2
  shift 2
  local left=$((BUDGET - (SECONDS - START)))
  left=$((left - 10))                   # room for timeout's --kill-after
  local limit=$((cap < left ? cap : left))
  if [ "$limit" -lt 10 ]; then
    echo "== $name: skipped, the ${BUDGET} s budget is spent"
    SUMMARY+=("$(printf '%-40s %-28s' "$name" "skipped (budget spent)")")
    FAILED=1
    LAST_RC=124
    return 0
  fi
  echo "== $name (at most ${limit} s): $*"
  local t0=$SECONDS
  LAST_RC=0
  timeout --kill-after=10 "$limit" "$@" || LAST_RC=$?
  local took=$((SECONDS - t0)) status=ok
  if [ "$LAST_RC" -eq 124 ] || [ "$LAST_RC" -eq 137 ]; then
    status="timed out after ${limit} s"
  elif [ "$LAST_RC" -ne 0 ]; then
    status="failed (exit $LAST_RC)"
  fi
  [ "$status" = ok ] || FAILED=1
  echo "== $name: $status, ${took} s"
  SUMMARY+=("$(printf '%-40s %-28s %4d s' "$name" "$status" "$took")")
}

finish() {
  echo
  echo "gpu_check summary (${GPU_NAME:-GPU}):"
  printf '  %s\n' "${SUMMARY[@]}"
  echo "  total $((SECONDS - START)) s of the ${BUDGET} s budget"
  if [ "$FAILED" -eq 0 ]; then
    echo "gpu_check: all stages passed; the GPU figures are in docs/benchmarks.md and docs/benchmarks.json"
  fi
  exit "$FAILED"
}

have() { "$PY" -c "$1" >/dev/null 2>&1; }

# --- 2. what is missing ---------------------------------------------------------------------------
if [ "$probe_rc" -eq 3 ]; then
  echo "torch is not installed: installing the README's pin (PyPI's Linux wheel is a CUDA build)"
  stage "install torch" 150 "$PY" -m pip install torch==2.13.0
  [ "$LAST_RC" -eq 0 ] || finish
  DONE="only torch installed, nothing run"
  probe_rc=0
  PROBE=$(cuda_probe) || probe_rc=$?
  [ "$probe_rc" -eq 0 ] || no_gpu "${PROBE:-the torch check failed (exit $probe_rc)}"
fi
read -r GPUS BF16 GPU_NAME <<<"$PROBE"
echo "GPU: $GPU_NAME ($GPUS visible to torch; bf16: $([ "$BF16" = 1 ] && echo yes || echo no))"

# this checkout's genmodels, importable with what the tests import
if have "import pathlib, sys, genmodels, pytest, mlxtend, sklearn
sys.exit(not pathlib.Path(genmodels.__file__).resolve().is_relative_to(pathlib.Path('src').resolve()))"; then
  echo "already installed: genmodels (this checkout) with the test extra"
else
  stage "install genmodels[test]" 150 "$PY" -m pip install -e ".[test]"
  [ "$LAST_RC" -eq 0 ] || finish
fi
if have "import diffusers" || { [ -x bench/.env/bin/python ] && bench/.env/bin/python -c "import diffusers" 2>/dev/null; }; then
  echo "already installed: diffusers (for bench/ddpm_vs_diffusers.py)"
else
  stage "install diffusers (bench/.env)" 90 "$PY" bench/ddpm_vs_diffusers.py --setup
  [ "$LAST_RC" -eq 0 ] || finish
fi

# --- 3.-6. the checks -----------------------------------------------------------------------------
BASE=${GPU_CHECK_OUT:-${TMPDIR:-/tmp}}
mkdir -p "$BASE"
OUT=$(mktemp -d "$BASE/gpu_check.XXXXXX")
echo "training runs go to $OUT"
NPROC=$((GPUS >= 2 ? 2 : 1))
AMP=$([ "$BF16" = 1 ] && echo bf16 || echo fp16)     # the torchrun, channels-last and compile runs' precision
TRAIN=(-m genmodels train ddpm --data mnist5k --steps 20 --batch-size 64 --device cuda --no-progress
       --no-report --no-tensorboard --sample-every 0)
TORCHRUN=(env -u RANK -u WORLD_SIZE -u LOCAL_RANK -u MASTER_ADDR -u MASTER_PORT
          "$PY" -m torch.distributed.run --standalone --nproc_per_node "$NPROC")

stage "CUDA tests (pytest -m cuda)" 120 "$PY" -m pytest -m cuda -rs tests
stage "NCCL collectives ($NPROC process(es))" 60 "${TORCHRUN[@]}" bench/_nccl_check.py
stage "torchrun train $AMP ($NPROC process(es))" 60 "${TORCHRUN[@]}" "${TRAIN[@]}" --precision "$AMP" \
  --out "$OUT/torchrun-$AMP"
stage "sharded sample + evaluate ($NPROC process(es))" 90 "$PY" bench/_sharded_check.py "$OUT/torchrun-$AMP" "$NPROC"
stage "train --precision fp16" 45 "$PY" "${TRAIN[@]}" --precision fp16 --out "$OUT/fp16"
stage "train --channels-last ($AMP)" 45 "$PY" "${TRAIN[@]}" --precision "$AMP" --channels-last --out "$OUT/channels-last"
stage "bench vs diffusers (cuda, fp32+bf16)" 150 "$PY" -m bench --only ddpm_vs_diffusers_cuda,ddpm_vs_diffusers_cuda_bf16
stage "train --compile ($AMP)" 120 "$PY" "${TRAIN[@]}" --precision "$AMP" --compile --out "$OUT/compile"
finish
