let std = import <std>; in
std.environment {
  project = "demo";
  name = "test";
  registry = "127.0.0.1:5000/demo";
  target = std.docker { };
  stages = std.defaultStages ++ [ "4.FRONTEND" ];
  services = {
    web = std.container { image = "nginx:1.27"; stage = "4.FRONTED"; };
  };
}
