# a passing assert yields its body
let x = 5; in assert x > 3; assert builtins.isInt x; x * 2
