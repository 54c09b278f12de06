{ env ? "staging" }:
let std = import <std>; in
std.environment {
  project = "shop";                      # names images and deployed resources
  name = env;                            # the environment
  registry = "127.0.0.1:5000/shop";      # the mirror registry and repository prefix
  target = std.docker { };               # or std.kubernetes { namespace = "shop-${env}"; }
  parallelism = { build = 7; deploy = 7; };            # optional, these are the defaults
  stages = std.defaultStages ++ [ "4.FRONTEND" ];        # optional, ordered
  # Nothing is pulled: images are pipeline-examples/busybox:1 (scripts/base-image) or built FROM it.
  services = {
    db  = std.database  { build.context = ./db; ports = [ 5432 ]; volume = "/var/lib/shop-db";
                          secrets.DB_PASSWORD = std.secret "db-password";
                          healthcheck.command = [ "wget" "-q" "-O" "/dev/null" "http://127.0.0.1:5432/" ];
                          healthcheck.interval = "1s"; };
    migrate = std.job   { build.context = ./api; command = [ "/app/migrate" ]; dependsOn = [ "db" ]; };
    api = std.application { build = { context = ./api; target = "runtime"; args.VERSION = "1.4"; };
                            ports = [ 8080 ]; env.LOG_LEVEL = "info"; replicas = 2; dependsOn = [ "db" ];
                            healthcheck = { http = { port = 8080; path = "/health"; }; interval = "2s"; }; };
    web = std.container { image = "pipeline-examples/busybox:1"; ports = [ 80 ]; stage = "4.FRONTEND";
                          command = ''
                            mkdir -p /www && echo "shop web (${env})" >/www/index.html
                            trap 'exit 0' TERM INT
                            httpd -f -p 80 -h /www & wait
                          ''; };
  };
}
