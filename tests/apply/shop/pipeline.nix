# The end-to-end fixture (tests/apply_docker.rs): all four service types across five stages, every image
# built FROM the local base image (scripts/base-image) or run from it, so nothing is pulled. `api` is public
# at http://api.<env>.<project>.localhost:8080/ through the engine's proxy (scripts/proxy-image makes its
# image); every test that deploys it shares that proxy.
{ project, env ? "staging" }:
let std = import <std>; in
std.environment {
  inherit project;
  name = env;
  registry = "127.0.0.1:5000/${project}";
  target = std.docker { proxy = { http = 8080; https = 8443; image = "127.0.0.1:5000/pipeline-examples/caddy:2"; }; };
  stages = std.defaultStages ++ [ "4.FRONTEND" ];
  services = {
    db = std.database {
      build.context = ./db;
      ports = [ 5432 ];
      volume = "/data";
      secrets.DB_PASSWORD = std.secret "db-password";
      healthcheck = { command = [ "wget" "-q" "-O" "/dev/null" "http://127.0.0.1:5432/" ]; interval = "1s"; };
    };
    seed = std.job { build.context = ./seed; dependsOn = [ "db" ]; };
    cache = std.container {
      image = "127.0.0.1:5000/pipeline-examples/busybox:1";
      ports = [ 6379 ];
      command = "mkdir -p /w; echo cache >/w/index.html; trap 'exit 0' TERM; httpd -f -p 6379 -h /w & wait";
    };
    api = std.application {
      build.context = ./api;
      ports = [ 8080 ];
      replicas = 2;
      endpoints = [ { host = "api.${env}.${project}.localhost"; } ];
      env.GREETING = "hello from ${env}";
      dependsOn = [ "db" ];
      healthcheck = { http = { port = 8080; path = "/index.html"; }; interval = "1s"; };
    };
    web = std.application { build.context = ./web; ports = [ 80 ]; stage = "4.FRONTEND"; dependsOn = [ "api" ]; };
  };
}
