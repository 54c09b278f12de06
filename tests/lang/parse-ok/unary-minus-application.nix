# unary minus applies to the whole application
f: x: [ (-f x) (- - x) (x - -x) (-x.y or 1) ]
