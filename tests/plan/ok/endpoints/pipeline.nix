# Public endpoints: a host for the whole site, a path under it for the API, and the proxy's ports.
let std = import <std>; in
std.environment {
  project = "demo";
  name = "test";
  registry = "127.0.0.1:5000/demo";
  target = std.docker { proxy = { http = 8080; https = 8443; }; };
  services = {
    web = std.container {
      image = "nginx:1.27";
      ports = [ 80 ];
      replicas = 2;
      endpoints = [ { host = "shop.localhost"; } { host = "shop.example.com"; } ];
      stopGracePeriod = "30s";
    };
    api = std.container {
      image = "nginx:1.27";
      ports = [ 8080 9090 ];
      endpoints = [ { host = "shop.localhost"; path = "/api/"; port = 8080; } ];
    };
  };
}
