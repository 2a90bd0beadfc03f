#!/usr/bin/env bash
# What an app pays to embed images (bench/InferenceBench): ImageEncoder single-image latency (p50/p99) and batched
# throughput, and ML.NET's ApplyImageEncoder against decode + ApplyOnnxModel on the same encoder, images and threads.
#   bench/inference.sh                                  # vit-tiny-fmnist(-quick) on Fashion-MNIST PNGs, vit-small on 500x375 JPEGs
#   bench/inference.sh --encoder runs/quickstart/encoder.onnx --threads 2
set -euo pipefail
cd "$(dirname "$0")/.."
dotnet build bench/InferenceBench -c Release -v q -nologo >/dev/null
run() { dotnet bench/InferenceBench/bin/Release/net10.0/InferenceBench.dll "$@" 2>&1 | grep -v NNPACK; }
if [ $# -gt 0 ]; then run "$@"; exit; fi
run --preset vit-tiny-fmnist-quick --count 2048 --threads "${THREADS:-2}"
run --preset vit-tiny-fmnist --count 1024 --threads "${THREADS:-2}"
run --preset vit-small --count 128 --single 50 --threads "${THREADS:-2}"
