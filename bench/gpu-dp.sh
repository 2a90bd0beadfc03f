#!/usr/bin/env bash
# Data-parallel training on CUDA over NCCL, on one GPU machine, in one go (issue 15). NOT YET RUN ON A GPU: written and
# unit-tested on a CPU-only machine. Two halves, like bench/gpu.sh (which this reuses for the publish):
#
#   bench/gpu-dp.sh pack   # here: bench/gpu.sh pack -> artifacts/gpu.tar.xz (self-contained, no libtorch) + artifacts/fmnist/
#   bench/gpu-dp.sh run    # there, from the repository root (carry artifacts/gpu.tar.xz and artifacts/fmnist); about 6 minutes
#
# Every multi-rank case puts 2 ranks on the SAME GPU (cuda:0): NCCL refuses two ranks of one communicator on one GPU of one
# host, so each rank gets its own NCCL_HOSTID and they talk over loopback sockets. That checks correctness; the bandwidth
# measured that way is the socket transport's, not NVLink's (one rank per GPU would use P2P/NVLink).
#   1. `mocov3 nccl check`: every collective on known data, at np=1 (no launcher), np=2 torchrun-style (RANK, WORLD_SIZE,
#      LOCAL_RANK, MASTER_ADDR, MASTER_PORT set by this script; NCCL bootstraps at MASTER_PORT+1), np=2 under mpirun (if any).
#   2. `mocov3 nccl bench`: in-place all-reduce of 43 M floats (MoCo v3 ViT-S's gradient, 172 MB) at np=1 and np=2.
#   3. pretrain vit-tiny-fmnist, fp32, 8 steps at global batch 64, seed 3: np=1 twice (GPU run-to-run noise), np=2
#      torchrun-style and under mpirun, each compared with the first np=1 run by `mocov3 nccl compare` (per-step loss, grad
#      norm, final weights and BatchNorm statistics; SAME = losses within 1e-4 relative, weights and statistics within 1e-3 of
#      their largest, the CPU acceptance test's bounds; the gradient norm is shown, not bounded).
#   4. a stopped rank (under mpirun only): 2 ranks pretrain with --rank-timeout 10; once step 3 is logged rank 1 gets SIGSTOP.
#      PASS = the job ends with exit code 124 within 40 s of the signal and its first error names rank 1 as not answering
#      (NCCL's watchdog, NcclWatchdog: rank 0's collective stays unfinished on the GPU, MPI's roll call finds rank 1 silent;
#      or MPI's own rank timeout when rank 0 was waiting in MPI). The last checkpoint (every 2 steps) is shown by its size. The first three parts
#      leave this one 100 s of the budget.
# Results are printed and, when $OUT is set (the device runner's output folder), written to $OUT/gpu-dp.log as they come.
set -uo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
  pack) exec bench/gpu.sh pack ;;
  run) ;;
  *) echo "usage: bench/gpu-dp.sh pack | run"; exit 2 ;;
esac

out=${OUT:-artifacts/gpu-dp-out}; mkdir -p "$out"
log="$out/gpu-dp.log"
say() { echo "$*" | tee -a "$log"; }
work=$(mktemp -d)
tar -C "$work" -xJf artifacts/gpu.tar.xz
cli="$work/gpu/mocov3/mocov3"
MOCOV3_LIBTORCH=$(python3 -c "import torch,os;print(os.path.dirname(torch.__file__)+'/lib')")
export MOCOV3_LIBTORCH LD_LIBRARY_PATH="$MOCOV3_LIBTORCH:${LD_LIBRARY_PATH:-}" NCCL_DEBUG=${NCCL_DEBUG:-WARN}
# The ranks share this host: sockets over loopback, no InfiniBand probing.
export NCCL_SOCKET_IFNAME=${NCCL_SOCKET_IFNAME:-lo} NCCL_IB_DISABLE=${NCCL_IB_DISABLE:-1}
budget=${BUDGET:-540}   # seconds for the whole run (the lead's device call allows 600): every step's timeout fits what is left
reserve=100   # seconds kept for part 4 until it starts
limit() { local left=$((budget - reserve - SECONDS)); [ "$left" -gt "$1" ] && echo "$1" || echo $((left > 5 ? left : 5)); }
unset RANK WORLD_SIZE LOCAL_RANK MASTER_ADDR MASTER_PORT NCCL_COMM_ID
say "$(date -u +%FT%TZ) $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader)"
say "torch $(python3 -c 'import torch;print(torch.__version__, "cuda", torch.version.cuda, "nccl", torch.cuda.nccl.version())')"
say "NCCL next to torch/lib: $(ls "$MOCOV3_LIBTORCH"/../../nvidia/nccl/lib/libnccl.so* 2>/dev/null | tr '\n' ' ' || true)(else MOCOV3_NCCL, else the loader)"
data=(--data artifacts/fmnist --limit 1024)
train=(pretrain --preset vit-tiny-fmnist --batch 64 --max-steps 8 --log-every 1 --seed 3 --threads 2 --save-every 1000)

