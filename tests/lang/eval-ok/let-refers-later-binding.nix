# a binding may refer to a binding defined later
let a = b + 1; b = c * 2; c = 3; in a
