# The smallest useful definition: one application built from ./app, one stock container.
{ env ? "dev" }:
let std = import <std>; in
std.environment {
  project = "minimal";
  name = env;
  registry = "127.0.0.1:5000/minimal";
  target = std.docker { };
  services = {
    app = std.application { build.context = ./app; ports = [ 8080 ]; dependsOn = [ "cache" ]; };
    cache = std.container { image = "redis:7"; ports = [ 6379 ]; };
  };
}
