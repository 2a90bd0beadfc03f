#!/usr/bin/env bash
# ONNX Runtime inference of an exported encoder against eager PyTorch (bench/vit_inference_reference.py, Debian's
# python3-torch) and TorchSharp, same architecture, batch and threads, back to back.
#
#   bench/onnx.sh                 # vit-small, batch 32, all cores
#   PRESET=vit-tiny-fmnist BATCH=256 bench/onnx.sh
set -euo pipefail
cd "$(dirname "$0")/.."
preset=${PRESET:-vit-small}; batch=${BATCH:-32}; batches=${BATCHES:-6}; threads=${THREADS:-$(nproc)}
# OpenBLAS too: without it Debian's torch runs on netlib's reference BLAS (bench/run.sh).
if ! /usr/bin/python3 -c "import torch" 2>/dev/null || ! dpkg -s libopenblas0-openmp >/dev/null 2>&1; then
  echo "installing Debian's python3-torch for the reference" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-torch libopenblas0-openmp >/dev/null
fi
dotnet build MoCoV3.Cli -c Release -v q -nologo >/dev/null
cli=MoCoV3.Cli/bin/Release/net10.0/mocov3
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
# Near-random weights (speed does not depend on them): one pretraining step on two images, then export.
"$cli" pretrain --preset "$preset" --max-steps 1 --batch 2 --limit 2 --out "$work/run" >/dev/null
"$cli" export --checkpoint "$work/run/checkpoint.ckpt" --out "$work/$preset.onnx" >/dev/null
"$cli" bench --onnx "$work/$preset.onnx" --batch "$batch" --steps "$batches" --threads "$threads" --quantize int8
env -u OPENBLAS_CORETYPE /usr/bin/python3 bench/vit_inference_reference.py --preset "$preset" --batch "$batch" \
  --batches "$batches" --threads "$threads"
