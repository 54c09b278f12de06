# the standard library imported from a user file: a missing attribute of it
let std = import <std>; in std.aplication { }
