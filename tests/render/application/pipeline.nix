# An application built from a Dockerfile, with every option the Kubernetes target maps.
let std = import <std>; in
std.environment {
  project = "shop";
  name = "staging";
  registry = "registry.example.com/shop";
  target = std.kubernetes { namespace = "shop-staging"; };
  services.api = std.application {
    build = { context = ./app; target = "runtime"; args.VERSION = "1.4"; };
    command = [ "/app/serve.sh" ];
    args = [ "--verbose" ];
    ports = [ 8080 9090 ];
    replicas = 3;
    resources = { cpu = "500m"; memory = "256Mi"; };
    env = { LOG_LEVEL = "info"; FEATURE_FLAGS = "a,b"; };
    secrets.API_TOKEN = std.secret "api-token";
    healthcheck = { http = { port = 8080; path = "/health"; }; interval = "10s"; timeout = "2s"; retries = 5; startPeriod = "15s"; };
  };
}
