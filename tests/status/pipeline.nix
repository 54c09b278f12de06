# `pipeline status` golden cases (tests/status_corpus.rs): each folder holds `live.json`, what the
# target reports (a list of service statuses), and the expected text and JSON.
let std = import <std>; in
std.environment {
  project = "demo";
  name = "test";
  registry = "127.0.0.1:5000/demo";
  target = std.docker { };
  services = {
    db = std.database { image = "postgres:16"; volume = "/data"; secrets.PASSWORD = std.secret "db-password"; };
    api = std.application {
      build = { context = ./api; args.VERSION = "1.4"; };
      ports = [ 8080 9090 ];
      env = { LOG_LEVEL = "debug"; MODE = "web"; };
      secrets.TOKEN = std.secret "api-token";
      dependsOn = [ "db" ];
    };
    cache = std.container { image = "redis:7"; };
    fresh = std.container { image = "nginx:1.27"; ports = [ 80 ]; };
  };
}
