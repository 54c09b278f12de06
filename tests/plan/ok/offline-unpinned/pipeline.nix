# --offline with an incomplete pipeline.lock: the keys of builds whose images are not pinned are unknown,
# and prebuilt images run as written; a warning says which and how to pin them.
let std = import <std>; in
std.environment {
  project = "demo";
  name = "test";
  registry = "127.0.0.1:5000/demo";
  target = std.docker { };
  services = {
    api = std.application { build.context = ./api; };
    cache = std.container { image = "redis:7"; };
    web = std.container { image = "nginx:1.27"; };
  };
}
