#!/usr/bin/env bash
# `pipeline` side by side with docker compose (Debian's `docker-compose`) on the same 20 built services, one
# engine, in one run: a first deploy (builds from an empty build cache), a redeploy with nothing changed,
# and a redeploy after one file of one service changed, each timed until the command returns (for the
# last one: the old container retired). During the last one a client on each side's network asks the
# changed service by name every 50 ms; its failed requests are counted.
#
#   bench/compose/run.sh            # PIPELINE=target/release/pipeline ROUNDS=2 by default
#
# Same containers and settings on both sides: each service is 200 files of 1 KiB and a Dockerfile with a
# 2 s RUN step, FROM the local busybox base; one replica, port 8080, an HTTP healthcheck every second, an
# init process (`init: true` for compose: pipeline runs one as `docker run --init` does), a 10 s stop
# grace period. Compose builds with `--parallel` (its fastest), from the same Dockerfiles.
# Needs the engine and the registry (scripts/start-services) and docker-compose (installed if missing).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS="${ROUNDS:-2}"
PIPELINE="${PIPELINE:-$PWD/target/release/pipeline}"
N=20
scripts/start-services >/dev/null
scripts/base-image >/dev/null 2>&1
if ! command -v docker-compose >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null
fi
work="$(mktemp -d)"
cleanup() {
  docker rm -f $(docker ps -aq --filter name=bench-cmp-poller) >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

make_project() { # DIR PROJECT
  local dir="$1" project="$2"
  mkdir -p "$dir"
  for i in $(seq 1 $N); do
    mkdir -p "$dir/s$i/www"
    python3 - "$dir/s$i/www" "$i" <<'PY'
import os, sys
d, i = sys.argv[1], sys.argv[2]
for n in range(200):
    with open(os.path.join(d, f"f{n}.txt"), "w") as f:
        f.write((f"service {i} file {n} " * 64)[:1024])
with open(os.path.join(d, "index.html"), "w") as f:
    f.write(f"s{i} v1\n")
PY
    cat >"$dir/s$i/Dockerfile" <<'DOCKERFILE'
FROM 127.0.0.1:5000/pipeline-examples/busybox:1
RUN sleep 2
COPY www /www
CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]
DOCKERFILE
  done
  # pipeline's definitions.
  {
    echo "{ project }:"
    echo "let std = import <std>; in"
    echo "std.environment {"
    echo "  inherit project;"
    echo "  name = \"bench\";"
    echo "  registry = \"127.0.0.1:5000/\${project}\";"
    echo "  target = std.docker { };"
    echo "  services = {"
    for i in $(seq 1 $N); do
      echo "    s$i = std.application { build.context = ./s$i; ports = [ 8080 ]; stopGracePeriod = \"10s\";"
      echo "      healthcheck = { http = { port = 8080; path = \"/index.html\"; }; interval = \"1s\"; }; };"
    done
    echo "  };"
    echo "}"
  } >"$dir/pipeline.nix"
  # compose's.
  {
    echo "version: \"2.4\""
    echo "services:"
    for i in $(seq 1 $N); do
      cat <<YAML
  s$i:
    build: ./s$i
    image: bench-cmp/$project-s$i
    ports: ["127.0.0.1::8080"]
    init: true
    stop_grace_period: 10s
    restart: unless-stopped
    healthcheck:
      test: ["CMD-SHELL", "wget -q -O /dev/null http://127.0.0.1:8080/index.html"]
      interval: 1s
YAML
    done
  } >"$dir/docker-compose.yml"
}

now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2 - $1:.2f}')"; }

poll_start() { # NAME NETWORK
  docker run -d --name "$1" --network "$2" 127.0.0.1:5000/pipeline-examples/busybox:1 sh -c \
    'while true; do if wget -q -O /dev/null http://s1:8080/index.html; then echo ok; else echo fail; fi; sleep 0.05; done' >/dev/null
  sleep 2
}
poll_end() { # NAME -> "failed/answered"
  sleep 2
  local failed ok
  failed="$(docker logs "$1" 2>/dev/null | grep -c '^fail$' || true)"
  ok="$(docker logs "$1" 2>/dev/null | grep -c '^ok$' || true)"
  docker rm -f "$1" >/dev/null
  echo "$failed/$((failed + ok))"
}

side() { # pipeline|compose ROUND -> "first nothing one-file failed/answered"
  local kind="$1" round="$2"
  local project="bench-cmp-$kind-$round-$$"
  local dir="$work/$project"
  make_project "$dir" "$project"
  docker builder prune -af >/dev/null 2>&1 || true
  local run t0 t1 t2 t3 t4 t5 poll
  if [ "$kind" = pipeline ]; then
    run() { (cd "$dir" && "$PIPELINE" apply pipeline.nix --argstr project "$project" --yes >/dev/null 2>>"$dir/err") || { cat "$dir/err" >&2; exit 1; }; }
  else
    run() { (cd "$dir" && docker-compose -p "$project" build --parallel -q >/dev/null 2>>"$dir/err" &&
             docker-compose -p "$project" up -d >/dev/null 2>>"$dir/err") || { cat "$dir/err" >&2; exit 1; }; }
  fi
  t0="$(now)"; run; t1="$(now)"
  t2="$(now)"; run; t3="$(now)"
  local network="${project}-bench"
  [ "$kind" = compose ] && network="${project}_default"
  poll="bench-cmp-poller-$project"
  poll_start "$poll" "$network"
  echo "s1 v2" >"$dir/s1/www/index.html"
  t4="$(now)"; run; t5="$(now)"
  local failed
  failed="$(poll_end "$poll")"
  if [ "$kind" = pipeline ]; then
    (cd "$dir" && "$PIPELINE" destroy pipeline.nix --argstr project "$project" --yes >/dev/null 2>&1) || true
    docker images --format '{{.Repository}}:{{.Tag}}' | grep "^127.0.0.1:5000/$project/" | xargs -r docker rmi -f >/dev/null 2>&1 || true
  else
    (cd "$dir" && docker-compose -p "$project" down --rmi all >/dev/null 2>&1) || true
  fi
  echo "$(secs "$t0" "$t1") $(secs "$t2" "$t3") $(secs "$t4" "$t5") $failed"
}

echo "| round | side | first deploy | nothing changed | one file changed | failed requests (one file) |"
echo "|---|---|---|---|---|---|"
for round in $(seq 1 "$ROUNDS"); do
  for kind in compose pipeline; do
    read -r first nothing one failed <<<"$(side "$kind" "$round")"
    echo "| $round | $kind | ${first} s | ${nothing} s | ${one} s | $failed |"
  done
done
