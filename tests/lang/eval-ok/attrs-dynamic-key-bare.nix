# dynamic keys written as ${k}
let k = "foo"; n = 2; in { ${k} = 1; ${"bar" + toString n} = 2; }
