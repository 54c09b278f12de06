# unary minus precedence relative to application and binary ops
let f = x: x * 10; s = { a = 4; }; in [ (-f 2) (- s.a) (2 - -1) (-2 * 3) (- 1 - 1) (-(-3)) ]
