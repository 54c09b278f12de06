# let/lambda bindings shadow with-bound names
let a = "let"; in with { a = "with"; b = "with-b"; }; [ a b ]
