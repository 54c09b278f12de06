# ? operator with nested, quoted and dynamic paths
let s = { a.b.c = 1; "x y" = 2; }; k = "a"; in
[ (s ? a) (s ? a.b.c) (s ? a.b.d) (s ? a.b.c.d) (s ? "x y") (s ? ${k}) (s ? nope.deeper) ]
