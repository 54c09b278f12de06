# dynamic selection x.${k} and x."${k}"
let s = { foo = { bar = 1; }; }; k = "foo"; in [ s.${k}.bar s."${k}".bar s.${k}.${"b" + "ar"} ]
