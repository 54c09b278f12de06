# { ... }@args binds the full argument set
let f = { a, b ? 1, ... }@args: { inherit a b; names = builtins.attrNames args; }; in f { a = 1; c = 3; }
