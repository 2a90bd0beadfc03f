#!/usr/bin/env bash
# All-reduce bandwidth of the data-parallel engine layer: an in-place float all-reduce of a MoCo v3 ViT-S-sized gradient
# (43 M floats, 172 MB) against memcpy of the same bytes (`mocov3 mpi bench`), 2 ranks on this machine, under
#   - Open MPI, shared memory (--mca pml ob1 --mca btl self,vader),
#   - Open MPI, TCP loopback (--mca pml ob1 --mca btl self,tcp),
#   - MPICH (Debian's: ch4 over UCX).
#
#   bench/allreduce.sh               # 2 ranks, 43 M floats, 5 timed repetitions
#   RANKS=4 FLOATS=22000000 bench/allreduce.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ranks=${RANKS:-2}
floats=${FLOATS:-43000000}
repeats=${REPEATS:-5}
dotnet build MoCoV3.Cli -c Release -v q -nologo >/dev/null
cli=(dotnet MoCoV3.Cli/bin/Release/net10.0/mocov3.dll mpi bench --floats "$floats" --repeats "$repeats")
export TERM=dumb UCX_ERROR_SIGNALS=
ompi=(mpirun.openmpi -np "$ranks" --oversubscribe --allow-run-as-root --mca pml ob1)

echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "Open MPI shared memory: $("${ompi[@]}" --mca btl self,vader "${cli[@]}")"
echo "Open MPI TCP loopback:  $("${ompi[@]}" --mca btl self,tcp "${cli[@]}")"
echo "MPICH:                  $(mpiexec.hydra -n "$ranks" "${cli[@]}")"
