# Arguments: `--argstr env production`; `--argstr target kubernetes` deploys to the namespace `shop-<env>` of
# the current kubeconfig context; `registry` is the mirror the images are pushed to (and, on Kubernetes,
# pulled from); `webImage` is the prebuilt image of `web` (a cluster pulls it, so use one it can reach).
{ env ? "staging", target ? "docker", registry ? "127.0.0.1:5000/shop", webImage ? "127.0.0.1:5000/pipeline-examples/busybox:1" }:
let std = import <std>; in
std.environment {
  project = "shop";                      # names images and deployed resources
  name = env;                            # the environment
  inherit registry;                      # the mirror registry and repository prefix
  # On Docker, public endpoints are served by the engine's proxy on ports 8080 and 8443 (80 and 443 unless
  # set), from a Caddy image scripts/proxy-image makes (real users leave `image` at its default, caddy:2).
  target = if target == "kubernetes" then std.kubernetes { namespace = "shop-${env}"; }
           else std.docker { proxy = { http = 8080; https = 8443; image = "127.0.0.1:5000/pipeline-examples/caddy:2"; }; };
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
                            endpoints = [ { host = "api.${env}.shop.localhost"; } ];
                            stopGracePeriod = "20s";
                            healthcheck = { http = { port = 8080; path = "/health"; }; interval = "2s"; }; };
    web = std.container { image = webImage; ports = [ 80 ]; stage = "4.FRONTEND";
                          endpoints = [ { host = "${env}.shop.localhost"; } ];
                          command = ''
                            mkdir -p /www && echo "shop web (${env})" >/www/index.html
                            trap 'exit 0' TERM INT
                            httpd -f -p 80 -h /www & wait
                          ''; };
  };
}
