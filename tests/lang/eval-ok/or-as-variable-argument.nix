# `or` right after a simple expression is the variable `or` passed to it (Nix accepts it, we warn)
let
  or = a: b: a || b;
  fold = f: z: xs: builtins.foldl' f z xs;
  one = let or = 1; in [ (x: x) or ];
in
[ one (fold or false [ true false ]) (fold or false [ false false ]) ]
