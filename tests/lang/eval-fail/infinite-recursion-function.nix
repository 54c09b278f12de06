# a function that never reaches a base case stops with an error, not a crash
let f = n: 1 + f (n + 1); in f 0
