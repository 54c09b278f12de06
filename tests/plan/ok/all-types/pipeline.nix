let std = import <std>; in
std.environment {
  project = "demo";
  name = "test";
  registry = "127.0.0.1:5000/demo";
  target = std.docker { };
  stages = std.defaultStages ++ [ "4.FRONTEND" ];
  parallelism.build = 3;
  services = {
    db = std.database {
      image = "postgres:16";
      ports = [ 5432 ];
      volume = "/var/lib/postgresql/data";
      secrets.POSTGRES_PASSWORD = std.secret "db-password";
      resources = { cpu = "500m"; memory = "512Mi"; };
    };
    migrate = std.job { build.context = ./api; command = [ "/app/migrate" ]; dependsOn = [ "db" ]; };
    api = std.application {
      build = { context = ./api; target = "runtime"; };
      ports = [ 8080 ];
      env.LOG_LEVEL = "info";
      replicas = 2;
      dependsOn = [ "db" ];
      healthcheck.http = { port = 8080; path = "/health"; };
    };
    admin = std.application { build = { context = ./api; target = "runtime"; }; env.LOG_LEVEL = "info"; env.ADMIN = "1"; };
    worker = std.application { build = { context = ./api; target = "runtime"; args.VERSION = "2"; }; env.QUEUE = "jobs"; };
    cleanup = std.job { image = "busybox:1.36"; schedule = "0 3 * * *"; command = "rm -rf /tmp/cache"; };
    envtag = std.application { build.context = ./tagged; };
    web = std.container { image = "nginx:1.27"; ports = [ 80 ]; stage = "4.FRONTEND"; dependsOn = [ "edge" ]; };
    edge = std.container { image = "envoy:1.30"; stage = "4.FRONTEND"; };
  };
}