# torchrun-style: N ranks of "$@" on this host, each with its own NCCL_HOSTID; prints each rank's output, fails if any rank does.
port=29500
ranks() {
  local n=$1 tag=$2; shift 2
  local pids=() code=0 r
  port=$((port + 10))
  for ((r = 0; r < n; r++)); do
    RANK=$r WORLD_SIZE=$n LOCAL_RANK=$r MASTER_ADDR=127.0.0.1 MASTER_PORT=$port NCCL_HOSTID="mocov3-rank-$r" \
      timeout "$(limit 120)" "$@" >"$out/$tag.rank$r.txt" 2>&1 &
    pids+=($!)
  done
  for r in "${!pids[@]}"; do wait "${pids[$r]}" || code=$?; done
  return $code
}
mpi=$(command -v mpirun || true)
hostid="$work/hostid.sh"   # under mpirun: a different NCCL_HOSTID per rank
printf '#!/bin/sh\nexport NCCL_HOSTID="mocov3-rank-${OMPI_COMM_WORLD_RANK:-${PMI_RANK:-0}}"\nexec "$@"\n' >"$hostid"; chmod +x "$hostid"
mpiranks() { # N TAG CMD...
  local n=$1 tag=$2; shift 2
  timeout "$(limit 120)" "$mpi" -np "$n" --allow-run-as-root --oversubscribe -x LD_LIBRARY_PATH -x MOCOV3_LIBTORCH -x NCCL_DEBUG \
    -x NCCL_SOCKET_IFNAME -x NCCL_IB_DISABLE "$hostid" "$@" >"$out/$tag.txt" 2>&1
}
verdict() { [ "$1" = 0 ] && echo PASS || echo "FAIL (exit $1)"; }

say "== 1. collectives on known data (one JSON line per rank; ok=true when every value is the expected one)"
timeout "$(limit 90)" "$cli" nccl check --device cuda:0 >"$out/check-np1.txt" 2>&1; c=$?
say "check np=1: $(verdict $c) $(tail -1 "$out/check-np1.txt")"
ranks 2 check-np2-torchrun "$cli" nccl check --device cuda:0; c=$?
say "check np=2 torchrun-style: $(verdict $c)"; cat "$out"/check-np2-torchrun.rank*.txt | tail -4 | tee -a "$log"
if [ -n "$mpi" ]; then
  mpiranks 2 check-np2-mpirun "$cli" nccl check --device cuda:0; c=$?
  say "check np=2 mpirun: $(verdict $c)"; tail -4 "$out/check-np2-mpirun.txt" | tee -a "$log"
else
  say "check np=2 mpirun: SKIPPED (no mpirun on this machine)"
fi

say "== 2. all-reduce of 43 M floats (172 MB) on cuda:0, 10 repetitions, slowest rank's time (np=2: two ranks on one GPU over loopback sockets)"
timeout "$(limit 90)" "$cli" nccl bench --device cuda:0 >"$out/bench-np1.txt" 2>&1; c=$?
say "bench np=1: $(verdict $c) $(tail -1 "$out/bench-np1.txt")"
ranks 2 bench-np2 "$cli" nccl bench --device cuda:0; c=$?
say "bench np=2 torchrun-style: $(verdict $c) $(tail -1 "$out/bench-np2.rank0.txt")"

