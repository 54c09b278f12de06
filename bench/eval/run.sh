#!/usr/bin/env bash
# Evaluator benchmark: nix-instantiate vs `pipeline eval` on a generated N-service definition.
# Usage: bench/eval/run.sh            (env: N=5000 RUNS=5 PIPELINE_BIN=target/release/pipeline)
# Writes bench/eval/RESULTS.md (overwritten).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
N="${N:-5000}"
RUNS="${RUNS:-5}"
STDLIB="${STDLIB:-$ROOT/stdlib}"
PIPELINE_BIN="${PIPELINE_BIN:-$ROOT/target/release/pipeline}"
RESULTS="$HERE/RESULTS.md"

need() { command -v "$1" >/dev/null 2>&1 || { echo "error: '$1' not found" >&2; exit 1; }; }
need python3
need nix-instantiate

# GNU time for peak RSS (%M); the `time` Debian package provides /usr/bin/time.
if [ ! -x /usr/bin/time ]; then
  echo "/usr/bin/time missing; installing the 'time' package via apt-get" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq time >/dev/null
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/pipeline-eval-bench.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

python3 "$HERE/gen.py" "$N" "$WORK" >/dev/null
FILE="$WORK/pipeline.nix"
echo "generated $FILE ($N services, $(wc -c <"$FILE") bytes); $RUNS runs per tool"

# measure NAME CMD...: runs CMD $RUNS times, stdout of the first run to $WORK/NAME.json,
# one "wall_seconds peak_rss_kib" line per run to $WORK/NAME.samples. Returns non-zero on failure.
measure() {
  local name="$1"; shift
  : >"$WORK/$name.samples"
  local i start end rss
  for ((i = 1; i <= RUNS; i++)); do
    start=$(date +%s%N)
    if ! /usr/bin/time -f %M -o "$WORK/$name.rss" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err"; then
      echo "error: $name failed (run $i):" >&2
      tail -n 20 "$WORK/$name.err" >&2
      return 1
    fi
    end=$(date +%s%N)
    rss=$(tail -n 1 "$WORK/$name.rss")
    echo "$(( end - start )) $rss" >>"$WORK/$name.samples"
    [ "$i" -eq 1 ] && mv "$WORK/$name.out" "$WORK/$name.json"
  done
  return 0
}

# stats NAME -> "median_s min_s peak_rss_mib"
stats() {
  python3 - "$WORK/$1.samples" <<'PY'
import statistics, sys
rows = [tuple(map(int, l.split())) for l in open(sys.argv[1]) if l.strip()]
t = [ns / 1e9 for ns, _ in rows]
print(f"{statistics.median(t):.3f} {min(t):.3f} {max(k for _, k in rows) / 1024:.1f}")
PY
}

echo "== nix-instantiate ($(nix-instantiate --version))"
measure nix nix-instantiate --eval --strict --json -I "std=$STDLIB" "$FILE"
read -r NIX_MED NIX_MIN NIX_RSS < <(stats nix)
echo "   median ${NIX_MED}s  min ${NIX_MIN}s  peak RSS ${NIX_RSS} MiB"

HAVE_PIPELINE=0
COMPARE="not run: pipeline binary not found at $PIPELINE_BIN (build it with cargo build --release, or set PIPELINE_BIN)"
if [ -x "$PIPELINE_BIN" ]; then
  echo "== pipeline ($PIPELINE_BIN)"
  if measure pipeline "$PIPELINE_BIN" eval --json "$FILE"; then
    HAVE_PIPELINE=1
    read -r PL_MED PL_MIN PL_RSS < <(stats pipeline)
    echo "   median ${PL_MED}s  min ${PL_MIN}s  peak RSS ${PL_RSS} MiB"
    if COMPARE_OUT=$(python3 - "$WORK/nix.json" "$WORK/pipeline.json" <<'PY'
import json, sys
def load(p):
    with open(p) as f:
        return json.load(f)
try:
    a = load(sys.argv[1])
    b = load(sys.argv[2])
except ValueError as e:
    print(f"MISMATCH: output is not valid JSON ({e})")
    sys.exit(1)
if a == b:
    print("identical")
    sys.exit(0)
# Report the first differing path to make the mismatch actionable.
def diff(x, y, path="$"):
    if type(x) is not type(y) and not (isinstance(x, (int, float)) and isinstance(y, (int, float))):
        return f"{path}: nix has {type(x).__name__} {json.dumps(x)[:200]}, pipeline has {type(y).__name__} {json.dumps(y)[:200]}"
    if isinstance(x, dict):
        for k in sorted(set(x) | set(y)):
            if k not in y: return f"{path}.{k}: missing in pipeline output"
            if k not in x: return f"{path}.{k}: extra in pipeline output"
            d = diff(x[k], y[k], f"{path}.{k}")
            if d: return d
        return None
    if isinstance(x, list):
        if len(x) != len(y): return f"{path}: list length nix {len(x)} vs pipeline {len(y)}"
        for i, (p, q) in enumerate(zip(x, y)):
            d = diff(p, q, f"{path}[{i}]")
            if d: return d
        return None
    return None if x == y else f"{path}: nix {json.dumps(x)[:200]} vs pipeline {json.dumps(y)[:200]}"
print("MISMATCH: " + (diff(a, b) or "values differ"))
sys.exit(1)
PY
    ); then
      COMPARE="identical JSON output"
      echo "   output: identical to nix-instantiate"
    else
      COMPARE="$COMPARE_OUT"
      echo "!! OUTPUT MISMATCH between nix-instantiate and pipeline: $COMPARE_OUT" >&2
    fi
  else
    COMPARE="pipeline eval failed; see stderr of the run"
  fi
else
  echo "!! pipeline binary not found at $PIPELINE_BIN; recording nix-instantiate numbers only" >&2
fi

DATE="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
NPROC="$(nproc)"
ratio() { python3 -c "import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); print(f'{a / b:.2f}' if b else 'n/a')" "$1" "$2"; }
{
  echo "# Evaluator benchmark results"
  echo
  echo "Generated by \`bench/eval/run.sh\` (overwritten on each run). $RUNS runs per tool;"
  echo "wall time from \`date +%s%N\`, peak RSS is the maximum \`/usr/bin/time -f %M\` over the runs."
  echo "Ratios are tool / nix-instantiate (below 1.00 means faster or smaller than nix)."
  echo
  echo "| date | nproc | N | tool | median s | min s | peak RSS MiB | time ratio (median) | RSS ratio |"
  echo "|---|---|---|---|---|---|---|---|---|"
  echo "| $DATE | $NPROC | $N | nix-instantiate $(nix-instantiate --version | awk '{print $NF}') | $NIX_MED | $NIX_MIN | $NIX_RSS | 1.00 | 1.00 |"
  if [ "$HAVE_PIPELINE" -eq 1 ]; then
    echo "| $DATE | $NPROC | $N | pipeline | $PL_MED | $PL_MIN | $PL_RSS | $(ratio "$PL_MED" "$NIX_MED") | $(ratio "$PL_RSS" "$NIX_RSS") |"
  else
    echo "| $DATE | $NPROC | $N | pipeline | n/a | n/a | n/a | n/a | n/a |"
  fi
  echo
  echo "Output comparison: $COMPARE"
} >"$RESULTS"
echo "wrote $RESULTS"
[ "$HAVE_PIPELINE" -eq 0 ] || [ "$COMPARE" = "identical JSON output" ]
