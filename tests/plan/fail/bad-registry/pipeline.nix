let std = import <std>; in
std.environment {
  project = "demo";
  name = "test";
  registry = "demo";
  target = std.docker { };
  services = { };
}
