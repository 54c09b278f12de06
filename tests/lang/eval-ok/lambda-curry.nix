# curried lambdas and partial application
let add = a: b: c: a + b + c; add1 = add 1; add12 = add1 2; in [ (add 1 2 3) (add12 10) ]
