# duplicate binding in let
let a = 1; a = 2; in a
