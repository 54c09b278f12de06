# fromJSON (toJSON x) == x
let x = { a = [ 1 "two" { three = 3; } ]; b = null; c = false; }; in builtins.fromJSON (builtins.toJSON x) == x
