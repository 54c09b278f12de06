# genList generates lists from an index function
[ (builtins.genList (i: i * i) 5) (builtins.genList (i: i) 0) (builtins.genList (i: "x${toString i}") 3) ]
