#!/usr/bin/env bash
# Runs the test suite (the README's second command). Extra arguments go to the test runner.
set -euo pipefail
cd "$(dirname "$0")"
need=()
[ -d /usr/share/datasets/fashion-mnist ] || need+=(dataset-fashion-mnist)
# scripts/package-check.sh (run by the packaging test): unzip reads the packages, python3 writes sample images.
command -v unzip >/dev/null 2>&1 || need+=(unzip)
command -v python3 >/dev/null 2>&1 || need+=(python3)
# The MPI tests launch ranks with each MPI's own launcher (Open MPI's mpirun.openmpi, MPICH's mpiexec.hydra).
command -v mpirun.openmpi >/dev/null 2>&1 || need+=(openmpi-bin)
command -v mpiexec.hydra >/dev/null 2>&1 || need+=(mpich)
if [ ${#need[@]} -gt 0 ] && [ "$(id -u)" = 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null
fi
dotnet test tests/MoCoV3.Tests -c Release "$@"
