# recursive function defined in let
let fact = n: if n <= 1 then 1 else n * fact (n - 1); in map fact [ 0 1 5 10 ]
