#!/usr/bin/env bash
# Regenerate tests/lang/eval-ok/*.json from the reference implementation
# (nix-instantiate, Nix 2.8.0). Each NAME.json is exactly the stdout of
#   nix-instantiate --eval --strict --json NAME.nix
# followed by a single newline. Files under eval-ok/lib/ are helpers, not cases.
#
# Quirk: Nix 2.8's `nix-instantiate --eval` only auto-calls a top-level
# function when at least one --arg/--argstr is given. For the cases named
# toplevel-fn-*.nix (whose value is a function with all-default formals) we
# therefore pass a dummy `--arg __autoCall null`. Formals without `...` ignore
# it; the `...` cases must not expose the argument set's names in the result.
#
# Usage: tests/lang/regen-oracle.sh [path/to/NAME.nix ...]   (default: all)
set -euo pipefail
dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/eval-ok"
command -v nix-instantiate >/dev/null || { echo "nix-instantiate not found" >&2; exit 1; }
if [ "$#" -gt 0 ]; then files=("$@"); else files=("$dir"/*.nix); fi
fail=0
for f in "${files[@]}"; do
  json="${f%.nix}.json"
  extra=()
  case "$(basename "$f")" in toplevel-fn-*) extra=(--arg __autoCall null) ;; esac
  if out="$(nix-instantiate --eval --strict --json "${extra[@]}" "$f" 2>"$json.err")"; then
    printf '%s\n' "$out" >"$json"
    rm -f "$json.err"
  else
    echo "FAILED: $f" >&2
    sed 's/^/    /' "$json.err" >&2
    rm -f "$json.err" "$json"
    fail=1
  fi
done
exit "$fail"
