#!/usr/bin/env bash
# The scheduler benchmark: 1,000 simulated services through the real scheduler on tokio's paused clock,
# against a lower bound and the seed's stage-by-stage schedule; writes bench/schedule/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo run --release --quiet -p pipeline-executor --example schedule_bench > bench/schedule/RESULTS.md
cat bench/schedule/RESULTS.md
