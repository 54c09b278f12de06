# `or` may be used as an attribute name and selected
let s = { or = 1; and = 2; }; in [ s.or (s ? or) ({ a.or = 5; }.a.or) ]
