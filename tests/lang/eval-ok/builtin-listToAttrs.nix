# listToAttrs; the first duplicate name wins
builtins.listToAttrs [ { name = "a"; value = 1; } { name = "b"; value = 2; } { name = "a"; value = 3; } { name = "c d"; value = [ ]; } ]
