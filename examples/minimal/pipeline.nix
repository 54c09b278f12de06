# The smallest useful definition: one application built from ./app, one container from the local base image
# (127.0.0.1:5000/pipeline-examples/busybox:1, which scripts/base-image makes; nothing is pulled).
{ env ? "dev" }:
let std = import <std>; in
std.environment {
  project = "minimal";
  name = env;
  registry = "127.0.0.1:5000/minimal";
  target = std.docker { };
  services = {
    app = std.application { build.context = ./app; ports = [ 8080 ]; dependsOn = [ "cache" ]; };
    # A stand-in cache: an echo server on 6379.
    cache = std.container { image = "127.0.0.1:5000/pipeline-examples/busybox:1"; ports = [ 6379 ];
                            command = "trap 'exit 0' TERM INT; nc -ll -p 6379 -e cat & wait"; };
  };
}
