#!/usr/bin/env bash
# GPU verification in two halves, for sessions that are lent a CUDA machine (see ../shared/gpu/README.md).
#
#   bench/gpu.sh pack     # here: self-contained publish WITHOUT libtorch + the PyTorch reference step -> artifacts/gpu.tar.xz
#   bench/gpu.sh run      # there (after unpacking): mocov3 bench on CUDA over PyTorch's libtorch, then the reference, side by side
#
# The CUDA libtorch comes from the machine's PyTorch (torch/lib), found through MOCOV3_LIBTORCH.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
  pack)
    rm -rf artifacts/gpu && mkdir -p artifacts/gpu
    dotnet publish MoCoV3.Cli -c Release -r linux-x64 --self-contained -p:MoCoV3LibTorch=none -o artifacts/gpu/mocov3 -v q -nologo
    cp "${MOCOV3_REFERENCE:-../shared/bench/mocov3_step_reference.py}" artifacts/gpu/
    cp bench/gpu.sh artifacts/gpu/
    tar -C artifacts -cJf artifacts/gpu.tar.xz gpu
    ls -la artifacts/gpu.tar.xz
    ;;
  run)
    here=$(dirname "$0")
    [ -x "$here/mocov3/mocov3" ] || { echo "run this from the unpacked gpu/ folder (bench/gpu.sh pack makes it)"; exit 2; }
    MOCOV3_LIBTORCH=$(python3 -c "import torch,os;print(os.path.dirname(torch.__file__)+'/lib')")
    export MOCOV3_LIBTORCH LD_LIBRARY_PATH="$MOCOV3_LIBTORCH:${LD_LIBRARY_PATH:-}"
    nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
    for pair in vit-tiny-fmnist:1024 resnet18-fmnist:1024 vit-small:64 vit-small:256; do
      preset=${pair%%:*}; batch=${pair##*:}
      ours=$("$here/mocov3/mocov3" bench --preset "$preset" --batch "$batch" --steps 10 --device cuda --json)
      ref=$(python3 "$here/mocov3_step_reference.py" --preset "$preset" --batch "$batch" --steps 10 --device cuda)
      refamp=$(python3 "$here/mocov3_step_reference.py" --preset "$preset" --batch "$batch" --steps 10 --device cuda --amp)
      echo "$preset bs$batch ours-fp32: $ours"
      echo "$preset bs$batch torch-fp32: $ref"
      echo "$preset bs$batch torch-amp: $refamp"
    done
    ;;
  *) echo "usage: bench/gpu.sh pack|run"; exit 2 ;;
esac
