# unused bindings are never evaluated
let unused = throw "never"; alsoUnused = 1 / 0; used = "ok"; in used
