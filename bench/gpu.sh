#!/usr/bin/env bash
# GPU verification, for sessions that are lent a CUDA machine (see ../shared/gpu/README.md). Two halves:
#
#   bench/gpu.sh pack           # here: self-contained publish WITHOUT libtorch + the PyTorch reference step -> artifacts/gpu.tar.xz,
#                               #       and Fashion-MNIST's training .gz files -> artifacts/fmnist/ (carry both: ~62 MB)
#   bench/gpu.sh run [PART...]  # there, from the repository root: unpacks, then runs the parts (default: all)
#       amp       mocov3 bench vs the PyTorch reference step, vit-small bs256, bf16 autocast on both sides
#       base      the same for vit-base bs256 (issue 17's targets: vit-small >= 2,500 img/s, vit-base >= 900 on an H200)
#       flat      ours alone, vit-small bs256 bf16: packed (flat) vs --per-parameter updates, with --profile (update phases)
#       pretrain  200-step `pretrain --amp` of vit-small on Fashion-MNIST upscaled to 224 px RGB on the GPU
#       tiny      `pretrain --amp` of vit-tiny-fmnist for MINUTES (default 2.5), then export --verify (the ONNX file comes back)
#       more      the other bench pairs: vit-small bs64 fp32, vit-tiny-fmnist bs1024 fp32/bf16, resnet18-fmnist bs1024 bf16
#
# Issue 17 point 4 in one go (about 5 minutes warm): bench/gpu.sh run amp base flat
# Every pair prints model FLOPs utilisation for both sides: the analytic step FLOPs of the preset (mocov3 bench's
# step_gflops_per_image, ~8x the backbone forward: ViT-S/16 9.2, ViT-B/16 35.1 GFLOP) times img/s over PEAK_TFLOPS
# (default 989, H100/H200 dense bf16; use the fp32/TF32 peak for fp32 pairs if that is the question).
# The CUDA libtorch comes from the machine's PyTorch (torch/lib), found through MOCOV3_LIBTORCH. Results are printed and,
# when $OUT is set (the device runner's output folder), written there as they come, so a timeout still returns them.
set -uo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
  pack)
    set -e
    rm -rf artifacts/gpu && mkdir -p artifacts/gpu artifacts/fmnist
    # Its own bin/obj (--artifacts-path), so the normal build with the CPU libtorch is left as it is.
    dotnet publish MoCoV3.Cli -c Release -r linux-x64 --self-contained -p:MoCoV3LibTorch=none --artifacts-path artifacts/gpu-build -o artifacts/gpu/mocov3 -v q -nologo
    cp "${MOCOV3_REFERENCE:-../shared/bench/mocov3_step_reference.py}" artifacts/gpu/
    # The presets are embedded in the toolkit; the tiny part edits one as a file.
    mkdir -p artifacts/gpu/mocov3/presets && cp models/*.json artifacts/gpu/mocov3/presets/
    # The device runner carries 64 MiB in all: leave out the native libraries these parts never load (image decoding,
    # ML.NET's LDA, the debugger's helpers); Fashion-MNIST is read from IDX files there.
    (cd artifacts/gpu/mocov3 && rm -f libSkiaSharp.so libLdaNative.so libLdaNative.so.dbg libmscordaccore.so libmscordbi.so createdump)
    tar -C artifacts -cf - gpu | xz -9 -T2 > artifacts/gpu.tar.xz
    # The training split only (the test split would push the carry over 64 MiB): probe the returned ONNX file here.
    cp /usr/share/datasets/fashion-mnist/train-*.gz artifacts/fmnist/
    du -ch artifacts/gpu.tar.xz artifacts/fmnist/* | tail -1
    ;;
  run)
    shift
    parts=${*:-amp base flat pretrain tiny more}
    out=${OUT:-artifacts/gpu-out}; mkdir -p "$out"
    log="$out/gpu.log"
    say() { echo "$*" | tee -a "$log"; }
    work=$(mktemp -d)
    tar -C "$work" -xJf artifacts/gpu.tar.xz
    cli="$work/gpu/mocov3/mocov3"; ref="$work/gpu/mocov3_step_reference.py"
    MOCOV3_LIBTORCH=$(python3 -c "import torch,os;print(os.path.dirname(torch.__file__)+'/lib')")
    export MOCOV3_LIBTORCH LD_LIBRARY_PATH="$MOCOV3_LIBTORCH:${LD_LIBRARY_PATH:-}"
    say "$(date -u +%FT%TZ) $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader)"
    say "torch $(python3 -c 'import torch;print(torch.__version__, torch.version.cuda)')"
    peak=${PEAK_TFLOPS:-989}
    pair() { # preset batch [--amp]
      local ours theirs
      ours=$("$cli" bench --preset "$1" --batch "$2" --steps 10 --device cuda --json --peak-tflops "$peak" ${3:-} 2>&1 | tail -1)
      theirs=$(python3 "$ref" --preset "$1" --batch "$2" --steps 10 --device cuda ${3:-} 2>&1 | tail -1)
      say "ours  $1 bs$2 ${3:-fp32}: $ours"
      say "torch $1 bs$2 ${3:-fp32}: $theirs"
      python3 - "$ours" "$theirs" "$peak" <<'PY' | tee -a "$log"
import json, sys
try:
    o, t = json.loads(sys.argv[1]), json.loads(sys.argv[2])
    mfu = ""
    if o.get("step_gflops_per_image"):
        peak = float(sys.argv[3])
        f = o["step_gflops_per_image"] * 1e9
        mfu = f"; MFU ours {100 * f * o['images_per_second'] / (peak * 1e12):.1f}% torch {100 * f * t['img_per_s'] / (peak * 1e12):.1f}% of {peak:g} TFLOP/s ({o['step_gflops_per_image']:.1f} GFLOP/img)"
    print(f"RATIO {o['preset']} bs{o['batch']} {o.get('amp')}: ours {o['images_per_second']:.1f} / torch {t['img_per_s']:.1f} img/s = {o['images_per_second'] / t['img_per_s']:.3f}{mfu}")
except Exception as e:
    print(f"RATIO unavailable: {e}")
PY
    }
    flat() { # ours alone, packed vs per-parameter updates, with the update phases timed
      local mode out
      for mode in "" --per-parameter; do
        out=$("$cli" bench --preset vit-small --batch 256 --steps 10 --device cuda --amp --profile --json --peak-tflops "$peak" $mode 2>&1 | tail -1)
        say "ours vit-small bs256 bf16 ${mode:-packed}: $out"
        python3 - "$out" <<'PY' | tee -a "$log"
import json, sys
try:
    o = json.loads(sys.argv[1]); p = o.get("profile") or {}
    print(f"RATIO flat {o['update']}: {o['images_per_second']:.1f} img/s, MFU {100 * (o.get('mfu') or 0):.1f}%; momentum update {1e3 * p.get('momentum_update_seconds', 0):.2f} ms, "
          f"zero_grad {1e3 * p.get('zero_grad_seconds', 0):.2f} ms, optimiser step {1e3 * p.get('optimizer_step_seconds', 0):.2f} ms, clipping {1e3 * p.get('clip_seconds', 0):.2f} ms, step {1e3 * o['step_seconds_median']:.1f} ms")
except Exception as e:
    print(f"RATIO flat unavailable: {e}")
PY
      done
    }
    for part in $parts; do
      case "$part" in
        amp) pair vit-small 256 --amp ;;
        base) pair vit-base 256 --amp ;;
        flat) flat ;;
        pretrain)
          timeout 240 "$cli" pretrain --preset vit-small --device cuda --amp --batch 256 --max-steps 200 --log-every 20 \
            --data artifacts/fmnist --out "$work/vit-small-amp" --save-every 1000 >"$out/pretrain-vit-small.txt" 2>&1
          say "pretrain vit-small --amp exit $?: $(tail -2 "$out/pretrain-vit-small.txt" | tr '\n' ' ')"
          cp "$work/vit-small-amp/metrics.csv" "$out/vit-small-amp-metrics.csv" 2>/dev/null ;;
        tiny)
          # The class token ++ mean patch token as the exported embedding (what the probe reads), as in vit-tiny-fmnist-quick.
          python3 -c "import json,sys; p=json.load(open(sys.argv[1])); p.update(name='vit-tiny-fmnist-clsmean', embedding='cls+mean'); json.dump(p, open(sys.argv[2],'w'))" \
            "$work/gpu/mocov3/presets/vit-tiny-fmnist.json" "$work/tiny-clsmean.json"
          timeout 300 "$cli" pretrain --preset "$work/tiny-clsmean.json" --device cuda --amp --batch 512 --minutes "${MINUTES:-2.5}" --log-every 50 \
            --data artifacts/fmnist --out "$work/tiny" >"$out/pretrain-tiny.txt" 2>&1
          say "pretrain vit-tiny-fmnist --amp exit $?: $(tail -2 "$out/pretrain-tiny.txt" | tr '\n' ' ')"
          cp "$work/tiny/metrics.csv" "$out/tiny-metrics.csv" 2>/dev/null
          cp "$work/tiny/config.json" "$out/tiny-config.json" 2>/dev/null
          "$cli" export --checkpoint "$work/tiny/checkpoint.ckpt" --out "$out/tiny-gpu.onnx" --verify 2>&1 | tail -3 | tee -a "$log" ;;
        more)
          pair vit-small 64
          pair vit-tiny-fmnist 1024 --amp
          pair vit-tiny-fmnist 1024
          pair resnet18-fmnist 1024 --amp ;;
        *) say "unknown part $part" ;;
      esac
    done
    grep RATIO "$log"
    ;;
  *) echo "usage: bench/gpu.sh pack | run [amp|base|flat|pretrain|tiny|more ...]"; exit 2 ;;
esac
