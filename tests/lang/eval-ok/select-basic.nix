# selection with . including chains
let s = { a = { b = { c = 42; }; }; }; in [ s.a.b.c s.a.b ]
