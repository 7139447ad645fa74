#!/usr/bin/env bash
# The GPU checks of issue 14 (point 6), as one run on a lent GPU machine (the `device` tool's
# nvidia-h200: torch in its own python3, no network). From the repository root, there:
#
#     bash bench/gpu/run.sh          # about 10 minutes on an H200; everything goes to $OUT
#
# Here, first: `make gpu-wheels` (the grader's own dependencies the machine lacks, as wheels in
# .gpu-wheels/, which the run carries). What it does, each step timed and logged to $OUT/log:
#
#   1. the GPU's name and the machine, then the gpu-marked tests with GRADER_REQUIRE_GPU=1;
#   2. cifar10-cnn's examples graded on the GPU with --per-gpu 1, then --per-gpu 4 (the same
#      batch, --force): throughput of each and their ratio (goal: at least 2.5x with 4 per GPU);
#   3. `bench/train_speed.py` on the GPU (goal: the harness trainer at least 5x a DataLoader loop
#      on the Table-2 CIFAR network);
#   4. a submission that asks for more GPU memory than there is, graded: its status must be gpu-oom.
#
# Results: $OUT/summary.json (what the goals need), $OUT/log, and bench/results/gpu-<name>.json.
set -uo pipefail
OUT=${OUT:-bench/results/gpu-run}
mkdir -p "$OUT"
exec > >(tee "$OUT/log") 2>&1
PY=${PYTHON:-python3}
WORK=$(mktemp -d)

step() { echo; echo "== $(date -u +%H:%M:%S) $*"; }

step "environment"
$PY -m venv --system-site-packages "$WORK/venv"
"$WORK/venv/bin/pip" install -q --no-index --find-links .gpu-wheels pydantic nbclient nbformat ipykernel copydetect \
    || { echo "missing wheels: run 'make gpu-wheels' here first and carry .gpu-wheels"; exit 2; }
PY="$WORK/venv/bin/python"
export PYTHONPATH=$PWD
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
GPU=$($PY -c "import torch; print(torch.cuda.get_device_name(0).replace(' ', '-'))")
$PY -c "import torch, grader; print('torch', torch.__version__, 'grader', grader.__version__)"

step "gpu-marked tests"
GRADER_REQUIRE_GPU=1 timeout 120 $PY -m pytest -q -m gpu -p no:cacheprovider tests 2>&1 | tail -5

grade_examples() {  # $1: per-gpu; prints seconds
    local start end
    start=$(date +%s.%N)
    timeout 300 $PY -m grader grade cifar10-cnn submissions/cifar10-cnn --out "$WORK/cifar-$1" --profile quick \
        --gpus 0 --per-gpu "$1" --force --quiet >"$OUT/cifar-per-gpu-$1.txt" 2>&1
    end=$(date +%s.%N)
    echo "$end - $start" | bc
}

step "cifar10-cnn examples, 1 per GPU"
ONE=$(grade_examples 1); echo "seconds: $ONE"
step "cifar10-cnn examples, 4 per GPU"
FOUR=$(grade_examples 4); echo "seconds: $FOUR"
cp "$WORK/cifar-4/summary.json" "$OUT/cifar-per-gpu-4-summary.json" 2>/dev/null

step "train_speed on the GPU"
timeout 240 $PY bench/train_speed.py --out "bench/results/gpu-$GPU.json" && cp "bench/results/gpu-$GPU.json" "$OUT/"

step "a real CUDA out-of-memory"
mkdir -p "$WORK/oom"
printf 'import torch\nfrom torch import nn\ndef make_net(n_in, n_out):\n    return nn.Linear(n_in, n_out)\n%s\n' \
    "hog = torch.empty(1024 * 2**30, dtype=torch.uint8, device='cuda')  # 1 TiB" > "$WORK/oom/greedy.py"
timeout 120 $PY -m grader grade tests/fixtures/tiny/rubric.yaml "$WORK/oom" --out "$WORK/oom-out" --gpus 0 --quiet
OOM=$($PY -c "import json; print(json.load(open('$WORK/oom-out/summary.json'))[0]['status'])")
echo "status: $OOM"

$PY - "$OUT/summary.json" "$GPU" "$ONE" "$FOUR" "$OOM" <<'PYEOF'
import json, sys
path, gpu, one, four, oom = sys.argv[1:]
one, four = float(one), float(four)
summary = {"gpu": gpu, "cifar10_examples_seconds": {"per_gpu_1": one, "per_gpu_4": four},
           "throughput_ratio_4_over_1": round(one / four, 2), "goal_ratio": 2.5, "oom_status": oom,
           "oom_ok": oom == "gpu-oom"}
json.dump(summary, open(path, "w"), indent=2)
print(json.dumps(summary, indent=2))
PYEOF
rm -rf "$WORK"
