let std = import <std>; in
std.environment {
  project = "demo";
  name = "test";
  registry = "127.0.0.1:5000/demo";
  target = std.docker { };
  services = {
    web = std.container {
      image = "nginx:1.27";
      ports = [ 80 9090 ];
      endpoints = [ { host = "shop.localhost"; port = 8080; } { host = "admin.shop.localhost"; } ];
    };
  };
}
