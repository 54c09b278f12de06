# interpolation of arbitrary expressions
let n = 3; xs = [ 1 2 ]; in "n=${toString (n * 2)} len=${toString (builtins.length xs)} ${if n > 2 then "big" else "small"}"
