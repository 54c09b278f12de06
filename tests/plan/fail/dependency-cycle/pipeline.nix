let std = import <std>; in
std.environment {
  project = "demo";
  name = "test";
  registry = "127.0.0.1:5000/demo";
  target = std.docker { };
  services = {
    a = std.container { image = "a:1"; dependsOn = [ "b" ]; };
    b = std.container { image = "b:1"; dependsOn = [ "c" ]; };
    c = std.container { image = "c:1"; dependsOn = [ "a" ]; };
  };
}
