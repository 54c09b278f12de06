# a set defined in terms of itself
let s = s // { a = 1; }; in s.a
