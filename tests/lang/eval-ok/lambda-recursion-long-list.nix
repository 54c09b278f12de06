# a recursive walk over a long list nests one call per element
let
  xs = builtins.genList (i: i) 20000;
  len = builtins.length xs;
  sum = i: if i == len then 0 else builtins.elemAt xs i + sum (i + 1);
in sum 0
