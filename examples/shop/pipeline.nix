# Arguments: `--argstr env production`; `--argstr target kubernetes` deploys to the namespace `shop-<env>` of
# the current kubeconfig context; `registry` is the mirror the images are pushed to (and, on Kubernetes,
# pulled from); `webImage` is the prebuilt image of `web` (a cluster pulls it, so use one it can reach).
{ env ? "staging", target ? "docker", registry ? "127.0.0.1:5000/shop", webImage ? "127.0.0.1:5000/pipeline-examples/busybox:1" }:
let std = import <std>; in
std.environment {
  project = "shop";                      # names images and deployed resources
  name = env;                            # the environment
  inherit registry;                      # the mirror registry and repository prefix
  target = if target == "kubernetes" then std.kubernetes { namespace = "shop-${env}"; } else std.docker { };
  parallelism = { build = 7; deploy = 7; };            # optional, these are the defaults
  stages = std.defaultStages ++ [ "4.FRONTEND" ];        # optional, ordered
  # Nothing is pulled: images are 127.0.0.1:5000/pipeline-examples/busybox:1 (scripts/base-image) or built FROM it.
  services = {
    db  = std.database  { build.context = ./db; ports = [ 5432 ]; volume = "/var/lib/shop-db";
                          secrets.DB_PASSWORD = std.secret "db-password";
                          healthcheck.command = [ "wget" "-q" "-O" "/dev/null" "http://127.0.0.1:5432/" ];
                          healthcheck.interval = "1s"; };
    migrate = std.job   { build.context = ./api; command = [ "/app/migrate" ]; dependsOn = [ "db" ]; };
    api = std.application { build = { context = ./api; target = "runtime"; args.VERSION = "1.4"; };
                            ports = [ 8080 ]; env.LOG_LEVEL = "info"; replicas = 2; dependsOn = [ "db" ];
                            healthcheck = { http = { port = 8080; path = "/health"; }; interval = "2s"; }; };
    web = std.container { image = webImage; ports = [ 80 ]; stage = "4.FRONTEND";
                          command = ''
                            mkdir -p /www && echo "shop web (${env})" >/www/index.html
                            trap 'exit 0' TERM INT
                            httpd -f -p 80 -h /www & wait
                          ''; };
  };
}
