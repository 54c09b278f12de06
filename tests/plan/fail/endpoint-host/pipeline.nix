let std = import <std>; in
std.environment {
  project = "demo";
  name = "test";
  registry = "127.0.0.1:5000/demo";
  target = std.docker { proxy.http = 8080; proxy.https = 8080; };
  services = {
    web = std.container {
      image = "nginx:1.27";
      ports = [ 80 ];
      endpoints = [ { host = "https://Shop.example.com"; } { host = "shop.example.com"; path = "api"; } ];
      stopGracePeriod = "30 seconds";
    };
    migrate = std.job { image = "nginx:1.27"; endpoints = [ { host = "x.localhost"; } ]; };
  };
}
