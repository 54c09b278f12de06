# if/let/with/assert/lambda as right operands extend as far as possible
a: b: a + (if a then b else a) + (let c = a; in c) + (with b; a) + (assert a; b)
