# application is left-associative across many args
let f = a: b: c: d: [ a b c d ]; in f 1 2 3 4
