# map, mapAttrs and genList do not look at the function until an element is used
[ (builtins.length (map 1 [ 1 ])) (builtins.attrNames (builtins.mapAttrs 1 { a = 1; })) (builtins.length (builtins.genList 1 2)) ]
