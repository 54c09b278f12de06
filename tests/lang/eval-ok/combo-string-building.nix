# string building with concatMap and interpolation
let lines = [ "a" "b" ]; in builtins.concatStringsSep "\n" (builtins.concatMap (l: [ "start ${l}" "end ${l}" ]) lines) + "\n"
