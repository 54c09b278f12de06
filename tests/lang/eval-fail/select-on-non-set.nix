# selecting an attribute of an integer
let x = 1; in x.a
