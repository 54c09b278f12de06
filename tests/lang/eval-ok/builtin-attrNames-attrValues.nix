# attrNames and attrValues are sorted by name
let s = { z = 1; a = 2; m = 3; "B" = 4; }; in { names = builtins.attrNames s; values = builtins.attrValues s; empty = builtins.attrNames { }; }
