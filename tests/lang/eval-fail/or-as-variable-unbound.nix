# `a or b` is not Boolean or: Nix reads it as `a` applied to a variable `or`
let a = true; b = false; in a or b
