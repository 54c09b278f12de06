let std = import <std>; in
std.environment {
  project = "demo";
  name = "test";
  registry = "127.0.0.1:5000/demo";
  target = std.docker { };
  services = {
    db = std.database { image = "postgres:16"; secrets.A = std.secret "db-password"; secrets.B = std.secret "db_password"; };
  };
}
