let std = import <std>; in
std.environment {
  project = "demo";
  name = "test";
  registry = "127.0.0.1:5000/demo";
  target = std.docker { };
  services = {
    web = std.container { image = "nginx:1.27"; };
    api = std.application { build.context = ./api; };
  };
}
