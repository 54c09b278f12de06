# builtins are first-class and partially applicable
let f = builtins.elemAt [ 10 20 30 ]; g = builtins.map; in [ (f 1) (g (x: x + 1) [ 1 ]) (builtins.foldl' builtins.add 0 [ 1 2 3 ]) ]
