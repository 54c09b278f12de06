# Prebuilt containers: one with a command healthcheck and a multi-line script, one with nothing optional.
let std = import <std>; in
std.environment {
  project = "shop";
  name = "prod";
  registry = "registry.example.com/shop";
  target = std.kubernetes { namespace = "shop"; context = "prod-cluster"; };
  services = {
    web = std.container {
      image = "nginx:1.27";
      ports = [ 80 ];
      command = ''
        echo "starting"
        exec nginx -g 'daemon off;'
      '';
      healthcheck = { command = [ "wget" "-q" "-O" "/dev/null" "http://127.0.0.1/" ]; interval = "500ms"; };
    };
    worker = std.container { image = "registry.example.com/tools/worker@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"; };
  };
}
