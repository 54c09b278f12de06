# rec, let, with and inherit nested
let a = rec { x = 1; y = x; inherit (a) z; }; in with a; rec { inherit x; w = let q = w; in q; }
