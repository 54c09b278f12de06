# missing attribute deep in a path
let s = { a.b.c = 1; }; in s.a.x.c
