# else-if chains
let cls = n: if n < 0 then "neg" else if n == 0 then "zero" else if n < 10 then "small" else "big";
in map cls [ (-3) 0 5 50 ]
