#!/usr/bin/env bash
# Issue 3's GPU checks in one run, on a machine with a CUDA GPU, from the repository root:
#   tools/gpu-session.sh [OUTDIR]        (OUTDIR: where the logs go; default out/gpu-session)
# It uses the machine's own python3 (PYTHON=... for another) and its PyTorch, without the project's
# virtual environment, make or network: the missing pure-Python packages come from .whl/ when it is there
# (tools/gpu-wheels.sh fetches them beforehand where PyPI can be reached).  Each step has a time limit,
# so a slow step cannot eat the others' time; everything is logged in OUTDIR.
#   1. as make gpu-check: the bench table on the GPU (engine vs per-point loop, FLOP-rate fraction, the
#      loss-landscapes peer) and the time of a 1000 x 1000 ConvNet grid; target under 5 minutes
#   2. as make gpu-check-imagenette, at 300 x 300 (points/s, from which the 1000 x 1000 time follows)
#   3. the amp test and the CUDA-path tests
# Not here: NCCL across processes (torchrun) needs two GPUs, and these machines have one; the gloo
# path is tested on the CPU (tests/compute/test_distributed.py) and the NCCL calls with stand-ins
# (tests/compute/test_gpu_paths.py).
set -u
out=${1:-out/gpu-session}
py=${PYTHON:-python3}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
if compgen -G ".whl/*.whl" >/dev/null; then
  "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
step() {    # step NAME SECONDS COMMAND...: run, log, and record the exit status and the time
  local name=$1 limit=$2; shift 2
  local t0=$SECONDS
  echo "== $name (limit ${limit} s): $*" | tee -a "$out/summary.txt"
  timeout "$limit" "$@" > "$out/$name.log" 2>&1
  local rc=$?
  tail -n 40 "$out/$name.log"
  echo "== $name: exit $rc after $((SECONDS - t0)) s" | tee -a "$out/summary.txt"
}
: > "$out/summary.txt"
{ nvidia-smi -L; "$py" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda,
  torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'NO CUDA')"; } 2>&1 | tee -a "$out/summary.txt"
# what `make gpu-check` and `make gpu-check-imagenette` run, without needing make there
step gpu-check 330 "$py" -m compute.bench --device cuda --rounds 3 --seconds 0.5 --grid 1000 \
  --json out/bench-gpu.json
step gpu-check-imagenette 200 "$py" -m compute.gpucheck scenes/imagenette_convnet.yaml \
  --json out/gpu-check-imagenette.json --set "landscape.grid.resolution=[300,300]"
step gpu-tests 180 "$py" -m pytest -q -p no:cacheprovider tests/compute/run/test_train.py tests/compute/test_gpu_paths.py -k "amp or gpu_paths"
cp out/bench-gpu.json out/gpu-check-imagenette.json "$out/" 2>/dev/null
cat "$out/summary.txt"
