# inherit x; copies variables from scope
let x = 1; y = "two"; in { inherit x y; z = 3; }
