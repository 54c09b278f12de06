# select with `or` default when attribute is missing
let s = { a = 1; b.c = 2; }; in [ (s.a or 0) (s.x or 0) (s.b.c or 0) (s.b.x or "d") (s.x.y.z or "deep") ]
