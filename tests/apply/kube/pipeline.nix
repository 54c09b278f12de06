# The fixture of tests/apply_kube_fake.rs: prebuilt images only (no engine or registry needed), every
# workload kind, a secret, a service that can be removed (`--arg withWorker false`), an api image that
# can be swapped for one that cannot be pulled (`--argstr apiImage ...`), and a database whose volume can
# be dropped (`--arg dbVolume null`, a change the API server refuses in place), and public endpoints for
# the api with a grace period (`--arg withEndpoints true`: an Ingress, TLS for the real domain only).
{ withWorker ? true, apiImage ? "registry.example.com/shop/api:1.4", dbVolume ? "/var/lib/postgresql/data",
  withEndpoints ? false }:
let std = import <std>; in
std.environment {
  project = "shop";
  name = "fake";
  registry = "registry.example.com/shop";
  target = std.kubernetes { namespace = "shop-fake"; ingressClassName = "nginx"; tls.clusterIssuer = "letsencrypt"; };
  stages = std.defaultStages ++ [ "9.MAINTENANCE" ];
  services = {
    db = std.database { image = "postgres:16"; ports = [ 5432 ]; volume = dbVolume;
                        secrets.POSTGRES_PASSWORD = std.secret "db-password"; };
    migrate = std.job { image = "registry.example.com/shop/api:1.4"; command = [ "/app/migrate" ]; dependsOn = [ "db" ]; };
    api = std.container ({ image = apiImage; ports = [ 8080 ]; replicas = 2;
                           env.LOG_LEVEL = "info"; resources = { cpu = "0.5"; memory = "256Mi"; }; }
      // (if withEndpoints then {
        endpoints = [ { host = "shop.example.com"; path = "/api"; } { host = "api.shop.localhost"; } ];
        stopGracePeriod = "20s";
      } else { }));
    nightly = std.job { image = "registry.example.com/shop/api:1.4"; command = [ "/app/report" ];
                        schedule = "0 3 * * *"; stage = "9.MAINTENANCE"; };
  } // (if withWorker then { worker = std.container { image = "registry.example.com/shop/worker:2"; }; } else { });
}
