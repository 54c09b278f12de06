# a dynamic key duplicating a static one
let k = "a"; in { ${k} = 1; a = 2; }
