# A job run at deploy time and a scheduled one (a CronJob).
let std = import <std>; in
std.environment {
  project = "shop";
  name = "staging";
  registry = "registry.example.com/shop";
  target = std.kubernetes { namespace = "shop-staging"; };
  stages = std.defaultStages ++ [ "9.MAINTENANCE" ];
  services = {
    migrate = std.job { image = "registry.example.com/shop/api:1.4"; command = [ "/app/migrate" ]; env.DATABASE_HOST = "db"; };
    nightly = std.job {
      image = "registry.example.com/shop/api:1.4";
      command = [ "/app/report" ];
      args = [ "--since" "24h" ];
      schedule = "0 3 * * *";
      stage = "9.MAINTENANCE";
      secrets.SMTP_PASSWORD = std.secret "smtp";
    };
  };
}
