# A mirror that needs a login: the Docker config holds credentials for its host, so the namespace gets the
# Secret `pipeline-registry` (kubernetes.io/dockerconfigjson; its value only with --show-secrets) and every
# workload pulls with it.
let std = import <std>; in
std.environment {
  project = "shop";
  name = "prod";
  registry = "registry.example.com/shop";
  target = std.kubernetes { namespace = "shop"; };
  services = {
    web = std.container { image = "nginx:1.27"; ports = [ 80 ]; };
    nightly = std.job { image = "registry.example.com/tools/worker@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"; schedule = "0 3 * * *"; };
  };
}