say "== 3. pretrain vit-tiny-fmnist fp32, 8 steps, global batch 64: np=2 against np=1 (compare: SAME within 1e-4 loss / 1e-3 weights)"
timeout "$(limit 120)" "$cli" "${train[@]}" "${data[@]}" --device cuda:0 --out "$work/np1" >"$out/pretrain-np1.txt" 2>&1; c=$?
say "pretrain np=1: $(verdict $c) $(tail -1 "$out/pretrain-np1.txt")"
timeout "$(limit 120)" "$cli" "${train[@]}" "${data[@]}" --device cuda:0 --out "$work/np1b" >"$out/pretrain-np1b.txt" 2>&1; c=$?
say "pretrain np=1 again: $(verdict $c); GPU run-to-run noise: $("$cli" nccl compare "$work/np1" "$work/np1b" 2>&1 | tail -1)"
ranks 2 pretrain-np2-torchrun "$cli" "${train[@]}" "${data[@]}" --device cuda:0 --out "$work/np2t"; c=$?
say "pretrain np=2 torchrun-style: $(verdict $c) $(tail -1 "$out/pretrain-np2-torchrun.rank0.txt")"
say "  np=2 torchrun-style vs np=1: $("$cli" nccl compare "$work/np1" "$work/np2t" 2>&1 | tail -1)"
if [ -n "$mpi" ]; then
  mpiranks 2 pretrain-np2-mpirun "$cli" "${train[@]}" "${data[@]}" --device cuda:0 --out "$work/np2m"; c=$?
  say "pretrain np=2 mpirun: $(verdict $c) $(tail -1 "$out/pretrain-np2-mpirun.txt")"
  say "  np=2 mpirun vs np=1: $("$cli" nccl compare "$work/np1" "$work/np2m" 2>&1 | tail -1)"
else
  say "pretrain np=2 mpirun: SKIPPED (no mpirun on this machine)"
fi
for d in np1 np1b np2t np2m; do cp "$work/$d/metrics.csv" "$out/metrics-$d.csv" 2>/dev/null; done

say "== 4. rank 1 of 2 stopped (SIGSTOP) mid-run under mpirun with --rank-timeout 10: expect exit 124 within 40 s, an error naming rank 1"
reserve=0
if [ -n "$mpi" ]; then
  fail="$work/fail"
  timeout -k 5 "$(limit 95)" "$mpi" -np 2 --allow-run-as-root --oversubscribe -x LD_LIBRARY_PATH -x MOCOV3_LIBTORCH -x NCCL_DEBUG \
    -x NCCL_SOCKET_IFNAME -x NCCL_IB_DISABLE "$hostid" "$cli" pretrain --preset vit-tiny-fmnist --batch 64 --max-steps 100000 --log-every 1 --seed 3 \
    --threads 2 --save-every 2 --rank-timeout 10 "${data[@]}" --device cuda:0 --out "$fail" </dev/null >"$out/stopped-rank.txt" 2>&1 &
  job=$!   # timeout's pid: a TERM to it goes on to mpirun, which ends the ranks
  victim=""
  until [ -n "$victim" ] || [ $((budget - SECONDS)) -lt 45 ] || ! kill -0 "$job" 2>/dev/null; do
    sleep 0.2
    step=$(tail -n +2 "$fail/metrics.csv" 2>/dev/null | head -n -1 | cut -d, -f1 | tail -1)
    [ "${step:-0}" -ge 3 ] 2>/dev/null && victim=$(grep -o 'rank 1: pid [0-9]*' "$out/stopped-rank.txt" | head -1 | grep -o '[0-9]*$')
  done
  if [ -z "$victim" ]; then
    kill "$job" 2>/dev/null; wait "$job"
    say "stopped rank: FAIL (step 3 was not logged, or rank 1's pid not found: see stopped-rank.txt)"
  else
    kill -STOP "$victim"; stopped_at=$SECONDS
    while kill -0 "$job" 2>/dev/null && [ $((SECONDS - stopped_at)) -lt 60 ] && [ $((budget - SECONDS)) -gt 3 ]; do sleep 0.2; done
    if kill -0 "$job" 2>/dev/null; then kill "$job"; wait "$job"; c="none: still running, ended by this script"; else wait "$job"; c=$?; fi
    took=$((SECONDS - stopped_at))
    kill -KILL "$victim" 2>/dev/null   # a stopped process that outlived the job
    first=$(grep -m1 '^error: ' "$out/stopped-rank.txt")
    if [ "$c" = 124 ] && [ "$took" -le 40 ] && echo "$first" | grep -q 'rank 1 did not answer'; then v=PASS; else v=FAIL; fi
    say "stopped rank: $v (exit $c, ${took}s after SIGSTOP to rank 1, pid $victim at step $step); checkpoint: $([ -f "$fail/checkpoint.ckpt" ] && echo "$(stat -c %s "$fail/checkpoint.ckpt") bytes" || echo "none written")"
    say "  ${first:-no error line}"
  fi
else
  say "stopped rank: SKIPPED (no mpirun on this machine)"
fi
say "$(date -u +%FT%TZ) done in ${SECONDS}s; per-rank outputs in $out (a step cut short by the budget exits 124)"
