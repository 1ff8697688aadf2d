#!/usr/bin/env bash
# `npm run lint` (and CI, through it): Biome's lint and format check over src, test, web,
# bench and scripts (biome.jsonc), the dependency rules' self-test, and the dependency rules
# of the layout (.dependency-cruiser.mjs; README, "Architecture").
set -euo pipefail
cd "$(dirname "$0")/.."

# Each check runs whatever the one before found, so that one run shows every finding.
status=0
biome check --error-on-warnings || status=1
npm run --silent lint:rules-self-test || status=1
npm run --silent lint:deps || status=1
exit "$status"
