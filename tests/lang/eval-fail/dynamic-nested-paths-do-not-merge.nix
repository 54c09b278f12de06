# two nested paths through the same dynamic key are duplicates, not merged
let k = "mid"; in { a.${k}.c = 1; a.${k}.d = 2; }
