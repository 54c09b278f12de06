# a longer expression mixing many operators
let a = 2; b = 3; in 1 + a * b - 4 / 2 > 4 && !(a == b) || false
