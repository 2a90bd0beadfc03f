#!/usr/bin/env bash
# The main job (`mocov3 quickstart`): MoCo v3 pretraining on Fashion-MNIST for a time budget (MINUTES, default 30),
# export to ONNX, verify, and an ML.NET linear probe against raw pixels and a random-init encoder.
# Extra arguments go to `mocov3 quickstart` (e.g. --minutes 30, --out DIR).
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -d /usr/share/datasets/fashion-mnist ]; then
  if [ "$(id -u)" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist >/dev/null
  else
    echo "Fashion-MNIST is missing: run 'sudo apt-get install dataset-fashion-mnist', or pass --data FOLDER" >&2
  fi
fi
dotnet build MoCoV3.Cli -c Release -v q -nologo
exec MoCoV3.Cli/bin/Release/net10.0/mocov3 quickstart --minutes "${MINUTES:-30}" "$@"
