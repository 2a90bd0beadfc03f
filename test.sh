#!/usr/bin/env bash
# Runs the test suite (the README's second command). Extra arguments go to the test runner.
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -d /usr/share/datasets/fashion-mnist ] && [ "$(id -u)" = 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist >/dev/null
fi
dotnet test tests/MoCoV3.Tests -c Release "$@"
