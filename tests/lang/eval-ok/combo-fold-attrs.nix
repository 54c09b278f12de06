# building an attrset with foldl' and dynamic keys
builtins.foldl' (acc: x: acc // { "k${toString x}" = x * x; }) { } [ 1 2 3 ]
