#!/usr/bin/env bash
# Crash test of `mocov3 pretrain`: SIGKILLs a small CPU run KILLS times (alternately at a random moment and while a
# checkpoint is being written), resumes it each time with --resume auto, and checks that
#   - every resume starts from a complete checkpoint (it is loaded strictly: a torn file would fail the resume),
#   - no checkpoint.ckpt.tmp is left behind at the end,
#   - metrics.csv equals the one of an uninterrupted run with the same seed, row for row, except the timing columns
#     (img_per_s, elapsed_s).
# Usage: scripts/crash-test.sh [KILLS] [STEPS]      (defaults: 10 kills, 150 steps; a few minutes on 2 cores)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
kills=${1:-10}
steps=${2:-150}

dotnet build "$root/MoCoV3.Cli" -c Release -v quiet -nologo >/dev/null
mocov3=(dotnet "$root/MoCoV3.Cli/bin/Release/net10.0/mocov3.dll")
work=$(mktemp -d "${TMPDIR:-/tmp}/mocov3-crash.XXXXXX")
# A small ViT with 1024-wide heads: steps take milliseconds, a checkpoint ~20 MB, so kills land in writes too.
cat >"$work/crash.json" <<'JSON'
{ "name": "crash", "arch": "vit", "image_size": 28, "channels": 1, "patch_size": 7, "embed_dim": 32, "depth": 2,
  "heads": 2, "hidden_dim": 1024, "out_dim": 64, "batch": 32, "epochs": 1, "warmup_epochs": 0.5, "base_lr": 1e-3,
  "mean": [0.286], "std": [0.353] }
JSON
args=(pretrain --preset "$work/crash.json" --limit 1024 --max-steps "$steps" --log-every 1 --save-every 3 --seed 7 --threads 1)

echo "uninterrupted run ($steps steps) in $work/straight"
"${mocov3[@]}" "${args[@]}" --out "$work/straight" >"$work/straight.log" 2>&1

run="$work/killed"
mkdir -p "$run"
# The step of the last row of metrics.csv (0 when there is none yet).
last_step() { local s; s=$(tail -n 1 "$run/metrics.csv" 2>/dev/null | cut -d, -f1); [[ "$s" =~ ^[0-9]+$ ]] && echo "$s" || echo 0; }

for ((i = 1; i <= kills; i++)); do
  before=$(last_step)
  "${mocov3[@]}" "${args[@]}" --out "$run" --resume auto >"$work/run$i.log" 2>&1 &
  pid=$!
  if ((i % 2 == 0)); then
    # Wait for a checkpoint write of this run to start (its temporary file appears after a new step), then kill inside it.
    # (A .tmp left by the previous kill does not count: the run removes it when it starts.)
    for ((t = 0; t < 200000; t++)); do
      (($(last_step) > before)) && [ -e "$run/checkpoint.ckpt.tmp" ] && break
      kill -0 "$pid" 2>/dev/null || break
    done
    where="during a checkpoint write"
  else
    # After 1 to 12 more logged steps (a random number), plus a random part of a step.
    target=$((before + 1 + RANDOM % 12))
    while kill -0 "$pid" 2>/dev/null && (($(last_step) < target)); do sleep 0.01; done
    sleep "0.0$((RANDOM % 10))"
    where="at a random moment"
  fi
  if ! kill -0 "$pid" 2>/dev/null; then
    wait "$pid" || true
    echo "kill $i: the run had already finished; use more STEPS"; exit 1
  fi
  tmp_seen=no; [ -e "$run/checkpoint.ckpt.tmp" ] && tmp_seen=yes
  kill -KILL "$pid"; wait "$pid" 2>/dev/null || true
  resumed=$(grep -o 'resumed from .* at step [0-9]*' "$work/run$i.log" | grep -o '[0-9]*$' || echo 0)
  echo "kill $i $where: resumed at step ${resumed:-0}, killed after step $(last_step), checkpoint.ckpt.tmp present: $tmp_seen"
done

"${mocov3[@]}" "${args[@]}" --out "$run" --resume auto >"$work/final.log" 2>&1 || { cat "$work/final.log"; echo "FAIL: the final resume failed"; exit 1; }
echo "final resume: $(grep -o 'resumed from .* at step [0-9]*' "$work/final.log" || echo 'started fresh')"

fail=0
if [ -e "$run/checkpoint.ckpt.tmp" ]; then echo "FAIL: checkpoint.ckpt.tmp left behind"; fail=1; fi
# Columns 7 and 8 are img_per_s and elapsed_s.
if diff <(cut -d, -f1-6,9- "$work/straight/metrics.csv") <(cut -d, -f1-6,9- "$run/metrics.csv") >"$work/metrics.diff"; then
  echo "metrics.csv: $(($(wc -l <"$run/metrics.csv") - 1)) rows, identical to the uninterrupted run (timing columns aside)"
else
  echo "FAIL: metrics.csv differs from the uninterrupted run:"; head -20 "$work/metrics.diff"; fail=1
fi
if ((fail == 0)); then echo "PASS: $kills kills survived"; rm -rf "$work"; else echo "kept $work"; fi
exit $fail
