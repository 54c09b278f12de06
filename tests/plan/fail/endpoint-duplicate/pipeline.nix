let std = import <std>; in
std.environment {
  project = "demo";
  name = "test";
  registry = "127.0.0.1:5000/demo";
  target = std.docker { };
  services = {
    web = std.container { image = "nginx:1.27"; ports = [ 80 ]; endpoints = [ { host = "shop.localhost"; } ]; };
    api = std.container {
      image = "nginx:1.27";
      ports = [ 8080 ];
      endpoints = [ { host = "shop.localhost"; path = "/api"; } { host = "shop.localhost"; path = "/"; } ];
    };
  };
}
