# top-level map toString isNull removeAttrs baseNameOf dirOf builtins
[ (map toString [ 1 2 ]) (isNull null) (removeAttrs { a = 1; b = 2; } [ "a" ]) (baseNameOf "/x/y") (dirOf "/x/y") (builtins.isAttrs builtins) (builtins.builtins.length [ 1 ]) ]
