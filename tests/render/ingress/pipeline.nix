# Public endpoints on Kubernetes: an Ingress per service with an ingress class and TLS from cert-manager for
# the real domain only (not for `*.localhost`), a path prefix, a second service on another path, and a
# grace period for stopping.
let std = import <std>; in
std.environment {
  project = "shop";
  name = "prod";
  registry = "registry.example.com/shop";
  target = std.kubernetes {
    namespace = "shop";
    ingressClassName = "nginx";
    tls = { clusterIssuer = "letsencrypt"; };
  };
  services = {
    web = std.container {
      image = "registry.example.com/tools/web@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
      ports = [ 80 ];
      replicas = 2;
      stopGracePeriod = "45s";
      endpoints = [
        { host = "shop.localhost"; path = "/shop"; }
        { host = "shop.example.com"; path = "/shop"; }
      ];
    };
    api = std.container {
      image = "registry.example.com/tools/api@sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";
      ports = [ 8080 9090 ];
      endpoints = [ { host = "shop.example.com"; path = "/api"; port = 8080; } ];
    };
  };
}
