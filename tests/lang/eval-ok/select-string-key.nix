# selecting with quoted string keys
let s = { "a b" = 1; "x.y" = { z = 2; }; }; in [ s."a b" s."x.y".z s."x.y"."z" ]
