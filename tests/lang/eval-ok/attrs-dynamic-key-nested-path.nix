# dynamic keys inside nested attribute paths
let k = "mid"; in { a.${k}.c = 1; a.other = 2; a."q-${k}" = 3; b.${k} = { x = 1; }; }
