{ env ? "staging" }:
let std = import <std>; in
std.environment {
  project = "shop";                      # names images and deployed resources
  name = env;                            # the environment
  registry = "127.0.0.1:5000/shop";      # the mirror registry and repository prefix
  target = std.docker { };               # or std.kubernetes { namespace = "shop-${env}"; }
  parallelism = { build = 7; deploy = 7; };            # optional, these are the defaults
  stages = std.defaultStages ++ [ "4.FRONTEND" ];        # optional, ordered
  services = {
    db  = std.database  { image = "postgres:16"; ports = [ 5432 ]; volume = "/var/lib/postgresql/data";
                          secrets.POSTGRES_PASSWORD = std.secret "db-password"; };
    migrate = std.job   { build.context = ./api; command = [ "/app/migrate" ]; dependsOn = [ "db" ]; };
    api = std.application { build = { context = ./api; target = "runtime"; args.VERSION = "1.4"; };
                            ports = [ 8080 ]; env.LOG_LEVEL = "info"; replicas = 2; dependsOn = [ "db" ]; };
    web = std.container { image = "nginx:1.27"; ports = [ 80 ]; stage = "4.FRONTEND"; };
  };
}
