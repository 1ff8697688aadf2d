#!/usr/bin/env bash
# `npm run lint` (and CI, through it): Biome's lint and format check over src, test, web,
# bench and scripts (biome.jsonc), the dependency rules' self-test, and the dependency rules
# of the layout in shared/DESIGN.md (.dependency-cruiser.mjs).
#
# Until issue 21's move is done, package.json's "lint" script passes two switches; take
# each out of it when its day comes:
#   --no-format            until the tree has been formatted once (npx biome format --write)
#   --no-dependency-rules  until src/ follows the target layout (the rules are written for it)
set -euo pipefail
cd "$(dirname "$0")/.."

format=true
dependency_rules=true
for argument in "$@"; do
  case "$argument" in
    --no-format) format=false ;;
    --no-dependency-rules) dependency_rules=false ;;
    *) echo "lint: unknown argument $argument" >&2; exit 2 ;;
  esac
done

# Each check runs whatever the one before found, so that one run shows every finding.
status=0
biome check --error-on-warnings --formatter-enabled="$format" || status=1
[ "$format" = true ] || echo "lint: format check off (--no-format in package.json's lint script)"

npm run --silent lint:rules-self-test || status=1
if [ "$dependency_rules" = true ]; then
  npm run --silent lint:deps || status=1
else
  echo "lint: dependency rules off (--no-dependency-rules in package.json's lint script)"
fi
exit "$status"
