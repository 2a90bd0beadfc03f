#!/usr/bin/env bash
# Side-by-side speed of one full MoCo v3 step: MoCoV3.NET (`mocov3 bench`) and the PyTorch reference step
# (../shared/bench/mocov3_step_reference.py, or $MOCOV3_REFERENCE), same preset, batch and thread count,
# run back to back. Prints a table with img/s and the ratio.
#
#   bench/run.sh                       # CPU presets: vit-tiny-fmnist 256, resnet18-fmnist 256, vit-small 32
#   bench/run.sh vit-tiny-fmnist:256   # chosen preset:batch pairs
#   DEVICE=cuda AMP=1 bench/run.sh vit-small:256
#   UNTUNED=1 bench/run.sh             # also ours without the CPU tuning (MOCOV3_MKL_AMD=0 MOCOV3_MALLOC=system)
set -euo pipefail
cd "$(dirname "$0")/.."
ref=${MOCOV3_REFERENCE:-../shared/bench/mocov3_step_reference.py}
device=${DEVICE:-cpu}
steps=${STEPS:-6}
threads=${THREADS:-$(nproc)}
pairs=("$@")
[ ${#pairs[@]} -gt 0 ] || pairs=(vit-tiny-fmnist:256 resnet18-fmnist:256 vit-small:32)

# Debian's torch takes its BLAS from the libblas.so.3 alternative: without OpenBLAS that is netlib's reference BLAS,
# ~10x slower (a 1024^2 matmul 0.35 s against 0.04 s on 2026-12-02), so the reference step would be timed on it.
if [ "$device" = cpu ] && { ! /usr/bin/python3 -c "import torch, torchvision" 2>/dev/null || ! dpkg -s libopenblas0-openmp >/dev/null 2>&1; }; then
  echo "installing Debian's python3-torch for the reference step" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-torch python3-torchvision libopenblas0-openmp >/dev/null
fi
dotnet build MoCoV3.Cli -c Release -v q -nologo >/dev/null
cli=MoCoV3.Cli/bin/Release/net10.0/mocov3
py=/usr/bin/python3; [ -x "$py" ] || py=python3
amp=(); [ "${AMP:-0}" = 1 ] && amp=(--amp)

ours_bench() {
  "$cli" bench --preset "$preset" --batch "$batch" --steps "$steps" --device "$device" --threads "$threads" --json "${amp[@]}" \
    | python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["images_per_second"])'
}
printf '%-18s %6s %12s %12s %7s' preset batch "ours img/s" "torch img/s" ratio
[ "${UNTUNED:-0}" = 1 ] && printf ' %14s %7s' "untuned img/s" ratio
printf '\n'
for pair in "${pairs[@]}"; do
  preset=${pair%%:*}; batch=${pair##*:}
  ours=$(ours_bench)
  theirs=$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$py" "$ref" --preset "$preset" --batch "$batch" --steps "$steps" \
           --device "$device" --threads "$threads" "${amp[@]}" | python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["img_per_s"])')
  printf '%-18s %6s %12.1f %12.1f %7.2f' "$preset" "$batch" "$ours" "$theirs" "$(python3 -c "print($ours/$theirs)")"
  if [ "${UNTUNED:-0}" = 1 ]; then
    untuned=$(MOCOV3_MKL_AMD=0 MOCOV3_MALLOC=system ours_bench)
    printf ' %14.1f %7.2f' "$untuned" "$(python3 -c "print($untuned/$theirs)")"
  fi
  printf '\n'
done
