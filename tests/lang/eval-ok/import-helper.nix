# import of a helper file returning a set
let h = import ./lib/helper.nix; in [ h.greeting (h.double 21) ]
