#!/usr/bin/env bash
# Once, before `docker compose up`: the relay's key and a config for two sample parties (CN, RU).
# Real deployments register each party's own public key instead of generating one here.
set -euo pipefail
cd "$(dirname "$0")"
LR="${LAUNCHRELAY:-../../.venv/bin/launchrelay}"
mkdir -p secrets
relay_pub=$("$LR" keygen relay-compose secrets/relay.pem)
cn_pub=$("$LR" keygen cn-compose secrets/cn.pem)
ru_pub=$("$LR" keygen ru-compose secrets/ru.pem)
cat > launchrelay.toml <<TOML
[relay]
topic_prefix = "launchrelay"
presets = ["CN-RU-2009"]
partitions = 3
# the relay's public key, for counterparts that verify receipts: ${relay_pub}

[parties.CN]
name = "People's Republic of China"
keys = { ${cn_pub} }

[parties.RU]
name = "Russian Federation"
keys = { ${ru_pub} }
TOML
chmod 644 secrets/relay.pem   # read by the container's unprivileged user
echo "wrote deploy/compose/launchrelay.toml and deploy/compose/secrets/ (keep the .pem files private)"
