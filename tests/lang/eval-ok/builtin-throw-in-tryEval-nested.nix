# throw propagates through functions into tryEval
let f = x: if x > 1 then throw "too big" else x; in map (x: (builtins.tryEval (f x)).success) [ 0 1 2 ]
