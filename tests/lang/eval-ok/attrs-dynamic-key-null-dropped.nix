# a dynamic key evaluating to null drops the attribute
let k = null; in { ${k} = 1; ${if false then "x" else null} = 2; keep = 3; }
