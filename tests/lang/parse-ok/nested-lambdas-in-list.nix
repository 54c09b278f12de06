# lambdas in lists need parens but bodies extend far
[ (x: y: x y) (x: { inherit x; }) (x: with x; x) (x: assert x; x) (x: let y = x; in y) ]
