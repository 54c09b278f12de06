# calling a function with too many arguments
let f = x: x + 1; in f 1 2
