# The fixture of tests/apply_kube_fake.rs: prebuilt images only (no engine or registry needed), every
# workload kind, a secret, and a service that can be removed (`--arg withWorker false`).
{ withWorker ? true }:
let std = import <std>; in
std.environment {
  project = "shop";
  name = "fake";
  registry = "registry.example.com/shop";
  target = std.kubernetes { namespace = "shop-fake"; };
  stages = std.defaultStages ++ [ "9.MAINTENANCE" ];
  services = {
    db = std.database { image = "postgres:16"; ports = [ 5432 ]; volume = "/var/lib/postgresql/data";
                        secrets.POSTGRES_PASSWORD = std.secret "db-password"; };
    migrate = std.job { image = "registry.example.com/shop/api:1.4"; command = [ "/app/migrate" ]; dependsOn = [ "db" ]; };
    api = std.container { image = "registry.example.com/shop/api:1.4"; ports = [ 8080 ]; replicas = 2;
                          env.LOG_LEVEL = "info"; resources = { cpu = "0.5"; memory = "256Mi"; }; };
    nightly = std.job { image = "registry.example.com/shop/api:1.4"; command = [ "/app/report" ];
                        schedule = "0 3 * * *"; stage = "9.MAINTENANCE"; };
  } // (if withWorker then { worker = std.container { image = "registry.example.com/shop/worker:2"; }; } else { });
}
