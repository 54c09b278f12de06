# elemAt, head and tail
let xs = [ "a" "b" "c" ]; in [ (builtins.elemAt xs 0) (builtins.elemAt xs 2) (builtins.head xs) (builtins.tail xs) (builtins.tail [ 1 ]) ]
