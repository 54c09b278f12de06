#!/usr/bin/env bash
# An update of 10 services with 2 replicas each on the Docker target, timed until `apply` returns, while a
# client on the environment's network asks every service by name in turn (a request every 50 ms): the
# failed requests during the update are counted. BEFORE and AFTER are two `pipeline` binaries (e.g. the
# release before safe updates and this one), run side by side in one run, ROUNDS rounds each; the results
# go to bench/updates/RESULTS.md by hand.
#
#   BEFORE=/path/to/old/pipeline AFTER=target/release/pipeline bench/updates/run.sh
#
# Each service is a busybox httpd whose process, as PID 1 of its own shell, ignores SIGTERM (as many
# do), with an HTTP healthcheck; an update changes one file of every service (10 builds, 10 deploys).
# Needs the engine and the registry (scripts/start-services).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS="${ROUNDS:-3}"
AFTER="${AFTER:-$PWD/target/release/pipeline}"
BEFORE="${BEFORE:-}"
scripts/start-services >/dev/null
scripts/base-image >/dev/null
work="$(mktemp -d)"
trap 'docker rm -f $(docker ps -aq --filter name=bench-upd-poller) >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

services=""
for i in $(seq 1 10); do
  services="$services
    s$i = std.application { build.context = ./s$i; ports = [ 8080 ]; replicas = 2;
      healthcheck = { http = { port = 8080; path = \"/index.html\"; }; interval = \"1s\"; }; };"
done
definitions="{ project }:
let std = import <std>; in
std.environment {
  inherit project;
  name = \"bench\";
  registry = \"127.0.0.1:5000/\${project}\";
  target = std.docker { };
  services = {$services
  };
}"

run() { # BIN LABEL ROUND -> "seconds failed requests"
  local bin="$1" label="$2" round="$3"
  local dir="$work/$label-$round" project="bench-upd-$label-$round-$$"
  mkdir -p "$dir"
  printf '%s\n' "$definitions" >"$dir/pipeline.nix"
  for i in $(seq 1 10); do
    mkdir -p "$dir/s$i/www"
    echo "s$i v1 $project" >"$dir/s$i/www/index.html"
    cat >"$dir/s$i/Dockerfile" <<'DOCKERFILE'
FROM 127.0.0.1:5000/pipeline-examples/busybox:1
COPY www /www
CMD ["sh", "-c", "httpd -f -p 8080 -h /www"]
DOCKERFILE
  done
  (cd "$dir" && "$bin" apply pipeline.nix --argstr project "$project" --yes >/dev/null 2>"$dir/first.err") || {
    cat "$dir/first.err" >&2; exit 1; }
  local poller="bench-upd-poller-$label-$round-$$"
  docker run -d --name "$poller" --network "$project-bench" 127.0.0.1:5000/pipeline-examples/busybox:1 sh -c \
    'while true; do for i in 1 2 3 4 5 6 7 8 9 10; do if wget -q -O /dev/null http://s$i:8080/index.html; then echo ok; else echo fail; fi; sleep 0.05; done; done' >/dev/null
  sleep 2
  for i in $(seq 1 10); do echo "s$i v2 $project" >"$dir/s$i/www/index.html"; done
  local t0 t1
  t0="$(date +%s.%N)"
  (cd "$dir" && "$bin" apply pipeline.nix --argstr project "$project" --yes >/dev/null 2>"$dir/update.err") || {
    cat "$dir/update.err" >&2; exit 1; }
  t1="$(date +%s.%N)"
  sleep 2
  local failed ok
  failed="$(docker logs "$poller" 2>/dev/null | grep -c '^fail$' || true)"
  ok="$(docker logs "$poller" 2>/dev/null | grep -c '^ok$' || true)"
  docker rm -f "$poller" >/dev/null
  # Removed by label, not with `destroy`: the binaries compared may destroy differently (and slowly).
  docker rm -f $(docker ps -aq --filter "label=pipeline.project=$project") >/dev/null 2>&1 || true
  docker network rm "$project-bench" >/dev/null 2>&1 || true
  printf "%s %s %s\n" "$(python3 -c "print(round($t1 - $t0, 1))")" "$failed" "$ok"
}

for round in $(seq 1 "$ROUNDS"); do
  if [ -n "$BEFORE" ]; then echo "before round $round: $(run "$BEFORE" before "$round") (seconds, failed, answered)"; fi
  echo "after  round $round: $(run "$AFTER" after "$round") (seconds, failed, answered)"
done
