# fromJSON number types: exponent means float
map builtins.typeOf (builtins.fromJSON "[1e3, 1.0, 1, -2, 1E2, \"s\", null, true, [], {}]")
