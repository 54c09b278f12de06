# two dynamic keys with the same value
let k = "x"; in { ${k} = 1; "${k}" = 2; }
