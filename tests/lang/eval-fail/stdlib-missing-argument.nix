# an error in a call to the standard library is reported at the call in the user file
let std = import <std>; in std.environment { project = "shop"; }
