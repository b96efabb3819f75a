#!/usr/bin/env bash
# The tools the tests run that come from Debian's packages, installed when missing (as root, or with sudo):
# Java and Maven (the Kafka jars), openssl (the foreign-client test), npm (published schemas, code generation)
# promtool (package prometheus: the alert rules' unit tests) and chromium (the console's browser tests, driven by
# Playwright; no browser is downloaded at run time). `make test` and `.ci/run` both run this.
set -euo pipefail

missing=()
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || missing+=(maven)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v npm >/dev/null 2>&1 || missing+=(npm)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
((${#missing[@]})) || exit 0

if [[ $(id -u) == 0 ]]; then
    sudo=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo=(sudo)
else
    echo "provision: these are missing and this user cannot install them: ${missing[*]}" >&2
    echo "provision: run as root, or: sudo apt-get install ${missing[*]}" >&2
    exit 1
fi

echo "provision: installing ${missing[*]} from Debian" >&2
# Packages are installed, not started: the prometheus package would otherwise start a server (only its
# promtool is wanted). policy-rc.d tells Debian's maintainer scripts not to start services.
policy=/usr/sbin/policy-rc.d
made_policy=0
if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
    "${sudo[@]}" chmod 755 "$policy"
    made_policy=1
fi
trap '[[ $made_policy == 1 ]] && "${sudo[@]}" rm -f "$policy"' EXIT
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
