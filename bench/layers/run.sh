#!/usr/bin/env bash
# Layer reuse from the mirror, side by side in one run (bench/layers/RESULTS.md):
#   cold     a build nothing has seen (its expensive step is unique to this run), on the main engine
#   warm     after one source file changes, on the same engine (its local cache)
#   fresh+   after another change, on a new empty engine, with the mirror's layers (cache sources)
#   fresh-   the same change on another new empty engine, under a project with no earlier image (no
#            cache source: what a fresh machine costs without the mirror as a layer cache)
# Each time is the build's own duration from `apply --json` (start to end of the build task, including the
# pull of the base image and the push), the median of ROUNDS rounds.
# Needs the engine and the registry (scripts/start-services) and root (a second dockerd).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS="${ROUNDS:-3}"
SLEEP="${SLEEP:-8}"
scripts/start-services >/dev/null
scripts/base-image >/dev/null
cargo build --release -q
bin="$PWD/target/release/pipeline"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

definitions='{ project, env ? "a" }:
let std = import <std>; in
std.environment {
  inherit project;
  name = env;
  registry = "127.0.0.1:5000/${project}";
  target = std.docker { };
  services.app = std.job { build.context = ./app; };
}'

build_ms() { # DIR PROJECT ENV [DOCKER_HOST]
  local dir="$1" project="$2" env="$3" host="${4:-}"
  local out
  if [ -n "$host" ]; then export DOCKER_HOST="$host"; else unset DOCKER_HOST; fi
  out="$(cd "$dir" && "$bin" apply pipeline.nix --argstr project "$project" --argstr env "$env" --yes --json 2>"$dir/apply.err")" || {
    echo "apply failed:" >&2; cat "$dir/apply.err" >&2; exit 1; }
  unset DOCKER_HOST
  python3 -c 'import json,sys; b=json.loads(sys.argv[1])["builds"][0]; assert b["status"]=="done", b; print(round(b["ended_ms"]-b["started_ms"]))' "$out"
}

results=()
for round in $(seq 1 "$ROUNDS"); do
  nonce="$(date +%s%N)-$round"
  dir="$work/r$round"
  mkdir -p "$dir/app/src"
  printf '%s\n' "$definitions" >"$dir/pipeline.nix"
  cat >"$dir/app/Dockerfile" <<DOCKERFILE
FROM 127.0.0.1:5000/pipeline-examples/busybox:1
RUN echo $nonce >/nonce && sleep $SLEEP
COPY src/ /src/
RUN cat /src/* >/all
CMD ["cat", "/all"]
DOCKERFILE
  echo one >"$dir/app/src/a.txt"
  project="bench-layers-$round-$$"
  cold="$(build_ms "$dir" "$project" a)"
  echo two >"$dir/app/src/a.txt"
  warm="$(build_ms "$dir" "$project" a)"
  echo three >"$dir/app/src/a.txt"
  e1="$(tests/support/fresh-engine start "$work/e1-$round")"
  fresh_with="$(build_ms "$dir" "$project" b "$e1")"
  tests/support/fresh-engine stop "$work/e1-$round"
  e2="$(tests/support/fresh-engine start "$work/e2-$round")"
  fresh_without="$(build_ms "$dir" "$project-nocache" b "$e2")"
  tests/support/fresh-engine stop "$work/e2-$round"
  echo "round $round: cold $cold ms, warm $warm ms, fresh with mirror $fresh_with ms, fresh without $fresh_without ms" >&2
  results+=("$cold $warm $fresh_with $fresh_without")
  for p in "$project" "$project-nocache"; do
    (cd "$dir" && "$bin" destroy pipeline.nix --argstr project "$p" --argstr env a --yes >/dev/null 2>&1 || true)
  done
done

python3 - "$ROUNDS" "$SLEEP" "${results[@]}" >bench/layers/RESULTS.md <<'PY'
import statistics, sys, subprocess
rounds, sleep = sys.argv[1], sys.argv[2]
rows = [list(map(int, r.split())) for r in sys.argv[3:]]
med = [statistics.median(c) for c in zip(*rows)]
cold, warm, fresh, without = med
engine = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"], capture_output=True, text=True).stdout.strip()
print("# Layer reuse from the mirror (bench/layers/run.sh)\n")
print(f"Docker Engine {engine}, 2 cores; an expensive step of `sleep {sleep}` before `COPY src/`; medians of {rounds} rounds (ms, the build task: base pull, build, push).\n")
print("| build | ms | vs warm | vs cold |\n|---|---:|---:|---:|")
for name, v in [("cold (nothing cached)", cold), ("warm engine, one file changed", warm),
                ("fresh engine, mirror's layers", fresh), ("fresh engine, no cache source", without)]:
    print(f"| {name} | {v:.0f} | {v/warm:.2f}x | {v/cold:.2f}x |")
print("\nRounds (cold, warm, fresh with mirror, fresh without):\n")
for r in rows:
    print(f"- {r}")
ok1, ok2 = fresh <= 1.2 * warm, fresh <= 0.2 * cold
print(f"\nGoal: fresh engine's rebuild at most 1.2x the warm engine's ({'met' if ok1 else 'not met'}: {fresh/warm:.2f}x) and at most 0.2x the cold build ({'met' if ok2 else 'not met'}: {fresh/cold:.2f}x).")
PY
cat bench/layers/RESULTS.md
