# selection binds tighter than application
let f = x: x + 1; s = { a = 1; g = y: y * 2; }; in [ (f s.a) (s.g s.a) ]
