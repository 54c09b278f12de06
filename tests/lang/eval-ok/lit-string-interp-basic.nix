# string interpolation of a variable
let x = "world"; in "hello ${x}!"
