#!/usr/bin/env bash
# A local Kafka 4.x (KRaft) from Maven Central jars on 127.0.0.1:${LAUNCHRELAY_BROKER_PORT:-9092}.
# Usage: deploy/local-broker.sh run|start|stop|fetch [--nodes 3]
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -x .venv/bin/launchrelay ]] || make .venv/.installed >/dev/null
exec .venv/bin/launchrelay broker "${1:-run}" "${@:2}"
