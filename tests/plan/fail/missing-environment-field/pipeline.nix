let std = import <std>; in
std.environment { project = "demo"; name = "test"; target = std.docker { }; services = { }; }
