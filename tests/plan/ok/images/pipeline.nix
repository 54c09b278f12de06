# Which images a build uses, read as Docker does: ARGs before the first FROM (a default, and one given by
# build.args), stages named by earlier ones (case-insensitively), a stage the target does not need, COPY
# --from an image, a RUN --mount from an image, scratch, a reference pinned by digest, the syntax line.
let std = import <std>; in
std.environment {
  project = "demo";
  name = "test";
  registry = "127.0.0.1:5000/demo";
  target = std.docker { };
  services = {
    api = std.application { build = { context = ./api; target = "runtime"; args.NODE = "22"; }; };
    tools = std.job { build.context = ./tools; };
    proxy = std.container { image = "nginx@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"; };
  };
}
