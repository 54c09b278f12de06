# + concatenates strings
let s = "b"; in [ ("a" + s + "c") ("" + "") ("x" + toString 1) ]
