#!/usr/bin/env bash
# The main job: MoCo v3 pretraining of vit-tiny-fmnist on Fashion-MNIST for a time budget (MINUTES, default 10).
# Extra arguments go to `mocov3 pretrain`.
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
exec MoCoV3.Cli/bin/Release/net10.0/mocov3 pretrain --preset vit-tiny-fmnist --minutes "${MINUTES:-10}" --out runs/quickstart "$@"
