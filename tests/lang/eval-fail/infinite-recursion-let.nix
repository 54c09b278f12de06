# let x = x; in x
let x = x; in x
