# list elements are lazy; length does not force them
let xs = [ (throw "a") (1 / 0) 3 ]; in [ (builtins.length xs) (builtins.elemAt xs 2) ]
