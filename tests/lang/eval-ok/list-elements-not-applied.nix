# inside a list, juxtaposition separates elements instead of applying
let f = x: x + 1; in [ (builtins.length [ f 1 ]) (builtins.elemAt [ f 1 ] 1) ([ (f 1) ]) ]
