# hasAttr and getAttr
let s = { a = 1; "b c" = 2; }; in [ (builtins.hasAttr "a" s) (builtins.hasAttr "x" s) (builtins.getAttr "a" s) (builtins.getAttr "b c" s) ]
