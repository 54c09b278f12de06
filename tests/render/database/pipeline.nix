# Databases: a StatefulSet with a volume claim and a headless Service; one without a volume or ports.
let std = import <std>; in
std.environment {
  project = "shop";
  name = "staging";
  registry = "registry.example.com/shop";
  target = std.kubernetes { namespace = "shop-staging"; };
  services = {
    db = std.database {
      image = "postgres:16";
      ports = [ 5432 ];
      volume = "/var/lib/postgresql/data";
      env.POSTGRES_DB = "shop";
      secrets.POSTGRES_PASSWORD = std.secret "db-password";
      resources.memory = "1Gi";
    };
    cache = std.database { image = "redis:7"; replicas = 2; };
  };
}
