# undefined variable inside an unused lambda body
let f = y: y + z; in 1
