# removeAttrs ignores names that are not present
[ (builtins.removeAttrs { a = 1; b = 2; c = 3; } [ "a" "c" "zzz" ]) (removeAttrs { a = 1; } [ ]) ]
